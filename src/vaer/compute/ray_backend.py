"""The Ray backend: each task of a ``map`` is one Ray task.

Ray is an optional extra (``pip install 'vaer[ray]'``). The task function (with the
large arrays it closes over) is shipped once per ``map`` through the object store;
results come back as tasks finish (``ray.wait``), so progress bars follow them.

vaer runs its own cross-fitting (folds are tasks here), so econml's ``use_ray`` and its
repetition of the same folds when ``mc_iters > 1`` are never involved.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from vaer.compute.backend import OnDone, _ordered
from vaer.compute.loopback import is_loopback, pin_ray_to_loopback

T = TypeVar("T")
R = TypeVar("R")

RAY_MISSING = (
    "`compute.backend: ray` needs Ray, which is an optional extra: "
    "pip install 'vaer[ray]' (or use `compute.backend: local`)"
)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # the extra is not installed
        raise ImportError(RAY_MISSING) from exc
    return ray


def _call(function: Callable[[Any], Any], item: Any) -> Any:
    return function(item)


class RayBackend:
    """Runs tasks on a Ray cluster.

    Parameters
    ----------
    address : str or None
        ``host:port`` of a running cluster's GCS; None starts a one-node cluster on
        127.0.0.1 for this process (through :class:`vaer.compute.local_cluster.LocalCluster`,
        stopped when the process exits).
    num_cpus_per_task : float
        CPUs Ray reserves for each task.

    Raises
    ------
    ImportError
        If Ray is not installed.
    ValueError
        If ``num_cpus_per_task`` <= 0.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus_per_task: float = 1.0) -> None:
        if num_cpus_per_task <= 0:
            raise ValueError(f"`num_cpus_per_task` must be a number > 0; got {num_cpus_per_task}")
        if is_loopback(address):
            pin_ray_to_loopback()
        self._ray = _import_ray()
        self.num_cpus_per_task = num_cpus_per_task
        if not self._ray.is_initialized():
            if address is None:
                address = _own_cluster().address
            self._ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        self.address = address
        self._remote = self._ray.remote(num_cpus=num_cpus_per_task, max_retries=0)(_call)

    def with_local_jobs(self, n_jobs: int) -> RayBackend:
        return self

    def as_completed(
        self, function: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        ray = self._ray
        shipped = ray.put(function)
        refs = [self._remote.remote(shipped, item) for item in items]
        position = {ref: index for index, ref in enumerate(refs)}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield position[ref], ray.get(ref)
        finally:
            for ref in pending:  # a failed task or a stopped consumer cancels the rest
                ray.cancel(ref, force=True)

    def map(
        self, function: Callable[[T], R], items: Sequence[T], *, on_done: OnDone | None = None
    ) -> list[R]:
        return _ordered(self.as_completed(function, items), len(items), on_done)

    def workers(self) -> int:
        """Number of alive nodes in the cluster."""
        return sum(1 for node in self._ray.nodes() if node.get("Alive"))


_CLUSTER: list[Any] = []


def _own_cluster() -> Any:
    """The one-node cluster this process started (started on first use)."""
    if not _CLUSTER:
        from vaer.compute.local_cluster import LocalCluster

        cluster = LocalCluster().start()
        atexit.register(cluster.stop)
        _CLUSTER.append(cluster)
    return _CLUSTER[0]
