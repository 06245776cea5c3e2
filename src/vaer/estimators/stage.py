"""The tuning and estimation stages (:mod:`vaer.context`): ``stage(ctx) -> result``."""

from __future__ import annotations

from vaer.config.estimators import AnySpec, NuisanceConfig
from vaer.context import RunContext
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import EstimationResult
from vaer.estimators.tune import TuneResult, tune_estimation


def estimation_inputs(ctx: RunContext) -> tuple[list[AnySpec], NuisanceConfig]:
    """The estimator specs and nuisance config to fit: the tuned ones when the tuning stage
    ran, else the config's."""
    tuned = ctx.find(TuneResult)
    if tuned is not None:
        return list(tuned.specs), tuned.nuisance
    return list(ctx.config.estimators), ctx.config.nuisance


def tune_stage(ctx: RunContext) -> TuneResult:
    """Choose nuisance and forest params on cluster-grouped held-out data (``tune:``)."""
    specs, nuisance = estimation_inputs(ctx)
    return tune_estimation(
        ctx.data, specs, nuisance, ctx.config.tune,
        random_state=ctx.seed, progress=ctx.progress, backend=ctx.backend,
    )  # fmt: skip


def estimation_stage(ctx: RunContext) -> EstimationResult:
    """Fit the run's estimators on shared cross-fitted nuisances (``estimators:``)."""
    specs, nuisance = estimation_inputs(ctx)
    return fit_estimators(
        ctx.data, specs, nuisance,
        random_state=ctx.seed, progress=ctx.progress, backend=ctx.backend,
        treatment_label=ctx.study.label(ctx.config.roles.treatment),
    )  # fmt: skip
