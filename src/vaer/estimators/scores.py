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


def aipw_scores(
    y: np.ndarray, d: np.ndarray, mu: np.ndarray, propensity: np.ndarray, min_propensity: float
) -> np.ndarray:
    """AIPW (doubly robust) scores of the average effect of a binary treatment.

    .. math:: \\Gamma_i = \\hat\\mu_1(Z_i) - \\hat\\mu_0(Z_i)
              + \\frac{D_i (Y_i - \\hat\\mu_1(Z_i))}{\\hat p(Z_i)}
              - \\frac{(1 - D_i)(Y_i - \\hat\\mu_0(Z_i))}{1 - \\hat p(Z_i)},

    with :math:`Z = (X, W)` and :math:`\\hat p` clipped into ``[min_propensity,
    1 - min_propensity]``; their mean estimates :math:`E[\\mu_1(Z) - \\mu_0(Z)]`
    (Robins, Rotnitzky and Zhao, 1994; Kennedy, 2023). These are the pseudo-outcomes
    econml's DR learner regresses on ``X``.

    Parameters
    ----------
    y, d : ndarray of shape (n,)
        Outcome and 0/1 treatment.
    mu : ndarray of shape (n, 2)
        Cross-fitted outcome regressions at d = 0 and d = 1.
    propensity : ndarray of shape (n,)
        Cross-fitted ``P(D = 1 | X, W)``.
    min_propensity : float
        Clipping bound in (0, 0.5).

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        On inconsistent shapes, a non-binary ``d`` or a bound outside (0, 0.5).
    """
    y, d, propensity = (np.asarray(a, dtype=np.float64) for a in (y, d, propensity))
    mu = np.asarray(mu, dtype=np.float64)
    n = y.shape[0]
    if d.shape != (n,) or propensity.shape != (n,) or mu.shape != (n, 2):
        raise ValueError(
            "`y`, `d` and `propensity` must have shape (n,) and `mu` shape (n, 2); got "
            f"{y.shape}, {d.shape}, {propensity.shape} and {mu.shape}"
        )
    if not np.isin(d, (0.0, 1.0)).all():
        raise ValueError("`d` must be 0/1")
    if not 0 < min_propensity < 0.5:
        raise ValueError(f"`min_propensity` must be in (0, 0.5); got {min_propensity}")
    p = np.clip(propensity, min_propensity, 1 - min_propensity)
    return mu[:, 1] - mu[:, 0] + d * (y - mu[:, 1]) / p - (1 - d) * (y - mu[:, 0]) / (1 - p)


def iv_dr_scores(
    tau_hat: np.ndarray,
    y_res: np.ndarray,
    t_res: np.ndarray,
    z_res: np.ndarray,
    compliance: np.ndarray,
) -> np.ndarray:
    """Doubly robust scores of the average effect in the partially linear IV model.

    For :math:`Y = g(X, W) + \\tau(X) T + \\varepsilon` with
    :math:`E[\\varepsilon \\mid Z, X, W] = 0`, residuals :math:`\\tilde Y, \\tilde T,
    \\tilde Z` (on ``(X, W)``) and compliance :math:`c(x) = E[\\tilde T \\tilde Z | X = x]`,

    .. math:: \\Gamma_i = \\hat\\tau(X_i)
              + \\frac{\\tilde Z_i\\,(\\tilde Y_i - \\hat\\tau(X_i)\\tilde T_i)}{c(X_i)}

    has mean :math:`E[\\tau(X)]` (the average effect of one more unit of VA, which equals
    the LATE-type IV estimand when the effect is linear in VA); it is grf's score for
    instrumental forests (Athey, Tibshirani and Wager, 2019, *Ann. Statist.* 47(2)).

    Parameters
    ----------
    tau_hat, y_res, t_res, z_res : ndarray of shape (n,)
    compliance : ndarray of shape (n,)
        Cross-fitted :math:`c(X_i)`, bounded away from 0.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        If shapes differ or ``compliance`` has a zero.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in (tau_hat, y_res, t_res, z_res, compliance)]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"all inputs must have the same shape; got {[a.shape for a in arrays]}")
    tau_hat, y_res, t_res, z_res, compliance = arrays
    if np.any(compliance == 0):
        raise ValueError("`compliance` must be non-zero")
    return tau_hat + z_res * (y_res - tau_hat * t_res) / compliance
