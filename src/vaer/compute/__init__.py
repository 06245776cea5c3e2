"""Execution backends: local processes (joblib) or a Ray cluster, chosen in one place."""

from vaer.compute.backend import (
    Backend,
    LocalBackend,
    Observed,
    check_tracking_for,
    chunk_seeds,
    get_backend,
)

__all__ = [
    "Backend",
    "LocalBackend",
    "Observed",
    "check_tracking_for",
    "chunk_seeds",
    "get_backend",
]
