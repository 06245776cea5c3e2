"""Where a run came from: git commit, package versions, host. No mlflow import here."""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("vaer", "econml", "scikit-learn", "lightgbm", "numpy", "pandas", "shap", "mlflow")


def git_state(cwd: Path | None = None) -> dict[str, str]:
    """The current git commit and whether the work tree has uncommitted changes.

    Returns ``{"git_commit": "unknown", "git_dirty": "unknown"}`` outside a git checkout.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(bool(status)).lower()}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def provenance() -> dict[str, str]:
    """Git state, package versions (``version.<package>``) and host name."""
    info = git_state()
    info.update({f"version.{k}": v for k, v in package_versions().items()})
    info["host"] = socket.gethostname()
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage`` max RSS).

    Linux reports kibibytes and macOS bytes; returns NaN where ``resource`` is unavailable.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return float("nan")
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10
