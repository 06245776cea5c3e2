"""The ``compute:`` section: where parallel work runs."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vaer.config.estimators import AUTO_JOBS_MIN_ROWS


class ComputeConfig(BaseModel):
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

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["local", "ray"] = "local"
    n_jobs: int | Literal["auto"] = "auto"
    address: str | None = None
    num_cpus_per_task: float = Field(1.0, gt=0.0)

    @field_validator("n_jobs")
    @classmethod
    def _check_n_jobs(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"`n_jobs` must be an int >= 1 or 'auto'; got {value}")
        return value

    def jobs(self, n_units: int | None) -> int:
        """Local processes for a run on ``n_units`` units (resolves ``auto``; 1 if unknown)."""
        if self.n_jobs != "auto":
            return int(self.n_jobs)
        if n_units is None or n_units < AUTO_JOBS_MIN_ROWS:
            return 1
        return max(1, os.cpu_count() or 1)
