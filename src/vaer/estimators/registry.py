"""Estimators by ``kind``: how each econml final stage is built on the run's shared
nuisances, how it is fitted on a subset of rows, its estimand and its scores.

Nuisances are fitted once per run (:class:`~vaer.estimators.nuisance.NuisanceCache`) and
reach econml in one of two faithful ways:

* DML kinds are fitted on the cross-fitted residuals with
  :class:`~vaer.estimators.learners.ZeroRegressor` nuisances (the final stage econml
  fits on ``(Y, T)`` with nuisances ``m`` and ``e`` is the one it fits on
  ``(Y - m, T - e)`` with zero nuisances);
* DR-learner and IV kinds get ``W`` = the row ids and
  :class:`~vaer.estimators.learners.CachedRegressor` /
  :class:`~vaer.estimators.learners.CachedClassifier` nuisances that return the
  run's out-of-fold predictions of those rows, so econml computes its own
  pseudo-outcomes or residuals from them; ``tests/test_estimators.py`` checks this
  reproduces econml's own fit with the same learners and folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vaer.estimators.ivforest import ResidualIVForest
from vaer.estimators.learners import CachedClassifier, CachedRegressor, ZeroRegressor
from vaer.estimators.nuisance import Folds, NuisanceCache
from vaer.estimators.scores import aipw_scores, continuous_dr_scores, iv_dr_scores

Family = Literal["continuous", "binary", "iv"]

APE = "average partial effect of one more unit of VA"
APE_IV = "average partial effect of one more unit of VA (identified by the instrument)"


def forest_kwargs(params: Any, random_state: int, n_rows: int) -> dict[str, Any]:
    """econml forest arguments of vaer's forest params for a fit on ``n_rows`` units.

    ``max_samples`` is lowered so that no tree is grown on more than
    ``params.max_subsample_size`` units.
    """
    max_samples = params.max_samples
    if params.max_subsample_size is not None and n_rows * max_samples > params.max_subsample_size:
        max_samples = params.max_subsample_size / n_rows
    return {
        "n_estimators": params.n_estimators,
        "min_samples_leaf": params.min_samples_leaf,
        "max_depth": params.max_depth,
        "max_samples": max_samples,
        "max_features": params.max_features,
        "honest": params.honest,
        # one thread: econml sums tree predictions in thread order, so more threads
        # would change the last digits; parallelism is over nuisance folds instead
        "n_jobs": 1,
        "random_state": random_state,
    }


def _rows_of(folds: Folds) -> int:
    """Units a model built on ``folds`` is fitted on (each is held out once)."""
    return sum(len(test) for _, test in folds)


# ------------------------------------------------------------------ builders


def _build_linear_dml(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.dml import LinearDML

    return LinearDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=rs,
    )


def _build_sparse_linear_dml(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
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


def _build_causal_forest_dml(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.dml import CausalForestDML

    return CausalForestDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        cv=folds,
        criterion=params.criterion,
        inference=True,
        **forest_kwargs(params, rs, _rows_of(folds)),
    )


def _dr_models(params: Any, cache: NuisanceCache) -> dict[str, Any]:
    nu = cache.binary(params.cv, params.binarise)
    id_column = cache.x.shape[1]
    return {
        "model_propensity": CachedClassifier(nu.propensity, id_column),
        "model_regression": CachedRegressor(nu.mu, id_column),
        "min_propensity": params.min_propensity,
    }


def _build_dr_learner(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.dr import LinearDRLearner

    return LinearDRLearner(
        **_dr_models(params, cache),
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=rs,
    )


def _build_forest_dr_learner(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    from econml.dr import ForestDRLearner

    return ForestDRLearner(
        **_dr_models(params, cache), cv=folds, **forest_kwargs(params, rs, _rows_of(folds))
    )


def _build_orthoiv(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
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


def _build_dmliv(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
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


def _build_causal_iv_forest(params: Any, folds: Folds, rs: int, cache: NuisanceCache) -> Any:
    return ResidualIVForest(
        criterion=params.criterion, **forest_kwargs(params, rs, _rows_of(folds))
    )


# ------------------------------------------------------------------- fitters


def _ids(rows: np.ndarray) -> np.ndarray:
    return rows.astype(np.float64)[:, None]


def _fit_on_residuals(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
    nu = cache.continuous(params.cv)
    model.fit(nu.y_res[rows], nu.t_res[rows], X=cache.x[rows])


def _rloss(model: Any, x: np.ndarray, y_res: np.ndarray, t_res: np.ndarray) -> float:
    """Out-of-bag R-loss ``mean((y_res - tau_oob(x) t_res)^2)`` of a fitted forest kind."""
    tau = oob_effect(model, x)
    return float(np.mean((y_res - tau * t_res) ** 2))


def _fit_causal_forest(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
    """Fit ``causal_forest_dml``; with ``select_honesty``, honest or not by out-of-bag R-loss.

    Both candidates are fitted on the rows (or on a random subsample of
    ``select_honesty_max_rows`` of them, after which the chosen one is refitted on all
    rows); ``model`` ends up as the chosen forest, with ``vaer_honest_`` saying which.
    """
    if not params.select_honesty:
        _fit_on_residuals(model, rows, cache, params)
        return
    nu = cache.continuous(params.cv)
    random_state = model.random_state
    sample = rows
    if len(rows) > params.select_honesty_max_rows:
        rng = np.random.default_rng(random_state)
        sample = np.sort(rng.choice(rows, params.select_honesty_max_rows, replace=False))
    candidates: dict[bool, Any] = {}
    losses: dict[bool, float] = {}
    for honest in (False, True):
        candidate = _build_causal_forest_dml(
            params.model_copy(update={"honest": honest}), halves(len(sample)), random_state, cache
        )
        candidate.fit(nu.y_res[sample], nu.t_res[sample], X=cache.x[sample])
        candidates[honest] = candidate
        losses[honest] = _rloss(candidate, cache.x[sample], nu.y_res[sample], nu.t_res[sample])
    best = min(losses, key=lambda honest: losses[honest])
    chosen = candidates[best]
    if len(sample) < len(rows):
        chosen = _build_causal_forest_dml(
            params.model_copy(update={"honest": best}), model.cv, random_state, cache
        )
        _fit_on_residuals(chosen, rows, cache, params)
    vars(model).update(vars(chosen))
    model.vaer_honest_ = best
    model.vaer_honesty_rloss_ = dict(losses)


def _fit_binary(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
    nu = cache.binary(params.cv, params.binarise)
    model.fit(cache.y[rows], nu.d[rows], X=cache.x[rows], W=_ids(rows))


def _fit_iv(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
    if cache.z is None:
        raise ValueError("instrumental-variable estimators need `roles.instrument`")
    model.fit(cache.y[rows], cache.t[rows], Z=cache.z[rows], X=cache.x[rows], W=_ids(rows))


def _fit_iv_forest(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
    nu, iv = cache.continuous(params.cv), cache.iv(params.cv)
    model.fit(cache.x[rows], nu.t_res[rows], nu.y_res[rows], iv.z_res[rows])


# ------------------------------------------------------------ scores per family


def _continuous_scores(tau_hat: np.ndarray, cache: NuisanceCache, params: Any) -> np.ndarray:
    nu = cache.continuous(params.cv)
    return continuous_dr_scores(tau_hat, nu.y_res, nu.t_res, nu.t_res_var)


def _binary_scores(tau_hat: np.ndarray, cache: NuisanceCache, params: Any) -> np.ndarray:
    nu = cache.binary(params.cv, params.binarise)
    return aipw_scores(cache.y, nu.d, nu.mu, nu.propensity, params.min_propensity)


def _iv_scores(tau_hat: np.ndarray, cache: NuisanceCache, params: Any) -> np.ndarray:
    nu, iv = cache.continuous(params.cv), cache.iv(params.cv)
    return iv_dr_scores(tau_hat, nu.y_res, nu.t_res, iv.z_res, iv.compliance)


# ------------------------------------------------------- out-of-sample effects


def _forest_oob(model: Any) -> Any:
    """The fitted generalized random forest inside an econml estimator."""
    if isinstance(model, ResidualIVForest):
        return model.forest_
    final = getattr(model, "fitted_models_final", None)
    if final is not None:  # DR learners: one forest per treatment contrast
        return final[0]
    return model.model_final_


def oob_effect(model: Any, x: np.ndarray) -> np.ndarray:
    """Out-of-bag effect of a forest kind (in-sample effect where no tree left a unit out)."""
    forest = _forest_oob(model)
    oob = np.asarray(forest.oob_predict(x), dtype=np.float64).reshape(len(x), -1)[:, 0]
    missing = np.isnan(oob)
    if missing.any():
        oob[missing] = np.asarray(model.effect(x[missing])).ravel()
    return oob


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
        Forests use out-of-bag effects; the others are refitted on each half of the
        clusters and predicted on the other half.
    econml_inference : bool
        Whether econml gives analytic intervals (DMLIV offers only the bootstrap).
    """

    kind: str
    family: Family
    build: Callable[[Any, Folds, int, NuisanceCache], Any]
    fit: Callable[[Any, np.ndarray, NuisanceCache, Any], None]
    scores: Callable[[np.ndarray, NuisanceCache, Any], np.ndarray]
    out_of_sample: Literal["oob", "crossfit"]
    econml_inference: bool = True

    def estimand(self, params: Any) -> str:
        """The quantity this estimator's ATE row estimates."""
        if self.family == "binary":
            where = "median" if params.binarise == "median" else "top-tercile cut-off"
            return f"average effect of high vs low VA (high = VA above its {where})"
        return APE_IV if self.family == "iv" else APE


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
        "causal_forest_dml", "continuous", _build_causal_forest_dml, _fit_causal_forest,
        _continuous_scores, "oob",
    ),
    "dr_learner": EstimatorKind(
        "dr_learner", "binary", _build_dr_learner, _fit_binary, _binary_scores, "crossfit"
    ),
    "forest_dr_learner": EstimatorKind(
        "forest_dr_learner", "binary", _build_forest_dr_learner, _fit_binary, _binary_scores,
        "oob",
    ),
    "orthoiv": EstimatorKind("orthoiv", "iv", _build_orthoiv, _fit_iv, _iv_scores, "crossfit"),
    "dmliv": EstimatorKind(
        "dmliv", "iv", _build_dmliv, _fit_iv, _iv_scores, "crossfit", econml_inference=False
    ),
    "causal_iv_forest": EstimatorKind(
        "causal_iv_forest", "iv", _build_causal_iv_forest, _fit_iv_forest, _iv_scores, "oob"
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
