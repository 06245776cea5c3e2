r"""Exact SHAP values of a linear effect function.

For :math:`\hat\tau(x) = b + \sum_j \beta_j x_j` (econml ``LinearDML`` without a
featurizer) and a background distribution with means :math:`\bar x_j`, the
interventional Shapley value of feature :math:`j` at :math:`x` is
:math:`\beta_j (x_j - \bar x_j)` (Lundberg and Lee, 2017, *NeurIPS*, the linear
explainer), and the values sum to :math:`\hat\tau(x) - E_{bg}[\hat\tau]`.

Final stages that are linear in :math:`x` without exposing ``coef_`` as an array
(``LinearDRLearner``, ``OrthoIV``, ``DMLIV``) get :math:`\beta` from the effect itself
(:func:`effect_coefficients`: :math:`\beta_j = \hat\tau(e_j) - \hat\tau(0)`, exact for
a linear function, checked at random points).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def linear_coefficients(model: Any, n_features: int) -> np.ndarray:
    """The final-stage slope coefficients of a fitted linear CATE model.

    Parameters
    ----------
    model : fitted econml estimator
        Must expose ``coef_`` over the raw features (its ``featurizer`` parameter unset;
        econml's internal intercept featurizer ``featurizer_`` is not a feature map).
    n_features : int
        Number of columns of X the model was fitted on.

    Returns
    -------
    ndarray of shape (n_features,)

    Raises
    ------
    TypeError
        If the model has no ``coef_`` (it is not linear in X).
    ValueError
        If the model uses a featurizer, or ``coef_`` does not have one entry per feature.
    """
    if not hasattr(model, "coef_"):
        raise TypeError(
            f"{type(model).__name__} has no `coef_`: linear SHAP needs a linear final stage; "
            "use `attribution.method: permutation` or `tree_surrogate`"
        )
    if getattr(model, "featurizer", None) is not None:
        raise ValueError(
            "linear SHAP needs the final stage to be linear in the raw features, but the "
            "model uses a featurizer; use `attribution.method: permutation`"
        )
    coef = np.asarray(model.coef_, dtype=np.float64).ravel()
    if coef.shape != (n_features,):
        raise ValueError(
            f"`coef_` must have one entry per feature ({n_features}); got shape {coef.shape}"
        )
    return coef


def effect_coefficients(
    effect: Callable[[np.ndarray], np.ndarray], n_features: int, *, random_state: int = 0
) -> np.ndarray:
    """Slopes of an effect function that is linear in the features, from ``p + 1``
    evaluations: :math:`\\beta_j = f(e_j) - f(0)`.

    Parameters
    ----------
    effect : callable
        Maps an (n, p) float array to shape (n,).
    n_features : int
    random_state : int
        Seeds the 8 random points at which linearity is checked.

    Returns
    -------
    ndarray of shape (n_features,)

    Raises
    ------
    ValueError
        If the function is not linear in the features (relative error above 1e-6 at a
        check point); use ``attribution.method: permutation`` or ``tree_surrogate``.
    """
    eye = np.vstack([np.zeros((1, n_features)), np.eye(n_features)])
    values = np.asarray(effect(eye), dtype=np.float64).ravel()
    intercept, coef = values[0], values[1:] - values[0]
    points = np.random.default_rng(random_state).normal(size=(8, n_features))
    expected = intercept + points @ coef
    actual = np.asarray(effect(points), dtype=np.float64).ravel()
    scale = max(1.0, float(np.abs(expected).max()))
    if not np.allclose(actual, expected, rtol=0.0, atol=1e-6 * scale):
        raise ValueError(
            "the effect function is not linear in the modifiers, so linear SHAP does not "
            "apply; use `attribution.method: permutation` or `tree_surrogate`"
        )
    return coef


def linear_shap(coef: np.ndarray, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """SHAP values :math:`\\beta_j (x_j - \\bar x_j)` per unit and feature.

    Parameters
    ----------
    coef : ndarray of shape (p,)
    x : ndarray of shape (n, p)
        Units to explain.
    background : ndarray of shape (m, p)
        Background units whose means are the reference point.

    Returns
    -------
    ndarray of shape (n, p)

    Raises
    ------
    ValueError
        If the shapes do not agree.
    """
    coef = np.asarray(coef, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    if x.ndim != 2 or background.ndim != 2 or not x.shape[1] == background.shape[1] == len(coef):
        raise ValueError(
            "`x` and `background` must be 2-D with one column per coefficient; got "
            f"{x.shape}, {background.shape} and {coef.shape}"
        )
    return (x - background.mean(axis=0)) * coef
