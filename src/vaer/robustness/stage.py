"""The robustness stage: every configured refuter and the sensitivity analysis of a run.

Each refuter is a test at the level ``robustness.alpha`` (its rows share it), so it
raises a false alarm in at most that share of runs when the model is right and the SEs it
uses are valid (:mod:`vaer.robustness.rules`).

All refits (refuters and sensitivity benchmarks) are gathered into one batch and run by
:func:`vaer.robustness.refit.refit_many` on the run's compute backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

from vaer.compute import Backend, LocalBackend
from vaer.config.models import EstimatorSpec, NuisanceConfig, estimator_label
from vaer.config.robustness import RobustnessConfig
from vaer.context import Progress, RunContext
from vaer.data.design import AnalysisData, sample_clusters, subset
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import EstimationResult, EstimatorResult
from vaer.estimators.stage import estimation_inputs
from vaer.robustness.data_subsets import data_subsets_plan
from vaer.robustness.leave_one_group_out import leave_one_group_out_plan
from vaer.robustness.panel import panel_rebuild
from vaer.robustness.placebo_treatment import placebo_treatment_plan
from vaer.robustness.plan import Plan
from vaer.robustness.random_common_cause import random_common_cause_plan
from vaer.robustness.rebuild import Rebuild, alternative_measures_plan, placebo_shock_plan
from vaer.robustness.refit import plr_sensitivity, refit_many, refuter_spec
from vaer.robustness.results import CheckResult, RobustnessResult
from vaer.robustness.sensitivity import (
    Benchmark,
    SensitivityResult,
    benchmark_strengths,
    estimator_sensitivity,
)


def _benchmark_controls(data: AnalysisData) -> dict[str, list[str]]:
    """Observed controls (not modifiers) and their encoded columns in ``data.w``."""
    in_w = set(data.w.columns)
    return {
        name: columns
        for name, columns in data.feature_groups.items()
        if columns and all(c in in_w for c in columns)
    }


def _plans(
    data: AnalysisData,
    reference: EstimatorResult,
    config: RobustnessConfig,
    random_state: int,
    rebuild: Rebuild | None,
) -> list[Plan]:
    alpha = config.alpha
    plans: list[Plan] = []
    if config.placebo_treatment.enabled:
        plans.append(
            placebo_treatment_plan(
                data,
                repeats=config.placebo_treatment.repeats,
                random_state=random_state + 1,
                alpha=alpha,
            )
        )
    if config.random_common_cause.enabled:
        plans.append(
            random_common_cause_plan(
                data, reference.ate, random_state=random_state + 2, alpha=alpha
            )
        )
    if config.data_subsets.enabled:
        cfg = config.data_subsets
        plans.append(
            data_subsets_plan(
                data,
                reference.ate,
                fraction=cfg.fraction,
                repeats=cfg.repeats,
                random_state=random_state + 3,
                alpha=alpha,
            )
        )
    if config.leave_one_group_out.enabled:
        dims = config.leave_one_group_out.dimensions or list(data.firm_types.columns)
        if dims:
            plans.append(
                leave_one_group_out_plan(data, reference.scores, dimensions=dims, alpha=alpha)
            )
    for name in ("placebo_shock", "alternative_measures"):
        if getattr(config, name).enabled and rebuild is None:
            raise ValueError(
                f"`robustness.{name}` needs the firm-year panel (`data.mode: panel`) to "
                f"rebuild the analysis table; set `robustness.{name}.enabled: false`"
            )
    if config.placebo_shock.enabled and rebuild is not None:
        plans.append(placebo_shock_plan(rebuild, window="calm", alpha=alpha))
    if config.alternative_measures.enabled and rebuild is not None:
        plans.append(
            alternative_measures_plan(
                rebuild, reference.ate, variants=config.alternative_measures.variants, alpha=alpha
            )
        )
    return plans


def run_robustness(
    data: AnalysisData,
    estimation: EstimationResult,
    specs: Sequence[EstimatorSpec],
    nuisance: NuisanceConfig,
    config: RobustnessConfig,
    *,
    random_state: int,
    rebuild: Rebuild | None = None,
    backend: Backend | None = None,
    progress: Progress | None = None,
) -> RobustnessResult:
    """Run the refuters and the sensitivity analysis configured in ``robustness:``.

    Parameters
    ----------
    data : AnalysisData
        The run's analysis data.
    estimation : EstimationResult
        The run's estimates (from the same ``data``).
    specs : sequence of EstimatorSpec
        The run's estimators; refuters refit the one ``config.estimator`` names (default:
        the first ``linear_dml``).
    nuisance : NuisanceConfig
    config : RobustnessConfig
    random_state : int
        The run's seed: refits use it (same folds as the run); permutations, random
        columns and subsets draw from seeds derived from it.
    rebuild : callable, optional
        ``rebuild(variant) -> AnalysisData`` for the panel-only refuters.
    backend : vaer.compute.Backend, optional
        Where the refits run (the run's ``compute:`` backend; default: in this process).
    progress : callable, optional

    Returns
    -------
    RobustnessResult

    Raises
    ------
    ValueError
        If a panel-only refuter is enabled without ``rebuild``, or ``config.estimator``
        names no estimator of the run.
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    spec = refuter_spec(specs, config.estimator)
    label = estimator_label(spec)
    labels = [r.label for r in estimation.estimators]
    keep = sample_clusters(data.clusters, config.max_units, random_state + 4)
    if keep is not None:
        say(
            f"robustness: refuters on {keep.sum()} of {data.n} units (whole clusters drawn "
            f"at random, robustness.max_units={config.max_units})"
        )
        data = subset(data, keep)
    if label in labels and keep is None:
        reference = estimation.get(label)
    else:
        say(f"robustness: fitting {label} for the refuters")
        reference = fit_estimators(data, [spec], nuisance, random_state=random_state).estimators[0]
    plans = _plans(data, reference, config, random_state, rebuild)

    sens = config.sensitivity
    controls = _benchmark_controls(data) if sens.enabled and sens.benchmark else {}
    benchmark_data = [
        replace(data, w=data.w.drop(columns=columns)) for columns in controls.values()
    ]
    batch = [d for plan in plans for d in plan.datasets] + benchmark_data
    runner = backend if backend is not None else LocalBackend(n_jobs=1)
    say(f"robustness: {len(batch)} refits with {label} ({runner.name} backend)")
    refits = refit_many(batch, spec, nuisance, random_state=random_state, backend=runner)

    checks: list[CheckResult] = []
    position = 0
    for plan in plans:
        chunk = refits[position : position + len(plan.datasets)]
        position += len(plan.datasets)
        checks.extend(plan.evaluate(chunk))

    sensitivity = None
    if sens.enabled:
        long = plr_sensitivity(reference.model)
        benchmarks: list[Benchmark] = []
        if long is not None:
            for name, refit in zip(controls, refits[position:], strict=True):
                if refit.sensitivity is not None:
                    benchmarks.append(benchmark_strengths(name, long, refit.sensitivity))
        items = []
        for result in estimation.estimators:
            params = plr_sensitivity(result.model)
            if params is None:
                continue
            try:
                rv_econml = float(result.model.robustness_value())
            except (AttributeError, ValueError):
                rv_econml = math.nan
            items.append(
                estimator_sensitivity(
                    result.ate,
                    params,
                    cf_y=sens.cf_y,
                    cf_d=sens.cf_d,
                    rho=sens.rho,
                    benchmarks=benchmarks,
                    rv_econml=rv_econml,
                )
            )
        sensitivity = SensitivityResult(estimators=tuple(items), benchmarks=tuple(benchmarks))
    return RobustnessResult(
        checks=tuple(checks),
        sensitivity=sensitivity,
        seconds=time.perf_counter() - started,
        n_units=data.n,
    )


def _panel_rebuild(ctx: RunContext) -> Rebuild | None:
    """The analysis table rebuilt from the run's panel for the placebo shock and the
    alternative measures (panel mode with either check on), else None."""
    config = ctx.config
    wanted = (
        config.robustness.placebo_shock.enabled or config.robustness.alternative_measures.enabled
    )
    if ctx.study.source_panel is None or not wanted:
        return None
    return panel_rebuild(
        ctx.study.source_panel, config.roles, config.measures,
        calm=config.robustness.placebo_shock.window,
        min_firms_per_type=config.data.min_firms_per_type,
        max_levels=config.data.max_levels,
    )  # fmt: skip


def robustness_stage(ctx: RunContext) -> RobustnessResult:
    """The robustness stage (:mod:`vaer.context`): refuters refit the run's estimators with
    the same (tuned) specs and nuisances."""
    specs, nuisance = estimation_inputs(ctx)
    return run_robustness(
        ctx.data, ctx.result(EstimationResult), specs, nuisance, ctx.config.robustness,
        random_state=ctx.seed, rebuild=_panel_rebuild(ctx),
        backend=ctx.backend, progress=ctx.progress,
    )  # fmt: skip
