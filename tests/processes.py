"""Real servers for integration tests: an ``mlflow server`` on 127.0.0.1 and its runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from vaer.compute.local_cluster import free_port
from vaer.tracking.server import tracking_server


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a free 127.0.0.1 port, SQLite store and served
    artifacts under ``root``; yields its URL, stops it (and its workers) afterwards."""
    with tracking_server(root / "backend.db", free_port()) as url:
        yield url


def children_of(client: MlflowClient, parent_id: str) -> list[Any]:
    """The child runs of a sweep's parent run."""
    parent = client.get_run(parent_id)
    return list(
        client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    )
