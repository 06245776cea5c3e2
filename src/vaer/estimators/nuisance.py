"""First-stage (nuisance) learners and their cross-fitting.

The defaults work on firm data without tuning: a regularised LightGBM with a moderate
number of shallow trees, one thread per model (so results do not depend on the number of
parallel jobs), and a fixed ``random_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone

from vaer.config.models import NuisanceConfig

LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}

Folds = list[tuple[np.ndarray, np.ndarray]]


def make_regressor(config: NuisanceConfig, random_state: int) -> BaseEstimator:
    """Build an unfitted nuisance regressor.

    Parameters
    ----------
    config : NuisanceConfig
        ``model`` is ``lightgbm`` (default), ``random_forest`` or ``ridge``; ``params``
        override the defaults.
    random_state : int
        Seed passed to the learner.

    Raises
    ------
    ValueError
        If ``params`` has a key the learner does not take.
    """
    if config.model == "lightgbm":
        from lightgbm import LGBMRegressor

        model: BaseEstimator = LGBMRegressor(**{**LGBM_DEFAULTS, "random_state": random_state})
    elif config.model == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        model = RandomForestRegressor(
            n_estimators=200, min_samples_leaf=10, n_jobs=1, random_state=random_state
        )
    else:
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=np.logspace(-3, 3, 13))
    if config.params:
        allowed = model.get_params()
        unknown = sorted(set(config.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"nuisance.params: unknown keys {unknown} for {config.model}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        model.set_params(**config.params)
    return model


class ZeroRegressor(RegressorMixin, BaseEstimator):
    """Predicts 0; stands in for econml's nuisance models when residuals are precomputed.

    Fitting an econml DML estimator on residuals ``(Y - m, T - e)`` with zero nuisance
    models gives exactly the final stage it would fit on ``(Y, T)`` with ``m`` and ``e``.
    """

    def fit(self, X: Any, y: Any, **_: Any) -> ZeroRegressor:
        self.n_features_in_ = np.shape(X)[1] if np.ndim(X) > 1 else 1
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.zeros(np.shape(X)[0])


def grouped_folds(clusters: np.ndarray, n_splits: int, random_state: int) -> Folds:
    """Cross-fitting folds in which no cluster is split across folds.

    Parameters
    ----------
    clusters : ndarray of shape (n,)
        Cluster code per unit.
    n_splits : int
        Number of folds (>= 2).
    random_state : int
        Seed of the shuffle of clusters into folds.

    Raises
    ------
    ValueError
        If there are fewer clusters than folds.
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(clusters))
    if n_groups < n_splits:
        raise ValueError(
            f"cv={n_splits} folds need at least {n_splits} clusters; the data have {n_groups}"
        )
    splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    index = np.arange(len(clusters))
    return [(train, test) for train, test in splitter.split(index, groups=clusters)]


def crossfit_predict(
    model: BaseEstimator,
    features: pd.DataFrame,
    target: np.ndarray,
    folds: Folds,
    n_jobs: int = 1,
) -> np.ndarray:
    """Out-of-fold predictions of ``target`` from ``features``, one clone of ``model`` per fold."""

    def fit_fold(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fitted = clone(model).fit(features.iloc[train], target[train])
        return test, np.asarray(fitted.predict(features.iloc[test]), dtype=np.float64)

    prediction = np.empty(len(target), dtype=np.float64)
    parts = Parallel(n_jobs=n_jobs)(delayed(fit_fold)(tr, te) for tr, te in folds)
    for test, values in parts:
        prediction[test] = values
    return prediction


@dataclass(frozen=True)
class Nuisances:
    """Cross-fitted first stages of one run, shared by every estimator that uses them.

    Attributes
    ----------
    folds : list of (train, test) index arrays
    y_hat, t_hat : ndarray of shape (n,)
        Out-of-fold predictions of E[Y | X, W] and E[T | X, W].
    y_res, t_res : ndarray of shape (n,)
        Residuals ``y - y_hat`` and ``t - t_hat``.
    t_res_var : ndarray of shape (n,)
        Out-of-fold predictions of E[T_res^2 | X], floored at 5% of mean(T_res^2).
    """

    folds: Folds
    y_hat: np.ndarray
    t_hat: np.ndarray
    y_res: np.ndarray
    t_res: np.ndarray
    t_res_var: np.ndarray


def fit_nuisances(
    x: pd.DataFrame,
    xw: pd.DataFrame,
    y: np.ndarray,
    t: np.ndarray,
    folds: Folds,
    make_model: Callable[[], BaseEstimator],
    n_jobs: int = 1,
) -> Nuisances:
    """Cross-fit the outcome, treatment and residual-variance regressions.

    The residual variance ``s2(x) = E[(T - e(X, W))^2 | X = x]`` weights the doubly robust
    scores of a continuous treatment (see :mod:`vaer.estimators.scores`).
    """
    y_hat = crossfit_predict(make_model(), xw, y, folds, n_jobs)
    t_hat = crossfit_predict(make_model(), xw, t, folds, n_jobs)
    t_res = t - t_hat
    t_res_var = crossfit_predict(make_model(), x, t_res**2, folds, n_jobs)
    floor = 0.05 * float(np.mean(t_res**2))
    return Nuisances(
        folds=folds,
        y_hat=y_hat,
        t_hat=t_hat,
        y_res=y - y_hat,
        t_res=t_res,
        t_res_var=np.maximum(t_res_var, floor),
    )


def fold_ids(folds: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """The fold each unit is held out in."""
    ids = np.empty(n, dtype=np.int64)
    for k, (_, test) in enumerate(folds):
        ids[test] = k
    return ids
