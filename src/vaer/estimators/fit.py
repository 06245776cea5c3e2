"""Fitting every estimator of a run on shared cross-fitted nuisances."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from vaer.compute import Backend, LocalBackend
from vaer.config.estimators import NuisanceConfig, check_instrument_for, estimator_label
from vaer.config.models import EstimatorSpec
from vaer.data.design import AnalysisData
from vaer.estimators.chunks import by_rows
from vaer.estimators.inference import cluster_robust_mean
from vaer.estimators.ivforest import ResidualIVForest
from vaer.estimators.nuisance import NuisanceCache
from vaer.estimators.registry import EstimatorKind, get_kind, halves, oob_effect
from vaer.estimators.results import AteEstimate, EstimationResult, EstimatorResult

Progress = Callable[[str], None]


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


def _forest_inference(model: Any, x: np.ndarray) -> tuple[float, float, np.ndarray]:
    """A forest's mean effect, its SE and per-unit SEs, a block of rows at a time
    (:func:`~vaer.estimators.chunks.by_rows`).

    For forests econml's ``population_summary`` has no exact SE of the mean and bounds it
    by ``sqrt(mean(stderr**2))``; the blocks reproduce that exactly.
    """
    blocks = by_rows(lambda part: model.effect_inference(X=part), x)
    points = np.concatenate([np.ravel(b.point_estimate) for b in blocks]).astype(np.float64)
    tau_se = np.concatenate([np.ravel(b.stderr) for b in blocks]).astype(np.float64)
    return float(np.mean(points)), float(np.sqrt(np.mean(tau_se**2))), tau_se


def _econml_inference(
    label: str,
    estimand: str,
    model: Any,
    x: np.ndarray,
    available: bool = True,
    forest: bool = False,
) -> tuple[AteEstimate, np.ndarray]:
    """econml's own ATE interval and per-unit SEs, from one ``effect_inference`` pass
    (econml's ``ate_inference(X)`` is ``effect_inference(X).population_summary()``), or
    for a forest :func:`_forest_inference` in blocks of rows."""
    z = float(stats.norm.ppf(0.975))
    se_type = "econml default"
    if not available:
        estimate = float(np.mean(model.effect(x)))
        se = float("nan")
        tau_se = np.full(len(x), np.nan)
        se_type = "econml default (unavailable: bootstrap only)"
    elif isinstance(model, ResidualIVForest):
        estimate, se, z = model.ate_interval(x)
        tau_se = model.effect_stderr(x)
    elif forest:
        estimate, se, tau_se = _forest_inference(model, x)
    else:
        inference = model.effect_inference(X=x)
        tau_se = np.asarray(inference.stderr, dtype=np.float64).reshape(len(x))
        summary = inference.population_summary()
        estimate = float(np.ravel(summary.mean_point)[0])
        se = float(np.ravel(summary.stderr_mean)[0])
    ate = AteEstimate(
        estimator=label,
        estimand=estimand,
        estimate=estimate,
        se=se,
        ci_low=estimate - z * se,
        ci_high=estimate + z * se,
        n=len(x),
        se_type=se_type,
    )
    return ate, tau_se


def _out_of_sample(
    kind: EstimatorKind, model: Any, params: Any, cache: NuisanceCache, random_state: int
) -> np.ndarray:
    """Out-of-bag effects for forests; for the others the final stage is refitted on one
    half of the clusters and predicted on the other, both ways (two refits keep this
    cheap next to the nuisances; a linear final stage loses little from half the data)."""
    x = cache.x
    if kind.out_of_sample == "oob":
        return oob_effect(model, x)
    effect = np.empty(len(x), dtype=np.float64)
    for train, test in cache.folds(2):
        fold_model = kind.build(params, halves(len(train)), random_state, cache)
        kind.fit(fold_model, train, cache, params)
        effect[test] = np.asarray(fold_model.effect(x[test]), dtype=np.float64).reshape(len(test))
    return effect


def fit_estimators(
    data: AnalysisData,
    specs: Sequence[EstimatorSpec],
    nuisance: NuisanceConfig,
    *,
    random_state: int,
    n_jobs: int | None = None,
    progress: Progress | None = None,
    backend: Backend | None = None,
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

    Returns
    -------
    EstimationResult
        Per estimator: ATE from the mean of its doubly robust scores with a
        cluster-robust SE (``roles.cluster``), econml's own ATE interval, out-of-sample
        ``tau_hat``, its econml SE, and the scores.

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
        tau_hat = _out_of_sample(kind, model, params, cache, random_state)
        scores = kind.scores(tau_hat, cache, params)
        estimand = kind.estimand(params)
        forest = kind.out_of_sample == "oob"
        ate_econml, tau_se = _econml_inference(
            label, estimand, model, x, kind.econml_inference, forest
        )
        fit_seconds = time.perf_counter() - started - (cache.total_seconds - nuisance_before)
        results.append(
            EstimatorResult(
                label=label,
                kind=spec.kind,
                ate=_ate_from_scores(label, estimand, scores, data.clusters),
                ate_econml=ate_econml,
                tau_hat=tau_hat,
                tau_se=tau_se,
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
    )
