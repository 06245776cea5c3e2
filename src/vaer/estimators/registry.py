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


def forest_kwargs(params: Any, random_state: int, n_rows: int, n_jobs: int = 1) -> dict[str, Any]:
    """econml forest arguments of vaer's forest params for a fit on ``n_rows`` units.

    ``max_samples`` is lowered so that no tree is grown on more than
    ``params.max_subsample_size`` units. ``n_jobs`` threads grow the trees (each tree's
    seed and subsample are drawn before, so the forest does not depend on it); the
    registry's fitters set it back to 1 after the fit, because econml sums tree
    predictions in the order threads finish, which would change the last digits.
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
        "n_jobs": n_jobs,
        "random_state": random_state,
    }


def _rows_of(folds: Folds) -> int:
    """Units a model built on ``folds`` is fitted on (each is held out once)."""
    return sum(len(test) for _, test in folds)


def _forest_kwargs(params: Any, rs: int, folds: Folds, cache: NuisanceCache) -> dict[str, Any]:
    """:func:`forest_kwargs` with the run's threads for this many rows (``nuisance.n_jobs``)."""
    n_rows = _rows_of(folds)
    return forest_kwargs(params, rs, n_rows, cache.config.jobs(n_rows))


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


def _build_causal_forest_dml(
    params: Any, folds: Folds, rs: int, cache: NuisanceCache, base: Any = None
) -> Any:
    return _residual_forest(params, rs, folds, cache.config.jobs(_rows_of(folds)), base)


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
        **_dr_models(params, cache), cv=folds, **_forest_kwargs(params, rs, folds, cache)
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
    return ResidualIVForest(criterion=params.criterion, **_forest_kwargs(params, rs, folds, cache))


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


def _residual_forest(
    params: Any, random_state: int, folds: Folds, n_jobs: int = 1, base: Any = None
) -> Any:
    """econml ``CausalForestDML`` to be fitted on residuals (zero nuisance models); with a
    fitted :class:`~vaer.estimators.linear_base.LinearCate` ``base``, its forest starts
    from ``params.linear_base`` times it."""
    from vaer.estimators.linear_base import LinearBaseCausalForestDML

    model = LinearBaseCausalForestDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        cv=folds,
        criterion=params.criterion,
        inference=True,
        **forest_kwargs(params, random_state, _rows_of(folds), n_jobs),
    )
    if base is not None:
        model.linear_base_, model.linear_base_share_ = base, params.linear_base
    return model


def choose_forest(
    params: Any, x: np.ndarray, y_res: np.ndarray, t_res: np.ndarray, random_state: int
) -> tuple[Any, list[float]]:
    """The candidate forest of ``params.select`` with the lowest out-of-bag R-loss.

    Each candidate is grown with ``params.select.n_estimators`` trees on the residuals
    (of a random subsample of ``params.select.max_rows`` units above that size).

    Returns
    -------
    chosen : CausalForestDMLParams
        ``params`` with the winning candidate's overrides (``select`` unchanged).
    losses : list of float
        Out-of-bag R-loss of each candidate, in order.
    """
    select = params.select
    rows = np.arange(len(y_res))
    if len(rows) > select.max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, select.max_rows, False))
    losses = []
    for candidate in select.candidates:
        small = params.model_copy(update={**candidate, "n_estimators": select.n_estimators})
        forest = _residual_forest(small, random_state, halves(len(rows)))
        forest.fit(y_res[rows], t_res[rows], X=x[rows])
        losses.append(_rloss(forest, x[rows], y_res[rows], t_res[rows]))
    best = select.candidates[int(np.argmin(losses))]
    return params.model_copy(update=best), losses


def _fit_causal_forest(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
    """Fit ``causal_forest_dml``: the linear base (``linear_base`` > 0), then with
    ``select`` the candidate forest chosen by :func:`choose_forest` on what the base leaves.

    ``model`` ends up as the chosen forest grown in full, with ``vaer_forest_candidate_``
    (the winning overrides) and ``vaer_forest_rloss_`` (each candidate's R-loss), and
    ``linear_base_`` (the fitted :class:`~vaer.estimators.linear_base.LinearCate`) when
    there is a base.
    """
    nu = cache.continuous(params.cv)
    x, y_res, t_res = cache.x[rows], nu.y_res[rows], nu.t_res[rows]
    base = None
    if params.linear_base > 0:
        from vaer.estimators.linear_base import LinearCate

        base = LinearCate(model.random_state).fit(x, y_res, t_res, cache.clusters[rows])
    chosen, losses = params, None
    if params.select.enabled:
        remainder = y_res if base is None else y_res - params.linear_base * base.predict(x) * t_res
        chosen, losses = choose_forest(params, x, remainder, t_res, model.random_state)
    final = _build_causal_forest_dml(chosen, model.cv, model.random_state, cache, base)
    _fit_on_residuals(final, rows, cache, params)
    vars(model).update(vars(final))
    if losses is not None:
        model.vaer_forest_candidate_ = dict(params.select.candidates[int(np.argmin(losses))])
        model.vaer_forest_rloss_ = losses


def _one_thread(model: Any) -> None:
    """Predict in one thread from now on (see :func:`forest_kwargs`)."""
    forest = _forest_oob(model)
    for part in [model, forest, *getattr(forest, "estimators_", [])]:
        if hasattr(part, "n_jobs"):
            part.n_jobs = 1


def _forest_fit(fit: Callable[[Any, np.ndarray, NuisanceCache, Any], None]) -> Any:
    """``fit``, then :func:`_one_thread`."""

    def fitted(model: Any, rows: np.ndarray, cache: NuisanceCache, params: Any) -> None:
        fit(model, rows, cache, params)
        _one_thread(model)

    return fitted


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
        "causal_forest_dml", "continuous", _build_causal_forest_dml,
        _forest_fit(_fit_causal_forest), _continuous_scores, "oob",
    ),
    "dr_learner": EstimatorKind(
        "dr_learner", "binary", _build_dr_learner, _fit_binary, _binary_scores, "crossfit"
    ),
    "forest_dr_learner": EstimatorKind(
        "forest_dr_learner", "binary", _build_forest_dr_learner, _forest_fit(_fit_binary),
        _binary_scores, "oob",
    ),
    "orthoiv": EstimatorKind("orthoiv", "iv", _build_orthoiv, _fit_iv, _iv_scores, "crossfit"),
    "dmliv": EstimatorKind(
        "dmliv", "iv", _build_dmliv, _fit_iv, _iv_scores, "crossfit", econml_inference=False
    ),
    "causal_iv_forest": EstimatorKind(
        "causal_iv_forest", "iv", _build_causal_iv_forest, _forest_fit(_fit_iv_forest),
        _iv_scores, "oob",
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
