"""Estimators by ``kind``: how to build each econml final stage on shared residuals, and
how to get an out-of-sample effect estimate for every unit.

Every estimator here is fitted on the run's cross-fitted residuals with
:class:`~vaer.estimators.nuisance.ZeroRegressor` nuisances, so the nuisance models are
fitted once per run and shared (see :mod:`vaer.estimators.nuisance`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vaer.config.models import CausalForestDMLParams, LinearDMLParams
from vaer.estimators.nuisance import Folds, ZeroRegressor


def _build_linear_dml(params: LinearDMLParams, folds: Folds, random_state: int) -> Any:
    from econml.dml import LinearDML

    return LinearDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        fit_cate_intercept=params.fit_cate_intercept,
        cv=folds,
        random_state=random_state,
    )


def _build_causal_forest_dml(params: CausalForestDMLParams, folds: Folds, random_state: int) -> Any:
    from econml.dml import CausalForestDML

    return CausalForestDML(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        cv=folds,
        n_estimators=params.n_estimators,
        min_samples_leaf=params.min_samples_leaf,
        max_depth=params.max_depth,
        max_samples=params.max_samples,
        max_features=params.max_features,
        criterion=params.criterion,
        honest=params.honest,
        inference=True,
        n_jobs=1,
        random_state=random_state,
    )


def _oob_effect(
    model: Any,
    x: np.ndarray,
    build: Callable[[Folds], Any],
    y_res: np.ndarray,
    t_res: np.ndarray,
    folds: Folds,
) -> np.ndarray:
    """Out-of-bag effect of a causal forest (in-sample effect where a unit has no OOB tree)."""
    oob = np.asarray(model.model_final_.oob_predict(x), dtype=np.float64).reshape(len(x), -1)[:, 0]
    missing = np.isnan(oob)
    if missing.any():
        oob[missing] = np.asarray(model.effect(x[missing])).ravel()
    return oob


def _crossfit_effect(
    model: Any,
    x: np.ndarray,
    build: Callable[[Folds], Any],
    y_res: np.ndarray,
    t_res: np.ndarray,
    folds: Folds,
) -> np.ndarray:
    """Cross-fitted effect: the final stage refitted without each fold, predicted on it."""
    effect = np.empty(len(x), dtype=np.float64)
    for train, test in folds:
        fold_model = build(_halves(len(train)))
        fold_model.fit(y_res[train], t_res[train], X=x[train])
        effect[test] = np.asarray(fold_model.effect(x[test])).ravel()
    return effect


def _halves(n: int) -> Folds:
    """Two halves; with zero nuisances the split only has to be valid, not informative."""
    index = np.arange(n)
    return [(index[n // 2 :], index[: n // 2]), (index[: n // 2], index[n // 2 :])]


@dataclass(frozen=True)
class EstimatorKind:
    """How one estimator kind is built and how its out-of-sample effects are obtained."""

    kind: str
    estimand: str
    build: Callable[[Any, Folds, int], Any]
    out_of_sample: Callable[..., np.ndarray]


REGISTRY: dict[str, EstimatorKind] = {
    "linear_dml": EstimatorKind(
        kind="linear_dml",
        estimand="average partial effect of one more unit of VA",
        build=_build_linear_dml,
        out_of_sample=_crossfit_effect,
    ),
    "causal_forest_dml": EstimatorKind(
        kind="causal_forest_dml",
        estimand="average partial effect of one more unit of VA",
        build=_build_causal_forest_dml,
        out_of_sample=_oob_effect,
    ),
}


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
