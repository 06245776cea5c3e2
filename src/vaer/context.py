"""What every stage of a run takes and returns: :class:`RunContext` in, a
:class:`StageResult` out, described by a :class:`Stage`.

A stage is a function ``stage(ctx: RunContext) -> StageResult``. The context holds the
run's config, its data (loaded once), the compute backend, the progress callback and the
results of the stages that ran before; the result names its own tables, metrics and truth
checks, so the pipeline treats every stage alike (:mod:`vaer.pipeline`). Stages are listed
in run order in :mod:`vaer.stages`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import pandas as pd

from vaer.compute import Backend
from vaer.config.models import ExperimentConfig
from vaer.data.design import AnalysisData
from vaer.data.loading import LoadedData
from vaer.data.truth import Truth

Progress = Callable[[str], None]
"""Called with a short message when a step of a run starts."""


def no_progress(_message: str) -> None:
    """A :data:`Progress` that says nothing."""


@runtime_checkable
class StageResult(Protocol):
    """What a stage returns: frozen, and able to describe itself.

    ``tables()`` are written to ``tables/`` and logged (the report's sections pick the
    tables they own by name, :mod:`vaer.reporting.sections`; tables no section claims
    appear under "Other tables"); ``metrics()`` are logged as run metrics.
    """

    def tables(self) -> dict[str, pd.DataFrame]: ...

    def metrics(self) -> dict[str, float]: ...


R = TypeVar("R")


def find_result(results: tuple[StageResult, ...], kind: type[R]) -> R | None:
    """The first of ``results`` of type ``kind``, or None."""
    return next((r for r in results if isinstance(r, kind)), None)


@dataclass(frozen=True)
class RunContext:
    """Everything a stage may read.

    Attributes
    ----------
    config : ExperimentConfig
    study : LoadedData
        The validated analysis table, its source, drop counts and (synthetic data) truth;
        in panel mode also the firm-year panel it was built from, for rebuilds.
    data : AnalysisData
        The encoded arrays the estimators use.
    backend : Backend
        Where parallel work goes.
    progress : Progress
    results : tuple
        The results of the stages that already ran, in run order.
    """

    config: ExperimentConfig
    study: LoadedData
    data: AnalysisData
    backend: Backend
    progress: Progress = no_progress
    results: tuple[StageResult, ...] = field(default=())

    @property
    def seed(self) -> int:
        """The run's seed (``config.seed``)."""
        return self.config.seed

    @property
    def truth(self) -> Truth | None:
        """The known truth of synthetic data, else None."""
        return self.study.truth

    def known_truth(self) -> Truth:
        """:attr:`truth`, for the truth checks that only run when there is one.

        Raises
        ------
        LookupError
            If the data are not synthetic (no truth).
        """
        if self.study.truth is None:
            raise LookupError("these data have no known truth")
        return self.study.truth

    def find(self, kind: type[R]) -> R | None:
        """The result of type ``kind`` of an earlier stage, or None if none ran."""
        return find_result(self.results, kind)

    def result(self, kind: type[R]) -> R:
        """The result of type ``kind`` of an earlier stage.

        Raises
        ------
        LookupError
            If no earlier stage returned one (the stages are misordered).
        """
        found = self.find(kind)
        if found is None:
            raise LookupError(f"no earlier stage produced a {kind.__name__}")
        return found

    def with_result(self, result: StageResult) -> RunContext:
        """This context with ``result`` appended to :attr:`results`."""
        return replace(self, results=(*self.results, result))


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    Attributes
    ----------
    name : str
        Its key in timings (``time.stage.<name>``) and tracking.
    message : str
        What the progress line says while it runs.
    run : callable
        ``run(ctx) -> StageResult``.
    enabled : callable
        ``enabled(config) -> bool``; a disabled stage is skipped.
    child_run : bool
        Also log the result as a child MLflow run of its own (tuning's trials).
    truth_check : callable or None
        ``truth_check(result, ctx) -> dict``: the result against a synthetic data set's
        known truth (``ctx.truth``, ``ctx.study``), logged as ``truth.<key>``; run only
        when the data have a truth.
    """

    name: str
    message: str
    run: Callable[[RunContext], StageResult]
    enabled: Callable[[ExperimentConfig], bool] = lambda _config: True
    child_run: bool = False
    truth_check: Callable[[Any, RunContext], dict[str, float]] | None = None
