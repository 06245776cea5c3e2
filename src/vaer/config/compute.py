"""The ``compute:`` section: where parallel work runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ComputeConfig(BaseModel):
    """Execution backend of a run.

    ``backend: local`` runs parallel work in ``n_jobs`` local processes (joblib);
    ``backend: ray`` sends each task to a Ray cluster at ``address`` (``host:port`` of an
    existing cluster's head, or ``null`` to start a one-node cluster on 127.0.0.1 for the
    run, stopped when it ends), with ``num_cpus_per_task`` CPUs reserved per task.
    Results do not depend on the backend. A run on Ray logs to an MLflow tracking server
    (:func:`vaer.compute.check_tracking_for`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["local", "ray"] = "local"
    n_jobs: int = Field(1, ge=1)
    address: str | None = None
    num_cpus_per_task: float = Field(1.0, gt=0.0)
