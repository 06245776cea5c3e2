"""Execution backends: one ``map`` for every stage that has independent tasks.

Every stage with parallel work (cross-fitting folds, bootstrap and permutation
replicates, refuters, SHAP chunks, sweep variants) calls :meth:`Backend.map`, so the
backend is chosen in one place (:func:`get_backend`) and results are identical whatever
runs them: tasks are pure functions of their inputs (seeds included), and results come
back in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from vaer.config.compute import ComputeConfig

T = TypeVar("T")
R = TypeVar("R")
OnDone = Callable[[int, int], None]


class Backend(Protocol):
    """What every execution backend offers."""

    name: str

    def map(
        self, function: Callable[[T], R], items: Iterable[T], *, on_done: OnDone | None = None
    ) -> list[R]:
        """Apply ``function`` to every item; results in input order.

        ``on_done(finished, total)`` is called as tasks finish (for progress bars).
        """
        ...


class LocalBackend:
    """Runs tasks in this process (``n_jobs=1``) or in ``n_jobs`` local worker processes.

    Parameters
    ----------
    n_jobs : int
        Number of parallel worker processes (joblib's loky backend); 1 runs in-process.

    Raises
    ------
    ValueError
        If ``n_jobs`` < 1.
    """

    name = "local"

    def __init__(self, n_jobs: int = 1) -> None:
        if n_jobs < 1:
            raise ValueError(f"`n_jobs` must be an int >= 1; got {n_jobs}")
        self.n_jobs = n_jobs

    def map(
        self, function: Callable[[T], R], items: Iterable[T], *, on_done: OnDone | None = None
    ) -> list[R]:
        tasks: Sequence[T] = list(items)
        total = len(tasks)
        results: list[R] = []
        if self.n_jobs == 1 or total <= 1:
            for item in tasks:
                results.append(function(item))
                if on_done is not None:
                    on_done(len(results), total)
            return results
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
        for result in parallel(delayed(function)(item) for item in tasks):
            results.append(result)
            if on_done is not None:
                on_done(len(results), total)
        return results


def get_backend(config: ComputeConfig | None = None) -> Any:
    """The backend a ``compute:`` section asks for.

    Raises
    ------
    ImportError
        If ``backend: ray`` is chosen and Ray is not installed (names the extra).
    """
    config = config or ComputeConfig()
    if config.backend == "ray":
        from vaer.compute.ray_backend import RayBackend

        return RayBackend(address=config.address, num_cpus_per_task=config.num_cpus_per_task)
    return LocalBackend(n_jobs=config.n_jobs)
