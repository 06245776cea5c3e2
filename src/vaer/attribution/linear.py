r"""Exact SHAP values of a linear effect function.

For :math:`\hat\tau(x) = b + \sum_j \beta_j x_j` (econml ``LinearDML`` without a
featurizer) and a background distribution with means :math:`\bar x_j`, the
interventional Shapley value of feature :math:`j` at :math:`x` is
:math:`\beta_j (x_j - \bar x_j)` (Lundberg and Lee, 2017, *NeurIPS*, the linear
explainer), and the values sum to :math:`\hat\tau(x) - E_{bg}[\hat\tau]`.
"""

from __future__ import annotations

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
