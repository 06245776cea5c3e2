"""Shared plumbing of the benchmark scripts: machine facts, RESULTS.md sections, MLflow.

Each script owns one section of ``benchmarks/RESULTS.md``, delimited by
``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``, and rewrites only that section, so
scripts can be rerun independently. Every script also logs its numbers to the MLflow
experiment ``benchmarks`` in the project's store.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Every section below is written by the script it names; do not edit by hand.\n"
)


def machine_line() -> str:
    """One line on the machine, versions, date and the command that ran."""
    from importlib import metadata

    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("vaer", "econml", "scikit-learn", "lightgbm", "numpy")
    )
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {versions}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"command: `{command}`"
    )


def update_results_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``markdown``."""
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    block = f"<!-- begin:{name} -->\n{markdown.rstrip()}\n\n{machine_line()}\n<!-- end:{name} -->"
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
