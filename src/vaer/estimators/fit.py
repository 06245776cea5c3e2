"""Fitting every estimator of a run on shared cross-fitted nuisances."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from vaer.config.models import EstimatorSpec, NuisanceConfig, estimator_label
from vaer.data.design import AnalysisData
from vaer.estimators.inference import cluster_robust_mean
from vaer.estimators.nuisance import Folds, Nuisances, fit_nuisances, grouped_folds, make_regressor
from vaer.estimators.registry import EstimatorKind, get_kind
from vaer.estimators.results import AteEstimate, EstimationResult, EstimatorResult
from vaer.estimators.scores import continuous_dr_scores

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


def _ate_from_econml(label: str, estimand: str, model: object, x: np.ndarray) -> AteEstimate:
    inference = model.ate_inference(x)  # type: ignore[attr-defined]
    estimate = float(np.ravel(inference.mean_point)[0])
    se = float(np.ravel(inference.stderr_mean)[0])
    z = stats.norm.ppf(0.975)
    return AteEstimate(
        estimator=label,
        estimand=estimand,
        estimate=estimate,
        se=se,
        ci_low=estimate - z * se,
        ci_high=estimate + z * se,
        n=len(x),
        se_type="econml default",
    )


def fit_estimators(
    data: AnalysisData,
    specs: Sequence[EstimatorSpec],
    nuisance: NuisanceConfig,
    *,
    random_state: int,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> EstimationResult:
    """Fit the run's estimators on shared, cluster-grouped cross-fitted nuisances.

    Nuisances are fitted once per number of folds ``cv`` and reused by every estimator
    with that ``cv``.

    Parameters
    ----------
    data : AnalysisData
    specs : sequence of estimator specs
    nuisance : NuisanceConfig
    random_state : int
        Seed for folds, nuisance learners and forests.
    n_jobs : int
        Parallel folds; results do not depend on it.
    progress : callable, optional
        Called with a short message before each step.

    Returns
    -------
    EstimationResult
    """
    say = progress or (lambda _message: None)
    x = data.x.to_numpy(dtype=np.float64)
    cache: dict[int, Nuisances] = {}
    nuisance_seconds = 0.0
    results = []
    for spec in specs:
        label = estimator_label(spec)
        cv = spec.params.cv
        if cv not in cache:
            say(f"cross-fitting nuisances ({cv} folds grouped by cluster)")
            started = time.perf_counter()
            folds = grouped_folds(data.clusters, cv, random_state)
            cache[cv] = fit_nuisances(
                data.x,
                data.xw,
                data.y,
                data.t,
                folds,
                lambda: make_regressor(nuisance, random_state),
                n_jobs=n_jobs,
            )
            nuisance_seconds += time.perf_counter() - started
        shared = cache[cv]
        kind = get_kind(spec.kind)
        say(f"fitting {label}")
        started = time.perf_counter()

        def build(folds: Folds, kind: EstimatorKind = kind, spec: EstimatorSpec = spec) -> Any:
            return kind.build(spec.params, folds, random_state)

        model = build(shared.folds)
        model.fit(shared.y_res, shared.t_res, X=x)
        tau_hat = kind.out_of_sample(model, x, build, shared.y_res, shared.t_res, shared.folds)
        tau_se = np.asarray(model.effect_inference(x).stderr, dtype=np.float64).ravel()
        scores = continuous_dr_scores(tau_hat, shared.y_res, shared.t_res, shared.t_res_var)
        fit_seconds = time.perf_counter() - started
        results.append(
            EstimatorResult(
                label=label,
                kind=spec.kind,
                ate=_ate_from_scores(label, kind.estimand, scores, data.clusters),
                ate_econml=_ate_from_econml(label, kind.estimand, model, x),
                tau_hat=tau_hat,
                tau_se=tau_se,
                scores=scores,
                fit_seconds=fit_seconds,
                model=model,
            )
        )
    return EstimationResult(
        units=data.units,
        estimators=tuple(results),
        nuisance_seconds=nuisance_seconds,
        t_hat=next(iter(cache.values())).t_hat if cache else None,
    )
