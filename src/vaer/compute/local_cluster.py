"""Start and stop a Ray cluster on this machine's loopback interface.

``ray start`` maps ``--node-ip-address=127.0.0.1`` to the machine's outward address; this
wrapper runs the real ``ray start`` command line with the loopback pinned (see
:mod:`vaer.compute.loopback`), so head, worker nodes and drivers all talk over
127.0.0.1::

    python -m vaer.compute.local_cluster start --head --port 6399 --num-cpus 1 --block
    python -m vaer.compute.local_cluster start --address 127.0.0.1:6399 --num-cpus 1 --block

Arguments are passed to ``ray`` unchanged. :class:`LocalCluster` starts a head node and
optional worker nodes that way, each as its own process group, and stops them all.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from vaer.compute.loopback import pin_ray_to_loopback


def main(argv: list[str] | None = None) -> int:
    """Run Ray's command line with the cluster pinned to 127.0.0.1."""
    pin_ray_to_loopback()
    import ray._private.ray_constants as constants
    from ray.scripts import scripts

    # The pin also stops `ray start --address` from adding worker nodes (a guard meant for
    # Windows/macOS); lift that guard for the command line only.
    names = {k: getattr(constants, k) for k in dir(constants) if not k.startswith("__")}
    scripts.ray_constants = types.SimpleNamespace(**{**names, "ENABLE_RAY_CLUSTER": True})
    args = sys.argv[1:] if argv is None else argv
    try:
        scripts.cli.main(args=args, prog_name="ray", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


STARTED = "Ray runtime started."  # what `ray start` prints once its node is up


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalCluster:
    """A Ray head node (and ``worker_nodes`` more nodes) on 127.0.0.1, as subprocesses.

    Each node is a blocking ``ray start`` in its own process group, so :meth:`stop`
    ends every process a node started, and nothing else (``ray stop`` would stop every
    Ray process on the machine).

    Parameters
    ----------
    num_cpus : int
        CPUs of each node.
    worker_nodes : int
        Nodes besides the head.
    port : int, optional
        GCS port of the head (default: a free port).
    startup_timeout : float
        Seconds to wait for the head's GCS and for every node to join.

    Raises
    ------
    ValueError
        If ``num_cpus`` < 1 or ``worker_nodes`` < 0.
    """

    def __init__(
        self,
        num_cpus: int = 1,
        worker_nodes: int = 0,
        port: int | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        if num_cpus < 1:
            raise ValueError(f"`num_cpus` must be an int >= 1; got {num_cpus}")
        if worker_nodes < 0:
            raise ValueError(f"`worker_nodes` must be an int >= 0; got {worker_nodes}")
        self.num_cpus = num_cpus
        self.worker_nodes = worker_nodes
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.processes: list[subprocess.Popen[bytes]] = []
        self.temp_dir = ""  # Ray's session files and the nodes' logs, made by start()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` of the head's GCS."""
        return f"127.0.0.1:{self.port}"

    def _node(self, *args: str) -> Path:
        """Start one node; its output goes to its own log, which is returned."""
        command = [
            sys.executable, "-m", "vaer.compute.local_cluster", "start", "--block",
            "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.num_cpus),
            "--disable-usage-stats", *args,
        ]  # fmt: skip
        env = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        log = Path(self.temp_dir) / f"node-{len(self.processes)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                command,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self.processes.append(process)
        return log

    def start(self) -> LocalCluster:
        """Start the head, then the worker nodes, and wait until each says it is up.

        Raises
        ------
        RuntimeError
            If a node exits or is not up within ``startup_timeout`` seconds (its log is
            quoted).
        """
        self.temp_dir = tempfile.mkdtemp(prefix="vaer-ray-", dir="/tmp")
        head = ["--head", "--port", str(self.port), "--include-dashboard=false"]
        logs = [self._node(*head, "--temp-dir", self.temp_dir)]
        self._wait(logs)
        logs += [self._node("--address", self.address) for _ in range(self.worker_nodes)]
        self._wait(logs)
        return self

    def _wait(self, logs: list[Path]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        problem = f"the Ray cluster did not come up within {self.startup_timeout:.0f} s"
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                problem = "a Ray node exited while starting"
                break
            if all(STARTED in log.read_text(errors="replace") for log in logs):
                return
            time.sleep(0.5)
        tail = _tail(logs)
        self.stop()
        raise RuntimeError(f"{problem}:\n{tail}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node (workers first) and remove the cluster's session files."""
        for process in reversed(self.processes):
            stop_process_group(process, timeout)
        self.processes.clear()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _tail(logs: list[Path]) -> str:
    lines = [line for log in logs for line in log.read_text(errors="replace").splitlines()]
    return "\n".join(lines[-20:])


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a process started with ``start_new_session`` and everything in its group:
    SIGTERM, then SIGKILL after ``timeout`` seconds, then wait until the group is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _group_alive(process.pid) and time.monotonic() < deadline:
            process.poll()  # reap the leader, so its group can empty
            time.sleep(0.2)
        if not _group_alive(process.pid):
            process.poll()
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
