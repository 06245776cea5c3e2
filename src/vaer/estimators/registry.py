"""Estimators by ``kind``: how each econml final stage is built on the run's shared
nuisances, how it is fitted on a subset of rows, its estimand and its scores.

Nuisances are fitted once per run (:class:`~vaer.estimators.nuisance.NuisanceCache`) and
reach econml in one of two faithful ways:

* DML kinds are fitted on the cross-fitted residuals with
  :class:`~vaer.estimators.learners.ZeroRegressor` nuisances (the final stage econml
  fits on ``(Y, T)`` with nuisances ``m`` and ``e`` is the one it fits on
  ``(Y - m, T - e)`` with zero nuisances);
* linear DR-learner and IV kinds get ``W`` = the row ids and
  :class:`~vaer.estimators.learners.CachedRegressor` /
  :class:`~vaer.estimators.learners.CachedClassifier` nuisances that return the
  run's out-of-fold predictions of those rows, so econml computes its own
  pseudo-outcomes or residuals from them; ``tests/test_estimators.py`` checks this
  reproduces econml's own fit with the same learners and folds.

Forest kinds are :class:`~vaer.estimators.cluster_forest.ClusterForest` s on the same
residuals or pseudo-outcomes (econml's trees, subsampled, split honestly and bagged by
cluster), so their per-unit intervals and out-of-bag effects respect the clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vaer.config.estimators import (
    AnyParams,
    BinaryParams,
    DMLIVParams,
    DRLearnerParams,
    ForestDRLearnerParams,
    ForestParams,
    LinearDMLParams,
    OrthoIVParams,
    SparseLinearDMLParams,
)
from vaer.estimators.cluster_forest import (
    ClusterForest,
    causal_moments,
    iv_moments,
    regression_moments,
)
from vaer.estimators.learners import CachedClassifier, CachedRegressor, ZeroRegressor
from vaer.estimators.nuisance import Folds, NuisanceCache
from vaer.estimators.scores import aipw_scores, continuous_dr_scores, iv_dr_scores

Family = Literal["continuous", "binary", "iv"]

APE = "average partial effect of one more unit of {treatment}"
APE_IV = "average partial effect of one more unit of {treatment} (identified by the instrument)"
"""Estimands of the continuous kinds; ``{treatment}`` is the treatment's display label."""


def _rows_of(folds: Folds) -> int:
    """Units a model built on ``folds`` is fitted on (each is held out once)."""
    return sum(len(test) for _, test in folds)


# ------------------------------------------------------------------ builders


def _build_linear_dml(params: LinearDMLParams, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.dml import LinearDML

    return LinearDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=rs,
    )


def _build_sparse_linear_dml(
    params: SparseLinearDMLParams, folds: Folds, rs: int, cache: NuisanceCache
) -> Any:
    from econml.dml import SparseLinearDML

    return SparseLinearDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        fit_cate_intercept=params.fit_cate_intercept,
        alpha=params.alpha,
        n_alphas=params.n_alphas,
        max_iter=params.max_iter,
        tol=params.tol,
        cv=folds,
        n_jobs=1,
        random_state=rs,
    )


def forest_of(params: ForestParams, random_state: int, n_jobs: int = 1) -> ClusterForest:
    """An unfitted :class:`ClusterForest` of a forest kind's params (``n_jobs`` threads grow
    its trees; the forest does not depend on it)."""
    return ClusterForest(
        n_estimators=params.n_estimators,
        min_samples_leaf=params.min_samples_leaf,
        max_depth=params.max_depth,
        max_features=params.max_features,
        max_samples=params.max_samples,
        criterion=getattr(params, "criterion", "mse"),
        ci_group_size=params.ci_group_size,
        max_subsample_size=params.max_subsample_size,
        linear_base=params.linear_base,
        random_state=random_state,
        n_jobs=n_jobs,
    )


def _build_forest(
    params: ForestParams, folds: Folds, rs: int, cache: NuisanceCache
) -> ClusterForest:
    """:func:`forest_of` with the run's threads for this many rows (``nuisance.n_jobs``)."""
    return forest_of(params, rs, cache.config.jobs(_rows_of(folds)))


def _dr_models(params: BinaryParams, cache: NuisanceCache) -> dict[str, Any]:
    nu = cache.binary(params.cv, params.binarise)
    id_column = cache.x.shape[1]
    return {
        "model_propensity": CachedClassifier(nu.propensity, id_column),
        "model_regression": CachedRegressor(nu.mu, id_column),
        "min_propensity": params.min_propensity,
    }


def _build_dr_learner(params: DRLearnerParams, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.dr import LinearDRLearner

    return LinearDRLearner(
        **_dr_models(params, cache),
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=rs,
    )


def _build_orthoiv(params: OrthoIVParams, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.iv.dml import OrthoIV

    base, iv = cache.continuous(params.cv), cache.iv(params.cv)
    k = cache.x.shape[1]
    return OrthoIV(
        model_y_xw=CachedRegressor(base.y_hat, k),
        model_t_xw=CachedRegressor(base.t_hat, k),
        model_z_xw=CachedRegressor(iv.z_hat, k),
        projection=False,
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=rs,
    )


def _build_dmliv(params: DMLIVParams, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.iv.dml import DMLIV

    base, iv = cache.continuous(params.cv), cache.iv(params.cv)
    k = cache.x.shape[1]
    return DMLIV(
        model_y_xw=CachedRegressor(base.y_hat, k),
        model_t_xw=CachedRegressor(base.t_hat, k),
        model_t_xwz=CachedRegressor(iv.t_xwz_hat, k),
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=rs,
    )


# ------------------------------------------------------------------- fitters


def _ids(rows: np.ndarray) -> np.ndarray:
    return rows.astype(np.float64)[:, None]


def _fit_on_residuals(
    model: Any, rows: np.ndarray, cache: NuisanceCache, params: AnyParams
) -> None:
    nu = cache.continuous(params.cv)
    model.fit(nu.y_res[rows], nu.t_res[rows], X=cache.x[rows])


def _fit_causal_forest(
    model: Any, rows: np.ndarray, cache: NuisanceCache, params: AnyParams
) -> None:
    nu = cache.continuous(params.cv)
    moments = causal_moments(nu.y_res[rows], nu.t_res[rows])
    model.fit(cache.x[rows], moments, cache.clusters[rows])


def _fit_forest_dr(
    model: Any, rows: np.ndarray, cache: NuisanceCache, params: BinaryParams
) -> None:
    nu = cache.binary(params.cv, params.binarise)
    pseudo = aipw_scores(cache.y, nu.d, nu.mu, nu.propensity, params.min_propensity)
    model.fit(cache.x[rows], regression_moments(pseudo[rows]), cache.clusters[rows])


def _fit_binary(model: Any, rows: np.ndarray, cache: NuisanceCache, params: BinaryParams) -> None:
    nu = cache.binary(params.cv, params.binarise)
    model.fit(cache.y[rows], nu.d[rows], X=cache.x[rows], W=_ids(rows))


def _fit_iv(model: Any, rows: np.ndarray, cache: NuisanceCache, params: AnyParams) -> None:
    if cache.z is None:
        raise ValueError("instrumental-variable estimators need `roles.instrument`")
    model.fit(cache.y[rows], cache.t[rows], Z=cache.z[rows], X=cache.x[rows], W=_ids(rows))


def _fit_iv_forest(model: Any, rows: np.ndarray, cache: NuisanceCache, params: AnyParams) -> None:
    nu, iv = cache.continuous(params.cv), cache.iv(params.cv)
    moments = iv_moments(nu.y_res[rows], nu.t_res[rows], iv.z_res[rows])
    model.fit(cache.x[rows], moments, cache.clusters[rows])


# ------------------------------------------------------------ scores per family


def _continuous_scores(tau_hat: np.ndarray, cache: NuisanceCache, params: AnyParams) -> np.ndarray:
    nu = cache.continuous(params.cv)
    return continuous_dr_scores(tau_hat, nu.y_res, nu.t_res, nu.t_res_var)


def _binary_scores(tau_hat: np.ndarray, cache: NuisanceCache, params: BinaryParams) -> np.ndarray:
    nu = cache.binary(params.cv, params.binarise)
    return aipw_scores(cache.y, nu.d, nu.mu, nu.propensity, params.min_propensity)


def _iv_scores(tau_hat: np.ndarray, cache: NuisanceCache, params: AnyParams) -> np.ndarray:
    nu, iv = cache.continuous(params.cv), cache.iv(params.cv)
    return iv_dr_scores(tau_hat, nu.y_res, nu.t_res, iv.z_res, iv.compliance)


# ------------------------------------------------------- out-of-sample effects


def halves(n: int) -> Folds:
    """Two halves; with precomputed nuisances the split only has to be valid."""
    index = np.arange(n)
    return [(index[n // 2 :], index[: n // 2]), (index[: n // 2], index[n // 2 :])]


@dataclass(frozen=True)
class EstimatorKind:
    """How one estimator kind is built, fitted, scored and made out-of-sample.

    Attributes
    ----------
    family : {"continuous", "binary", "iv"}
        Which shared nuisances it uses.
    build : callable(params, folds, random_state, cache) -> unfitted model
    fit : callable(model, rows, cache, params)
        Fits ``model`` on the given rows (global row indices).
    scores : callable(tau_hat, cache, params) -> ndarray of shape (n,)
        Doubly robust scores of the estimand.
    out_of_sample : {"oob", "crossfit"}
        Forests use their cluster-honest out-of-bag effects (with per-unit variances);
        the others are refitted on each half of the clusters and predicted on the other.
    """

    kind: str
    family: Family
    build: Callable[[Any, Folds, int, NuisanceCache], Any]
    fit: Callable[[Any, np.ndarray, NuisanceCache, Any], None]
    scores: Callable[[np.ndarray, NuisanceCache, Any], np.ndarray]
    out_of_sample: Literal["oob", "crossfit"]

    def estimand(self, params: AnyParams, treatment: str = "the treatment") -> str:
        """The quantity this estimator's ATE row estimates, naming the treatment by its
        display label ``treatment``."""
        if isinstance(params, DRLearnerParams | ForestDRLearnerParams):
            where = "median" if params.binarise == "median" else "top-tercile cut-off"
            return (
                f"average effect of high vs low {treatment} (high = {treatment} above its {where})"
            )
        return (APE_IV if self.family == "iv" else APE).format(treatment=treatment)


REGISTRY: dict[str, EstimatorKind] = {
    "linear_dml": EstimatorKind(
        "linear_dml", "continuous", _build_linear_dml, _fit_on_residuals, _continuous_scores,
        "crossfit",
    ),
    "sparse_linear_dml": EstimatorKind(
        "sparse_linear_dml", "continuous", _build_sparse_linear_dml, _fit_on_residuals,
        _continuous_scores, "crossfit",
    ),
    "causal_forest_dml": EstimatorKind(
        "causal_forest_dml", "continuous", _build_forest, _fit_causal_forest,
        _continuous_scores, "oob",
    ),
    "dr_learner": EstimatorKind(
        "dr_learner", "binary", _build_dr_learner, _fit_binary, _binary_scores, "crossfit"
    ),
    "forest_dr_learner": EstimatorKind(
        "forest_dr_learner", "binary", _build_forest, _fit_forest_dr, _binary_scores, "oob"
    ),
    "orthoiv": EstimatorKind("orthoiv", "iv", _build_orthoiv, _fit_iv, _iv_scores, "crossfit"),
    "dmliv": EstimatorKind("dmliv", "iv", _build_dmliv, _fit_iv, _iv_scores, "crossfit"),
    "causal_iv_forest": EstimatorKind(
        "causal_iv_forest", "iv", _build_forest, _fit_iv_forest, _iv_scores, "oob"
    ),
}  # fmt: skip


def get_kind(kind: str) -> EstimatorKind:
    """Look up an estimator kind.

    Raises
    ------
    ValueError
        If ``kind`` is not registered; the message lists the known kinds.
    """
    if kind not in REGISTRY:
        raise ValueError(f"unknown estimator kind '{kind}'; allowed: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[kind]
