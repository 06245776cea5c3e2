"""Fitting every estimator of a run on shared cross-fitted nuisances."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaer.compute import Backend, LocalBackend
from vaer.config.estimators import (
    AnyParams,
    ForestParams,
    NuisanceConfig,
    check_instrument_for,
    estimator_label,
)
from vaer.config.models import EstimatorSpec
from vaer.context import Progress
from vaer.data.design import AnalysisData
from vaer.estimators.inference import cluster_robust_mean
from vaer.estimators.nuisance import NuisanceCache
from vaer.estimators.registry import EstimatorKind, get_kind, halves
from vaer.estimators.results import AteEstimate, EstimationResult, EstimatorResult


def _ate_from_scores(
    label: str, estimand: str, scores: np.ndarray, clusters: np.ndarray
) -> AteEstimate:
    mean = cluster_robust_mean(scores, clusters)
    return AteEstimate(
        estimator=label,
        estimand=estimand,
        estimate=mean.estimate,
        se=mean.se,
        ci_low=mean.ci_low,
        ci_high=mean.ci_high,
        n=mean.n,
        se_type="cluster-robust (DR scores)" if mean.n_clusters < mean.n else "robust (DR scores)",
    )


FOREST_NOTE = (
    "per-firm 95% interval (params.per_firm_intervals) around the forest's smoothed effect "
    "at the firm: cluster forest, trees that never saw the firm's cluster, "
    "bootstrap-of-little-bags variance over half-samples of clusters; it leaves out the "
    "smoothing bias where the effect bends (79% coverage of the true effect on held-out "
    "designs, benchmarks/per_firm_diagnosis)"
)
FOREST_WITHHELD_NOTE = (
    "no per-firm interval: the forest's estimate at a firm is smoothed and where the effect "
    "bends (a step, kink or U-shape in a modifier) its bias is not in the interval (on "
    "held-out designs the intervals covered the true effect for 79% of firms; "
    "benchmarks/per_firm_diagnosis); group effects, the best linear projection and the "
    "heterogeneity tests hold; params.per_firm_intervals: true prints them"
)
LINEAR_NOTE = (
    "no per-firm interval: a linear CATE model's interval at a firm covers the best "
    "linear projection of the effect on the modifiers, not the firm's effect (the "
    "projection's coefficients are in tables/blp.csv)"
)


def _forest_note(forest: Any, printed: bool) -> str:
    """:data:`FOREST_NOTE` (intervals printed) or :data:`FOREST_WITHHELD_NOTE`, with
    whether the forest kept its linear base, and why."""
    note = FOREST_NOTE if printed else FOREST_WITHHELD_NOTE
    used = "with" if forest.base_used_ else "without"
    losses = forest.oob_losses_
    if not losses:
        return f"{note}; grown {used} a linear base (as configured)"
    groups = len(forest.in_half_)
    pilot = "" if forest.loss_groups_ == groups else (
        f" of the forests of the first {forest.loss_groups_} of its {groups} tree groups"
    )  # fmt: skip
    return (
        f"{note}; grown {used} a linear base, the smaller cluster-honest out-of-bag "
        f"R-loss{pilot} ({losses[True]:.4g} with, {losses[False]:.4g} without)"
    )


def _out_of_sample(
    kind: EstimatorKind,
    model: Any,
    params: AnyParams,
    cache: NuisanceCache,
    random_state: int,
    names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster-honest out-of-sample effects and their per-unit standard errors.

    Forests give each unit the effect of the trees that never saw its cluster, with its
    bootstrap-of-little-bags SE (:meth:`ClusterForest.oob_predict_and_var`). The others
    are refitted on one half of the clusters and predicted on the other, both ways (two
    refits keep this cheap next to the nuisances; a linear final stage loses little from
    half the data); their SE is NaN (:data:`LINEAR_NOTE`).

    A modifier that does not vary in a half (a level held only by firms of the other
    half's cities) says nothing there about how the effect varies with it: that half's
    model is fitted without it, and so predicts the other half as if the effect did not
    vary with it. Left in, its slope is not identified: econml's debiased lasso
    (``sparse_linear_dml``) divides by its zero variance and returns NaN, OrthoIV's
    final stage is singular, and a minimum-norm solution would give it an arbitrary slope.
    """
    x = cache.x
    if kind.out_of_sample == "oob":
        # the auto base has them already when it compared its losses on every unit
        effect, variance = model.oob_ or model.oob_predict_and_var(x, cache.clusters)
        return effect, np.sqrt(variance)
    effect = np.empty(len(x), dtype=np.float64)
    for train, test in cache.folds(2):
        varies = np.flatnonzero(np.ptp(x[train], axis=0) > 0)
        half = cache if len(varies) == x.shape[1] else cache.with_modifiers(varies)
        fold_model = kind.build(params, halves(len(train)), random_state, half)
        try:
            kind.fit(fold_model, train, half, params)
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                _singular_half(kind.kind, len(train), cache.clusters[train], varies, names)
            ) from exc
        effect[test] = np.asarray(fold_model.effect(half.x[test]), dtype=np.float64).reshape(
            len(test)
        )
    return effect, np.full(len(x), np.nan)


def _singular_half(
    kind: str, n_rows: int, clusters: np.ndarray, varies: np.ndarray, names: Sequence[str]
) -> str:
    """Why a final stage could not be fitted on half of the clusters, and the fix (its
    modifiers that vary there are collinear)."""
    n_clusters = len(np.unique(clusters))
    return (
        f"{kind}: its final stage cannot be fitted on half of the clusters ({n_clusters} "
        f"clusters, {n_rows} units), which the cluster-honest out-of-sample effects "
        f"need: its modifiers are collinear there ({len(varies)} vary: "
        f"{', '.join(names[c] for c in varies[:8])}{', ...' if len(varies) > 8 else ''}). "
        "Use more clusters, merge rare levels, or drop modifiers"
    )


def fit_estimators(
    data: AnalysisData,
    specs: Sequence[EstimatorSpec],
    nuisance: NuisanceConfig,
    *,
    random_state: int,
    n_jobs: int | None = None,
    progress: Progress | None = None,
    backend: Backend | None = None,
    treatment_label: str = "the treatment",
) -> EstimationResult:
    """Fit the run's estimators on shared, cluster-grouped cross-fitted nuisances.

    Nuisances are fitted once per treatment encoding (continuous, each binarisation
    rule, instrument) and number of folds ``cv``, and reused by every estimator that
    needs them (:class:`~vaer.estimators.nuisance.NuisanceCache`).

    Parameters
    ----------
    data : AnalysisData
    specs : sequence of estimator specs
    nuisance : NuisanceConfig
    random_state : int
        Seed for folds, nuisance learners and forests.
    n_jobs : int, optional
        Parallel cross-fitting folds (default ``nuisance.n_jobs``); results do not
        depend on it.
    progress : callable, optional
        Called with a short message before each step.
    backend : vaer.compute.Backend, optional
        Where the cross-fitting folds run (one task per fold); a local backend runs them
        in ``nuisance.n_jobs`` processes. Results do not depend on it.
    treatment_label : str
        The treatment's display label, named in each estimand (the pipeline passes the
        label of ``roles.treatment``, by default the column's name).

    Returns
    -------
    EstimationResult
        Per estimator: ATE from the mean of its doubly robust scores with a
        cluster-robust SE (``roles.cluster``), cluster-honest out-of-sample ``tau_hat``
        with its per-unit SE where one is valid for the unit's effect, and the scores.

    Raises
    ------
    ValueError
        If an IV estimator is requested and ``data.instrument`` is None, or there are
        fewer clusters than folds.
    """
    say = progress or (lambda _message: None)
    check_instrument_for(list(specs), None if data.instrument is None else "instrument")
    if n_jobs is not None:
        nuisance = nuisance.model_copy(update={"n_jobs": n_jobs})
    x = data.x.to_numpy(dtype=np.float64)
    cache = NuisanceCache(
        x=x,
        xw=data.xw.to_numpy(dtype=np.float64),
        y=np.asarray(data.y, dtype=np.float64),
        t=np.asarray(data.t, dtype=np.float64),
        clusters=data.clusters,
        config=nuisance,
        random_state=random_state,
        z=None if data.instrument is None else np.asarray(data.instrument, dtype=np.float64),
        backend=(backend or LocalBackend()).with_local_jobs(nuisance.jobs(data.n)),
    )
    rows = np.arange(data.n)
    results = []
    for spec in specs:
        label = estimator_label(spec)
        kind = get_kind(spec.kind)
        params = spec.params
        say(f"fitting {label} (nuisances cross-fitted on {params.cv} cluster-grouped folds)")
        started = time.perf_counter()
        nuisance_before = cache.total_seconds
        model = kind.build(params, cache.folds(params.cv), random_state, cache)
        kind.fit(model, rows, cache, params)
        tau_hat, tau_se = _out_of_sample(
            kind, model, params, cache, random_state, list(map(str, data.x.columns))
        )
        scores = kind.scores(tau_hat, cache, params)
        estimand = kind.estimand(params, treatment_label)
        forest = kind.out_of_sample == "oob"
        printed = forest and isinstance(params, ForestParams) and params.per_firm_intervals
        if not printed:
            tau_se = np.full(len(tau_hat), np.nan)
        fit_seconds = time.perf_counter() - started - (cache.total_seconds - nuisance_before)
        results.append(
            EstimatorResult(
                label=label,
                kind=spec.kind,
                ate=_ate_from_scores(label, estimand, scores, data.clusters),
                tau_hat=tau_hat,
                tau_se=tau_se,
                interval="firm" if printed else "none",
                interval_note=_forest_note(model, printed) if forest else LINEAR_NOTE,
                params=params,
                scores=scores,
                fit_seconds=fit_seconds,
                model=model,
                estimand=estimand,
                family=kind.family,
            )
        )
    return EstimationResult(
        units=data.units,
        estimators=tuple(results),
        nuisance_seconds=cache.total_seconds,
        nuisance_seconds_by_family=dict(cache.seconds),
        t_hat=cache.first_t_hat(),
        treatment=data.t,
        cache=cache,
    )
