"""The Ray backend: each task of a ``map`` is one Ray task.

Ray is an optional extra (``pip install 'vaer[ray]'``). Large task arguments are shipped
once per ``map`` through the object store; results come back in input order while a
progress callback follows tasks as they finish (``ray.wait``).

vaer runs its own cross-fitting (folds are tasks here), so econml's ``use_ray`` and its
repetition of the same folds when ``mc_iters > 1`` are never involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

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
        ``host:port`` of a running cluster's GCS, or None to start a single-node cluster
        in this process (bound to 127.0.0.1).
    num_cpus_per_task : float
        CPUs Ray reserves for each task.

    Raises
    ------
    ImportError
        If Ray is not installed.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus_per_task: float = 1.0) -> None:
        if num_cpus_per_task <= 0:
            raise ValueError(f"`num_cpus_per_task` must be a number > 0; got {num_cpus_per_task}")
        if is_loopback(address):
            pin_ray_to_loopback()
        self._ray = _import_ray()
        self.address = address
        self.num_cpus_per_task = num_cpus_per_task
        if not self._ray.is_initialized():
            options: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
            if address is None:
                options.update(include_dashboard=False, _node_ip_address="127.0.0.1")
            else:
                options["address"] = address
            self._ray.init(**options)
        self._remote = self._ray.remote(num_cpus=num_cpus_per_task, max_retries=0)(_call)

    def map(
        self,
        function: Callable[[T], R],
        items: Iterable[T],
        *,
        on_done: Callable[[int, int], None] | None = None,
    ) -> list[R]:
        ray = self._ray
        shipped = ray.put(function)
        refs = [self._remote.remote(shipped, item) for item in items]
        position = {ref: index for index, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[position[ref]] = ray.get(ref)
            if on_done is not None:
                on_done(len(refs) - len(pending), len(refs))
        return results

    def workers(self) -> int:
        """Number of alive nodes in the cluster."""
        return sum(1 for node in self._ray.nodes() if node.get("Alive"))
