"""Execution backends: local processes (joblib) or a Ray cluster, chosen in one place."""

from vaer.compute.backend import Backend, LocalBackend, get_backend

__all__ = ["Backend", "LocalBackend", "get_backend"]
