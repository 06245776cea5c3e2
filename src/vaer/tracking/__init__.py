"""Experiment tracking in MLflow (the only package that imports mlflow, lazily)."""

from vaer.tracking.mlflow_run import (
    TrackedRun,
    ensure_experiment,
    flatten,
    resolve_tracking_uri,
    tracked_run,
    untracked_run,
)
from vaer.tracking.provenance import provenance

__all__ = [
    "TrackedRun",
    "ensure_experiment",
    "flatten",
    "provenance",
    "resolve_tracking_uri",
    "tracked_run",
    "untracked_run",
]
