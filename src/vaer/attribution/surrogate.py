r"""Exact TreeSHAP of a distilled model of the effect function.

A generalized random forest predicts :math:`\hat\tau(x)` by solving a moment equation
whose terms are averaged over trees (a ratio of averaged moments), so it is not an
average of per-tree outputs and path-dependent TreeSHAP over its own trees explains a
different function. Model-agnostic explainers of :math:`\hat\tau` are exact in the limit
but need thousands of forest evaluations per unit (econml's
``CausalForestDML.shap_values`` falls back to shap's permutation explainer).

This module instead *distils* the effect function: a LightGBM regressor :math:`s` is
fitted to :math:`\hat\tau(X_i)` at the study's units and explained exactly by
path-dependent TreeSHAP (LightGBM's ``pred_contrib``; Lundberg et al., 2020, *Nature
Machine Intelligence* 2, 56-67). The explanation is exact for :math:`s`; how well
:math:`s` reproduces :math:`\hat\tau` is reported as the R² on units held out of the
distillation (``fidelity_r2``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SURROGATE_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "reg_lambda": 0.0,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}


@dataclass(frozen=True)
class Surrogate:
    """A distilled effect function and its fidelity.

    Attributes
    ----------
    model : LGBMRegressor
        Fitted to tau_hat(x) on ``n_fit`` units.
    fidelity_r2 : float
        R² of the surrogate's predictions to tau_hat on ``n_holdout`` held-out units.
    n_fit, n_holdout : int
    """

    model: Any = field(repr=False)
    fidelity_r2: float
    n_fit: int
    n_holdout: int

    def shap_values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Path-dependent TreeSHAP values of the surrogate at ``x``.

        Returns
        -------
        values : ndarray of shape (n, p)
        base : ndarray of shape (n,)
            The expected value; ``values.sum(1) + base`` equals the surrogate's prediction.
        """
        x = np.asarray(x, dtype=np.float64)
        contrib = np.asarray(self.model.predict(x, pred_contrib=True), dtype=np.float64)
        return contrib[:, :-1], contrib[:, -1]


def r_squared(target: np.ndarray, prediction: np.ndarray) -> float:
    """Coefficient of determination of ``prediction`` for ``target`` (1 - SSE/SST)."""
    target = np.asarray(target, dtype=np.float64)
    sst = float(np.sum((target - target.mean()) ** 2))
    sse = float(np.sum((target - np.asarray(prediction, dtype=np.float64)) ** 2))
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)


def fit_surrogate(
    effect: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    holdout: float = 0.2,
    max_units: int = 50_000,
    params: dict[str, Any] | None = None,
    random_state: int = 0,
) -> Surrogate:
    """Distil ``effect`` into a LightGBM regressor and measure its fidelity.

    Parameters
    ----------
    effect : callable
        Maps an (n, p) float array to tau_hat of shape (n,).
    x : ndarray of shape (n, p)
        Units at which the effect function is distilled (the study's encoded modifiers).
    holdout : float
        Share of units kept out of the fit to measure ``fidelity_r2``; in (0, 0.5).
    max_units : int
        At most this many units (drawn at random) are used.
    params : dict, optional
        LightGBM parameters overriding :data:`SURROGATE_DEFAULTS`.
    random_state : int

    Returns
    -------
    Surrogate

    Raises
    ------
    ValueError
        If ``holdout`` is outside (0, 0.5), fewer than 50 units are given, or ``params``
        has a key LightGBM does not take.
    """
    from lightgbm import LGBMRegressor

    if not 0.0 < holdout < 0.5:
        raise ValueError(f"`holdout` must be in (0, 0.5); got {holdout}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 50:
        raise ValueError(f"`x` must be 2-D with at least 50 rows; got shape {x.shape}")
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(x))[:max_units]
    n_holdout = max(round(holdout * len(order)), 10)
    test, train = order[:n_holdout], order[n_holdout:]
    target = np.asarray(effect(x[order]), dtype=np.float64).ravel()
    by_row = dict(zip(order.tolist(), target, strict=True))
    y_train = np.array([by_row[i] for i in train.tolist()])
    y_test = np.array([by_row[i] for i in test.tolist()])
    model = LGBMRegressor(**{**SURROGATE_DEFAULTS, "random_state": random_state})
    if params:
        unknown = sorted(set(params) - set(model.get_params()))
        if unknown:
            raise ValueError(
                f"attribution.surrogate.params: unknown LightGBM keys {unknown}; "
                f"allowed: {', '.join(sorted(model.get_params()))}"
            )
        model.set_params(**params)
    model.fit(x[train], y_train)
    fidelity = r_squared(y_test, np.asarray(model.predict(x[test]), dtype=np.float64))
    return Surrogate(model=model, fidelity_r2=fidelity, n_fit=len(train), n_holdout=len(test))
