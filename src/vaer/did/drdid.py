"""Two-period ATT estimators on panel data with their influence functions.

Each function takes one sample of units (treated ``D = 1`` and comparison ``D = 0``), a
design matrix of pre-period covariates and *several* outcome changes at once (one column
per (g, t) cell that shares the sample), and returns the ATT of every column and the
per-unit influence functions. They reproduce R ``DRDID``'s panel estimators (the ones
R ``did::att_gt`` calls):

- ``"dr"``: ``drdid_panel``, the locally efficient doubly robust DiD of Sant'Anna and
  Zhao (2020), logit propensity and linear outcome regression on the comparison units;
- ``"ipw"``: ``std_ipw_did_panel``, the normalised (Hajek) inverse-probability DiD of
  Abadie (2005);
- ``"reg"``: ``reg_did_panel``, outcome regression DiD (Heckman, Ichimura, Todd 1997).

The influence function ``psi`` of a column is scaled so that
``att_hat - att = mean(psi) + o_p(n^{-1/2})`` over the ``n`` units of the sample.

Reference: Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust difference-in-
differences estimators", Journal of Econometrics 219(1), 101-122.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

METHODS = ("dr", "ipw", "reg")
_PS_CLIP = 1e-6


@dataclass(frozen=True)
class TwoPeriodFit:
    """ATTs of several outcome changes on one sample.

    Attributes
    ----------
    att : numpy.ndarray
        ``(m,)`` ATT per outcome column.
    influence : numpy.ndarray
        ``(n, m)`` influence functions, mean zero over the sample.
    n_trimmed : int
        Comparison units given zero weight because their propensity score was at or
        above the trimming level (``"dr"`` and ``"ipw"``; 0 for ``"reg"``).
    """

    att: np.ndarray
    influence: np.ndarray
    n_trimmed: int


class EstimationError(ValueError):
    """A two-period fit cannot be computed on its sample (singular design, separation)."""


def fit_logit(x: np.ndarray, d: np.ndarray, *, max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood logit of ``d`` on ``x`` by Newton's method with step halving.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, k)`` design, first column the intercept.
    d : numpy.ndarray
        ``(n,)`` binary outcome (float 0/1).
    max_iter : int
        Maximum Newton steps.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` coefficients.

    Raises
    ------
    EstimationError
        If the design is singular or the fit does not converge (e.g. perfect separation:
        some covariate value predicts treatment exactly).
    """
    k = x.shape[1]
    mean_d = float(d.mean())
    beta = np.zeros(k)
    beta[0] = np.log(mean_d / (1.0 - mean_d))
    if k == 1:
        return beta
    eta = x @ beta

    def loglik(e: np.ndarray) -> float:
        # log(1 + exp(e)) = max(e, 0) + log1p(exp(-|e|)): stable, faster than logaddexp
        return float(d @ e - (np.maximum(e, 0.0) + np.log1p(np.exp(-np.abs(e)))).sum())

    gram = x.T @ x
    if np.linalg.matrix_rank(gram) < k:
        raise EstimationError("singular covariate design in the propensity model")
    current = loglik(eta)
    for _ in range(max_iter):
        p = expit(eta)
        grad = x.T @ (d - p)
        hess = (x * (p * (1.0 - p))[:, None]).T @ x
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break  # fitted probabilities at 0 or 1: separation
        size = 1.0
        while size >= 1e-8:
            new_eta = x @ (beta + size * step)
            new = loglik(new_eta)
            if new >= current - 1e-12 * abs(current):
                break
            size /= 2.0
        beta, eta, current = beta + size * step, new_eta, new
        if np.max(np.abs(size * step)) < 1e-10 * (1.0 + np.max(np.abs(beta))):
            return beta
    raise EstimationError(
        "the propensity logit did not converge (perfect separation: some covariates "
        "predict treatment exactly); drop or coarsen those covariates"
    )


def _ols_inverse(xc: np.ndarray, n: int) -> np.ndarray:
    """``(Xc'Xc / n)^{-1}`` or an EstimationError if the comparison design is singular."""
    xtx = xc.T @ xc / n
    if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
        raise EstimationError(
            "singular covariate design among the comparison units (a covariate is constant "
            "or collinear there)"
        )
    return np.linalg.inv(xtx)


def two_period_att(
    delta_y: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    *,
    method: str = "dr",
    trim_level: float = 0.995,
) -> TwoPeriodFit:
    """ATT of each outcome change column on one treated/comparison sample.

    Parameters
    ----------
    delta_y : numpy.ndarray
        ``(n, m)`` outcome changes ``Y_t - Y_base``, one column per cell.
    d : numpy.ndarray
        ``(n,)`` boolean, True for treated units.
    x : numpy.ndarray
        ``(n, k)`` covariate design, first column the intercept.
    method : {"dr", "ipw", "reg"}
        The estimator (see the module docstring).
    trim_level : float
        Comparison units with propensity at or above this level get zero weight
        (``"dr"``, ``"ipw"``; R ``DRDID``'s default 0.995).

    Returns
    -------
    TwoPeriodFit
        ATT and influence functions per column.

    Raises
    ------
    EstimationError
        On a singular design, non-convergence of the logit, or no comparison weight
        left after trimming (treated units are never trimmed).
    """
    n = len(d)
    dt = d.astype(np.float64)
    dc = 1.0 - dt
    n_trimmed = 0

    if method in ("dr", "reg"):
        xc = x[d == 0]
        xtx_inv = _ols_inverse(xc, n)
        beta = np.linalg.solve(xc.T @ xc, xc.T @ delta_y[d == 0])
        fitted = x @ beta
        resid = delta_y - fitted

    if method == "reg":
        mean_t = dt.mean()
        eta_t = dt @ delta_y / dt.sum()
        eta_c = dt @ fitted / dt.sum()
        inf_treat = dt[:, None] * (delta_y - eta_t) / mean_t
        m1 = (dt @ x) / n
        lever = x @ (xtx_inv @ m1)
        inf_cont = (dt[:, None] * (fitted - eta_c) + (dc * lever)[:, None] * resid) / mean_t
        return TwoPeriodFit(eta_t - eta_c, inf_treat - inf_cont, 0)

    beta_ps = fit_logit(x, dt)
    p_raw = expit(x @ beta_ps)
    p = np.clip(p_raw, _PS_CLIP, 1.0 - _PS_CLIP)
    keep = np.ones(n, dtype=bool)
    keep[d == 0] = p[d == 0] < trim_level
    n_trimmed = int(np.sum(~keep))
    w_t = keep * dt
    w_c = keep * p * dc / (1.0 - p)
    if w_c.sum() <= 0:
        raise EstimationError(
            f"every comparison unit has a propensity score >= {trim_level} (no overlap)"
        )
    # asymptotic linear representation of the logit: score @ (X' W X / n)^{-1}
    hess = (x * (p_raw * (1.0 - p_raw))[:, None]).T @ x / n
    ps_rep = ((dt - p)[:, None] * x) @ np.linalg.inv(hess)
    mean_wt, mean_wc = w_t.mean(), w_c.mean()

    if method == "ipw":
        eta_t = w_t @ delta_y / w_t.sum()
        eta_c = w_c @ delta_y / w_c.sum()
        inf_treat = w_t[:, None] * (delta_y - eta_t) / mean_wt
        dev_c = w_c[:, None] * (delta_y - eta_c)
        m2 = x.T @ dev_c / n
        inf_cont = (dev_c + ps_rep @ m2) / mean_wc
        return TwoPeriodFit(eta_t - eta_c, inf_treat - inf_cont, n_trimmed)

    if method != "dr":
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")
    eta_t = w_t @ resid / w_t.sum()
    eta_c = w_c @ resid / w_c.sum()
    lever_t = dc * (x @ (xtx_inv @ ((w_t @ x) / n)))
    lever_c = dc * (x @ (xtx_inv @ ((w_c @ x) / n)))
    inf_treat = (w_t[:, None] * (resid - eta_t) - lever_t[:, None] * resid) / mean_wt
    dev_c = w_c[:, None] * (resid - eta_c)
    m2 = x.T @ dev_c / n
    inf_cont = (dev_c + ps_rep @ m2 - lever_c[:, None] * resid) / mean_wc
    return TwoPeriodFit(eta_t - eta_c, inf_treat - inf_cont, n_trimmed)
