"""Execution backends: one ``map`` for every stage that has independent tasks.

Every stage with parallel work (cross-fitting folds, bootstrap replicates, refuters,
SHAP chunks, mechanism-test folds, sweep variants) calls :meth:`Backend.map` or
:meth:`Backend.as_completed`, so the backend is chosen in one place (:func:`get_backend`)
and results are identical whatever runs them: tasks are pure functions of their inputs
(seeds included), how work is split into tasks depends only on sizes and seeds, and
``map`` returns results in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from vaer.config.compute import ComputeConfig

T = TypeVar("T")
R = TypeVar("R")
OnDone = Callable[[int, int], None]


class Backend(Protocol):
    """What every execution backend offers."""

    name: str

    def map(
        self, function: Callable[[T], R], items: Sequence[T], *, on_done: OnDone | None = None
    ) -> list[R]:
        """Apply ``function`` to every item; results in input order.

        ``on_done(finished, total)`` is called as tasks finish (for progress bars).
        """
        ...

    def as_completed(
        self, function: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        """Apply ``function`` to every item; yield ``(position, result)`` as tasks finish."""
        ...

    def with_local_jobs(self, n_jobs: int) -> Backend:
        """This backend, or ``n_jobs`` local processes if it is the local one.

        A stage with its own parallelism setting (cross-fitting folds follow
        ``nuisance.n_jobs``) keeps it on the local backend; a cluster stays a cluster.
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

    def with_local_jobs(self, n_jobs: int) -> LocalBackend:
        return self if n_jobs == self.n_jobs else LocalBackend(n_jobs)

    def as_completed(
        self, function: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        if self.n_jobs == 1 or len(items) <= 1:
            for position, item in enumerate(items):
                yield position, function(item)
            return
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")
        yield from parallel(delayed(_positioned)(function, p, item) for p, item in enumerate(items))

    def map(
        self, function: Callable[[T], R], items: Sequence[T], *, on_done: OnDone | None = None
    ) -> list[R]:
        return _ordered(self.as_completed(function, items), len(items), on_done)


def _positioned(function: Callable[[T], R], position: int, item: T) -> tuple[int, R]:
    return position, function(item)


def _ordered(finished: Iterator[tuple[int, R]], total: int, on_done: OnDone | None) -> list[R]:
    results: list[Any] = [None] * total
    for count, (position, result) in enumerate(finished, start=1):
        results[position] = result
        if on_done is not None:
            on_done(count, total)
    return results


class Observed:
    """A backend that also reports every finished task to ``on_task(finished, total)``.

    ``vaer run`` wraps the run's backend in it, so one progress bar follows the tasks of
    whichever step is running, on any backend.
    """

    def __init__(self, backend: Any, on_task: OnDone) -> None:
        self.backend = backend
        self.on_task = on_task
        self.name = backend.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.backend, attribute)

    def with_local_jobs(self, n_jobs: int) -> Observed:
        return Observed(self.backend.with_local_jobs(n_jobs), self.on_task)

    def as_completed(
        self, function: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        total = len(items)
        self.on_task(0, total)
        for count, found in enumerate(self.backend.as_completed(function, items), start=1):
            self.on_task(count, total)
            yield found

    def map(
        self, function: Callable[[T], R], items: Sequence[T], *, on_done: OnDone | None = None
    ) -> list[R]:
        return _ordered(self.as_completed(function, items), len(items), on_done)


def chunk_seeds(random_state: int, n_items: int, chunk: int) -> list[tuple[int, int]]:
    """Split ``n_items`` replicates into chunks of ``chunk``, each with its own seed.

    Seeds come from ``numpy.random.SeedSequence(random_state).spawn``, so the replicates
    (and so the results) depend only on ``random_state``, ``n_items`` and ``chunk``,
    never on the backend that runs the chunks.

    Returns
    -------
    list of (size, seed)
        Chunk sizes add up to ``n_items``; seeds are 32-bit ints.

    Raises
    ------
    ValueError
        If ``n_items`` < 0 or ``chunk`` < 1.
    """
    if n_items < 0:
        raise ValueError(f"`n_items` must be an int >= 0; got {n_items}")
    if chunk < 1:
        raise ValueError(f"`chunk` must be an int >= 1; got {chunk}")
    sizes = [min(chunk, n_items - start) for start in range(0, n_items, chunk)]
    children = np.random.SeedSequence(random_state).spawn(len(sizes))
    return [
        (size, int(child.generate_state(1)[0])) for size, child in zip(sizes, children, strict=True)
    ]


def get_backend(config: ComputeConfig | None = None, n_units: int | None = None) -> Any:
    """The backend a ``compute:`` section asks for, for a run on ``n_units`` units.

    Raises
    ------
    ImportError
        If ``backend: ray`` is chosen and Ray is not installed (names the extra).
    """
    config = config or ComputeConfig()
    if config.backend == "ray":
        from vaer.compute.ray_backend import RayBackend

        return RayBackend(address=config.address, num_cpus_per_task=config.num_cpus_per_task)
    return LocalBackend(n_jobs=config.jobs(n_units))


def check_tracking_for(config: ComputeConfig, tracking_uri: str) -> None:
    """Runs on a cluster must log to a tracking server.

    Every Ray worker logs its own runs (a sweep's variants), so the store must be one
    that many machines can write to at once: an MLflow tracking server.

    Raises
    ------
    ValueError
        If ``backend: ray`` is chosen and ``tracking_uri`` is not ``http(s)://``.
    """
    if config.backend == "ray" and not tracking_uri.startswith(("http://", "https://")):
        raise ValueError(
            f"compute.backend: ray needs an MLflow tracking server, but the tracking URI is "
            f"'{tracking_uri}' (a local store that the cluster's workers cannot share): "
            "start one with `mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri "
            "sqlite:///mlruns/mlflow.db` and set `tracking.uri: http://127.0.0.1:5000` (or "
            "MLFLOW_TRACKING_URI), or use `compute.backend: local`"
        )
