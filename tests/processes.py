"""Real servers for integration tests: an ``mlflow server`` on 127.0.0.1, process groups.

Every process is started in its own session (process group), so :func:`stop` ends it
together with the children it started (``mlflow server`` runs uvicorn as a child).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from vaer.compute.local_cluster import free_port


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session`` and its children (its group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def mlflow_server(root: Path, timeout: float = 90.0) -> Iterator[str]:
    """A real ``mlflow server`` on a free 127.0.0.1 port (SQLite backend, served
    artifacts under ``root``); yields its URL and stops it afterwards.

    Raises
    ------
    RuntimeError
        If the server does not answer ``/health`` within ``timeout`` seconds (its log is
        quoted).
    """
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{root / 'backend.db'}",
        "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with (root / "server.log").open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()}")
        time.sleep(0.5)
    try:
        yield url
    finally:
        stop(process)


def children_of(client: MlflowClient, parent_id: str) -> list[Any]:
    """The child runs of a sweep's parent run."""
    parent = client.get_run(parent_id)
    return list(
        client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    )
