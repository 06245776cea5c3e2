"""Shared plumbing of the benchmark scripts: machine facts, RESULTS.md sections, MLflow.

Each script owns one section of ``benchmarks/RESULTS.md``, delimited by
``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``, and rewrites only that section, so
scripts can be rerun independently. Every section ends with the machine line: the git
commit of the vaer source that ran (and whether its tree had uncommitted changes), the
config summary the script passes, versions, date and command. Every script also logs its
numbers to the MLflow experiment ``benchmarks`` in the project's store.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Every section below is written by the script it names; do not edit by hand.\n"
)


@dataclass(frozen=True)
class GitState:
    """The commit of a work tree and its uncommitted changes to tracked files."""

    commit: str
    changed: tuple[str, ...]

    @property
    def dirty(self) -> bool:
        return bool(self.changed)

    def describe(self, shown: int = 5) -> str:
        """``commit <sha>`` then ``(clean)`` or ``(dirty: N tracked files changed: ...)``."""
        if not self.dirty:
            return f"commit {self.commit} (clean)"
        names = ", ".join(self.changed[:shown]) + (", ..." if len(self.changed) > shown else "")
        return f"commit {self.commit} (dirty: {len(self.changed)} tracked files changed: {names})"


def source_root() -> Path:
    """The root of the vaer source that runs (``<root>/src/vaer``), e.g. a git worktree
    given by ``PYTHONPATH``; the benchmarks' own repository if vaer is not importable."""
    from importlib.util import find_spec

    spec = find_spec("vaer")
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).resolve().parents[2]
    return Path(__file__).resolve().parents[1]


def git_state(root: Path | None = None) -> GitState:
    """``git rev-parse HEAD`` and ``git status --porcelain`` (tracked files) of ``root``.

    ``root`` defaults to :func:`source_root`. Outside a git work tree the commit is
    ``unknown`` and no change is listed.
    """
    folder = root or source_root()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return GitState("unknown", ())
    changed = tuple(line[3:].strip() for line in status.splitlines() if line.strip())
    return GitState(commit, changed)


def machine_line(config: str | None = None, code: str | None = None) -> str:
    """One line on the code (git commit), the config, the machine, versions, date and the
    command that ran; ``code`` replaces the commit of the source that runs now (e.g. the
    commits of the runs a section is rebuilt from)."""
    from importlib import metadata

    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("vaer", "econml", "scikit-learn", "lightgbm", "numpy")
    )
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    ran_on = f"Code: {code or git_state().describe()}. " + (f"Config: {config}. " if config else "")
    return ran_on + (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {versions}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"command: `{command}`"
    )


def update_results_section(
    name: str,
    markdown: str,
    path: Path = RESULTS,
    *,
    config: str | None = None,
    code: str | None = None,
) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``markdown``, followed by
    the machine line (commit or ``code``, ``config`` summary, machine, versions, command)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    footer = machine_line(config, code)
    block = f"<!-- begin:{name} -->\n{markdown.rstrip()}\n\n{footer}\n<!-- end:{name} -->"
    pattern = re.compile(
        rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _m: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    path.write_text(text, encoding="utf-8")


def log_benchmark(
    name: str, metrics: Mapping[str, float], params: Mapping[str, object] | None = None
) -> str:
    """Log one benchmark's numbers as a run of the MLflow experiment ``benchmarks``."""
    import mlflow

    from vaer.tracking import ensure_experiment, resolve_tracking_uri

    uri = resolve_tracking_uri(None)
    experiment_id = ensure_experiment(uri, "benchmarks")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        if params:
            mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_text(machine_line(), "machine.txt")
        return str(run.info.run_id)
