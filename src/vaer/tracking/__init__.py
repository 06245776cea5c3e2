"""Experiment tracking in MLflow (the only package that imports mlflow, lazily)."""

from vaer.tracking.mlflow_run import (
    TrackedRun,
    finite_metrics,
    flatten,
    metric_key,
    parent_run,
    record_error,
    tracked_run,
    untracked_run,
)
from vaer.tracking.provenance import peak_rss_mb, provenance
from vaer.tracking.store import ensure_experiment, resolve_tracking_uri, retry_busy

__all__ = [
    "TrackedRun",
    "ensure_experiment",
    "finite_metrics",
    "flatten",
    "metric_key",
    "parent_run",
    "peak_rss_mb",
    "provenance",
    "record_error",
    "resolve_tracking_uri",
    "retry_busy",
    "tracked_run",
    "untracked_run",
]
