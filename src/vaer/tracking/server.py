"""An MLflow tracking server for a SQLite store, as a subprocess of this process.

Ray runs must log to a tracking server (many machines cannot share one SQLite file):
:func:`tracking_server` starts ``mlflow server`` on 127.0.0.1 for a store, waits until
it answers, and stops it (with the workers it started) afterwards. Tests and
benchmarks use it; ``vaer ui`` runs the same command line in the foreground.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vaer.compute.local_cluster import stop_process_group
from vaer.tracking.store import prepare_store, server_command


@contextmanager
def tracking_server(store: Path, port: int, timeout: float = 90.0) -> Iterator[str]:
    """Serve the SQLite store ``store`` (a file path) on ``http://127.0.0.1:<port>``.

    Parameters
    ----------
    store : Path
        The SQLite database file (created if missing); artifacts go beside it.
    port : int
    timeout : float
        Seconds to wait for the server's ``/health`` answer.

    Yields
    ------
    str
        The server's URL.

    Raises
    ------
    RuntimeError
        If the server exits or does not answer within ``timeout`` seconds (its log is
        quoted).
    """
    uri = f"sqlite:///{Path(store).resolve()}"
    prepare_store(uri)
    log_path = Path(store).with_suffix(".server.log")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(uri, port=port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"mlflow server on {url} did not start:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process_group(process)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
