"""Doubly robust scores of a continuous treatment in the partially linear model.

For :math:`Y = g(W) + \\tau(X) T + \\varepsilon` with residuals
:math:`\\tilde Y = Y - m(X, W)`, :math:`\\tilde T = T - e(X, W)` and
:math:`s^2(x) = E[\\tilde T^2 | X = x]`, the score

.. math:: \\Gamma_i = \\hat\\tau(X_i)
          + \\frac{\\tilde T_i\\,(\\tilde Y_i - \\hat\\tau(X_i)\\tilde T_i)}{s^2(X_i)}

has mean equal to the average partial effect :math:`E[\\tau(X)]` when either
:math:`\\hat\\tau` or the residual models are right (grf's approach for continuous
treatments; Athey, Tibshirani and Wager, 2019, *Ann. Statist.* 47(2)).
"""

from __future__ import annotations

import numpy as np


def continuous_dr_scores(
    tau_hat: np.ndarray, y_res: np.ndarray, t_res: np.ndarray, t_res_var: np.ndarray
) -> np.ndarray:
    """Doubly robust scores :math:`\\Gamma_i` of the average partial effect.

    Parameters
    ----------
    tau_hat : ndarray of shape (n,)
        Out-of-sample effect estimates.
    y_res, t_res : ndarray of shape (n,)
        Cross-fitted outcome and treatment residuals.
    t_res_var : ndarray of shape (n,)
        Cross-fitted :math:`E[\\tilde T^2 | X]`, strictly positive.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        If shapes differ or ``t_res_var`` has a non-positive value.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in (tau_hat, y_res, t_res, t_res_var)]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"all inputs must have the same shape; got {[a.shape for a in arrays]}")
    tau_hat, y_res, t_res, t_res_var = arrays
    if np.any(t_res_var <= 0):
        raise ValueError("`t_res_var` must be strictly positive")
    return tau_hat + t_res * (y_res - tau_hat * t_res) / t_res_var
