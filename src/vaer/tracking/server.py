"""An MLflow tracking server for a SQLite store, as a subprocess of this process.

Ray runs must log to a tracking server (many machines cannot share one SQLite file):
:func:`tracking_server` starts ``mlflow server`` on 127.0.0.1 for a store, waits until
it answers, and stops it (with the workers it started) afterwards. Tests and
benchmarks use it. ``vaer ui`` runs the same command line in the foreground with
:func:`serve_foreground`.

``mlflow server`` 3.17 starts uvicorn, a job runner and several huey consumers. Each server
runs in its own session (process group), and stopping it stops the whole group: a signal
sent to ``vaer ui`` alone would otherwise leave them running and holding the port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stop(Exception):
    """Raised in the main thread by the first stop signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def serve_foreground(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stop_signals: Sequence[signal.Signals] = STOP_SIGNALS,
    timeout: float = 30.0,
) -> tuple[int, signal.Signals | None]:
    """Run a server ``command`` in its own session until it exits or a stop signal arrives.

    The server gets its own process group (``start_new_session``), so a terminal's
    Ctrl-C or hang-up reaches this process only; on any of ``stop_signals``, and however
    this function exits (an error included), the whole group is stopped: SIGTERM, then
    SIGKILL after ``timeout`` seconds (:func:`vaer.compute.local_cluster.stop_process_group`).
    Must be called from the main thread (signal handlers).

    Parameters
    ----------
    command : sequence of str
    env : mapping, optional
        The server's environment (default: this process's).
    stop_signals : sequence of signal.Signals
        Signals that stop the server (SIGINT, SIGTERM and SIGHUP by default).
    timeout : float
        Seconds the group gets to exit after SIGTERM.

    Returns
    -------
    tuple of (int, signal.Signals or None)
        The server's exit status (negative: killed by that signal) and the stop signal
        received, if any.
    """
    received: list[int] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        if not stopping and len(received) == 1:  # nothing interrupts the shutdown
            raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in stop_signals}
    process: subprocess.Popen[bytes] | None = None
    code = 0
    try:
        process = subprocess.Popen(
            list(command), env=None if env is None else dict(env), start_new_session=True
        )
        code = process.wait()
    except _Stop:
        pass
    finally:
        stopping = True
        try:
            if process is not None:
                stop_process_group(process, timeout=timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return code, signal.Signals(received[0]) if received else None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
