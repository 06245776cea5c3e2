"""The stages of a run, in run order (:mod:`vaer.context`).

Adding a stage: write ``my_stage(ctx: RunContext) -> StageResult`` in its package (and, on
synthetic data, a truth check) and add one :class:`~vaer.context.Stage` here;
:func:`vaer.pipeline.run_experiment` times it, logs its tables, metrics and truth checks,
and the report shows its tables.
"""

from __future__ import annotations

from vaer.attribution.stage import attribution_stage
from vaer.attribution.truth_check import attribution_truth_metrics
from vaer.context import Stage
from vaer.did.stage import did_stage, did_truth_metrics
from vaer.estimators.stage import estimation_stage, tune_stage
from vaer.estimators.truth_metrics import truth_metrics
from vaer.heterogeneity.stage import heterogeneity_stage
from vaer.heterogeneity.truth_check import gate_truth_metrics
from vaer.robustness.stage import robustness_stage

STAGES: tuple[Stage, ...] = (
    Stage(
        "tune", "tuning nuisances and forests on cluster-grouped splits", tune_stage,
        enabled=lambda config: config.tune.enabled, child_run=True,
    ),
    Stage(
        "estimation", "estimating effects", estimation_stage,
        truth_check=lambda result, ctx: truth_metrics(result, ctx.known_truth()),
    ),
    Stage(
        "heterogeneity", "analysing heterogeneity across firms", heterogeneity_stage,
        enabled=lambda config: config.heterogeneity.enabled,
        truth_check=lambda result, ctx: gate_truth_metrics(
            result, ctx.known_truth(), ctx.data.units
        ),
    ),
    Stage(
        "robustness", "refuting and sensitivity analysis", robustness_stage,
        enabled=lambda config: config.robustness.enabled,
    ),
    Stage(
        "attribution", "attributing effects to channels and mechanisms", attribution_stage,
        enabled=lambda config: config.attribution.enabled,
        truth_check=lambda result, ctx: attribution_truth_metrics(
            result, ctx.known_truth(), ctx.data
        ),
    ),
    Stage(
        "did", "staggered difference-in-differences of the policy", did_stage,
        enabled=lambda config: config.did.enabled, truth_check=did_truth_metrics,
    ),
)  # fmt: skip
