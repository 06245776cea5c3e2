"""The ``compute:`` section: where parallel work runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vaer.config.estimators import Jobs, resolve_jobs
from vaer.config.section import Section


class ComputeConfig(Section):
    """Execution backend of a run.

    ``backend: local`` runs parallel work in ``n_jobs`` local processes (joblib); ``auto``
    (default) uses one process below ``AUTO_JOBS_MIN_ROWS`` units, where starting
    processes costs more than it saves, and every core above (as ``nuisance.n_jobs``);
    ``backend: ray`` sends each task to a Ray cluster at ``address`` (``host:port`` of an
    existing cluster's head, or ``null`` to start a one-node cluster on 127.0.0.1 for the
    run, stopped when it ends), with ``num_cpus_per_task`` CPUs reserved per task.
    Results do not depend on the backend. A run on Ray logs to an MLflow tracking server
    (:func:`vaer.compute.check_tracking_for`).
    """

    backend: Literal["local", "ray"] = "local"
    n_jobs: Jobs = "auto"
    address: str | None = None
    num_cpus_per_task: float = Field(1.0, gt=0.0)

    def jobs(self, n_units: int | None) -> int:
        """Local processes for a run on ``n_units`` units (resolves ``auto``; 1 if unknown)."""
        return resolve_jobs(self.n_jobs, n_units)
