"""Two-period ATTs of the levels of a firm type, as level means of one cell's DR-DiD terms.

For one treated/comparison sample (a (g, t) cell of :mod:`vaer.did.att_gt`) and a
partition of its units into levels ``l`` (e.g. ownership: SOE / private / foreign), the
ATT of level ``l`` is

``ATT_l = E[Y_t(g) - Y_t(inf) | G = g, L = l]``.

Under parallel trends conditional on ``(X, L)`` the doubly robust estimand of Sant'Anna
and Zhao (2020) restricted to the level is

``ATT_l = E[S_l D r] / E[S_l D] - E[S_l w(X, L) r] / E[S_l w(X, L)]``,

``S_l = 1{L = l}``, ``r = dY - m(X, L)``, ``m(X, L) = E[dY | X, L, D = 0]``,
``w = p (1 - D) / (1 - p)``, ``p(X, L) = P(D = 1 | X, L)``: the level mean of the DR-DiD
terms of the cell, each normalised by the level's own treated share ``E[S_l D]`` and
comparison weight ``E[S_l w]`` (not by the cell's: a level mean with the cell's
normalisation would estimate ``P(L = l | D = 1) ATT_l``). With a single level it is the
cell's ATT (:func:`vaer.did.drdid.two_period_att`) to rounding.

**Comparison units must be of the same level, and the nuisances must condition on it.**
The comparison term is a reweighted mean of the comparison units *of level l*: with
``S_l`` dropped from it, the comparison units of all levels would stand in for the
level-``l`` treated firms' untreated trend, which is biased whenever the untreated
trend differs by level (SOEs and foreign firms do not share export trends) and the
levels' adoption rates differ (they do: foreign firms cluster in the coastal pilot
cities). For the same reason ``p`` and ``m`` must be functions of the level too: the
reweighting balances ``(X, L)`` only if ``p`` sees ``L``, and the outcome model
predicts a level's untreated trend only if ``m`` does. Two ways, ``nuisance``:

- ``"pooled"`` (default): one logit and one linear outcome regression on the whole cell
  sample with the level's indicators added to the covariates. The level shifts the
  adoption log-odds and the untreated trend; the covariates' slopes are shared, so a
  small level borrows them from the others. Consistent if either model is right with
  these main effects (double robustness). Without other covariates the models are
  saturated in the level and this equals ``"per_level"`` exactly.
- ``"per_level"``: both models fitted on the level's units alone (every interaction of
  the level with the covariates): no restriction, and exactly the Callaway-Sant'Anna
  estimate on the subsample of the level (splitting the sample), but singular or
  separated fits when a level has few comparison firms in a cell.

The influence functions are those of :mod:`vaer.did.drdid` with every weight multiplied
by ``S_l``; in ``"pooled"`` mode the units of other levels enter them through the
estimated nuisance coefficients only.

Reference: Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust difference-in-
differences estimators", Journal of Econometrics 219(1), 101-122. Abadie, A. (2005),
"Semiparametric difference-in-differences estimators", Review of Economic Studies 72(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from vaer.did.drdid import _PS_CLIP, METHODS, EstimationError, _ols_inverse, fit_logit

NUISANCE_MODES = ("pooled", "per_level")


@dataclass(frozen=True)
class LevelFit:
    """ATTs of every level of one sample, for several outcome columns.

    Attributes
    ----------
    att : numpy.ndarray
        ``(n_levels, m)`` ATT per level and outcome column; NaN for a level without
        treated or comparison units in the sample.
    influence : numpy.ndarray
        ``(n_levels, n, m)`` influence functions over the sample's ``n`` units, scaled
        so that ``att_hat - att = mean over the sample + o_p(n^{-1/2})``; 0 for a level
        not estimated.
    n_treated, n_control : numpy.ndarray
        ``(n_levels,)`` treated and comparison units of each level in the sample.
    n_trimmed : int
        Comparison units given zero weight by propensity trimming.
    """

    att: np.ndarray
    influence: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    n_trimmed: int


@dataclass(frozen=True)
class _Nuisance:
    """The fitted nuisances of one sample and their asymptotic linear representations."""

    fitted: np.ndarray  # (n, m) outcome-model predictions (dr, reg; empty for ipw)
    xtx_inv: np.ndarray  # (Xc'Xc / n)^{-1} (dr, reg; empty for ipw)
    p: np.ndarray  # clipped propensity (dr, ipw; empty for reg)
    ps_rep: np.ndarray  # (n, k) logit representation (dr, ipw; empty for reg)
    keep: np.ndarray  # not trimmed


def _fit(delta_y: np.ndarray, d: np.ndarray, x: np.ndarray, method: str, trim: float) -> _Nuisance:
    """Fit the outcome regression on the comparison units and the propensity logit."""
    n = len(d)
    dt = d.astype(np.float64)
    fitted = xtx_inv = p = ps_rep = np.empty(0)
    keep = np.ones(n, dtype=bool)
    if method in ("dr", "reg"):
        xc = x[~d]
        xtx_inv = _ols_inverse(xc, n)
        beta = np.linalg.solve(xc.T @ xc, xc.T @ delta_y[~d])
        fitted = x @ beta
    if method in ("dr", "ipw"):
        beta_ps = fit_logit(x, dt)
        p_raw = expit(x @ beta_ps)
        p = np.clip(p_raw, _PS_CLIP, 1.0 - _PS_CLIP)
        keep[~d] = p[~d] < trim
        hess = (x * (p_raw * (1.0 - p_raw))[:, None]).T @ x / n
        ps_rep = ((dt - p)[:, None] * x) @ np.linalg.inv(hess)
    return _Nuisance(fitted, xtx_inv, p, ps_rep, keep)


def _level_terms(
    delta_y: np.ndarray, d: np.ndarray, x: np.ndarray, s: np.ndarray, fit: _Nuisance, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """ATT and influence of the units with ``s`` (drdid's formulas, weights times ``s``)."""
    n = len(d)
    dt = d.astype(np.float64)
    dc = 1.0 - dt
    sf = s.astype(np.float64)
    if method == "reg":
        wt = dt * sf
        mean_t = wt.mean()
        eta_t = wt @ delta_y / wt.sum()
        eta_c = wt @ fit.fitted / wt.sum()
        inf_treat = wt[:, None] * (delta_y - eta_t) / mean_t
        lever = x @ (fit.xtx_inv @ ((wt @ x) / n))
        resid = delta_y - fit.fitted
        inf_cont = (wt[:, None] * (fit.fitted - eta_c) + (dc * lever)[:, None] * resid) / mean_t
        return eta_t - eta_c, inf_treat - inf_cont
    w_t = fit.keep * dt * sf
    w_c = fit.keep * fit.p * dc / (1.0 - fit.p) * sf
    if w_c.sum() <= 0:
        raise EstimationError("no comparison weight left in the level after trimming")
    mean_wt, mean_wc = w_t.mean(), w_c.mean()
    if method == "ipw":
        eta_t = w_t @ delta_y / w_t.sum()
        eta_c = w_c @ delta_y / w_c.sum()
        inf_treat = w_t[:, None] * (delta_y - eta_t) / mean_wt
        dev_c = w_c[:, None] * (delta_y - eta_c)
        inf_cont = (dev_c + fit.ps_rep @ (x.T @ dev_c / n)) / mean_wc
        return eta_t - eta_c, inf_treat - inf_cont
    resid = delta_y - fit.fitted
    eta_t = w_t @ resid / w_t.sum()
    eta_c = w_c @ resid / w_c.sum()
    lever_t = dc * (x @ (fit.xtx_inv @ ((w_t @ x) / n)))
    lever_c = dc * (x @ (fit.xtx_inv @ ((w_c @ x) / n)))
    inf_treat = (w_t[:, None] * (resid - eta_t) - lever_t[:, None] * resid) / mean_wt
    dev_c = w_c[:, None] * (resid - eta_c)
    inf_cont = (dev_c + fit.ps_rep @ (x.T @ dev_c / n) - lever_c[:, None] * resid) / mean_wc
    return eta_t - eta_c, inf_treat - inf_cont


def level_two_period_att(
    delta_y: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    level: np.ndarray,
    n_levels: int,
    *,
    method: str = "dr",
    nuisance: str = "pooled",
    trim_level: float = 0.995,
) -> LevelFit:
    """ATT of every level of one treated/comparison sample (module docstring).

    Parameters
    ----------
    delta_y : numpy.ndarray
        ``(n, m)`` outcome changes, one column per cell sharing the sample.
    d : numpy.ndarray
        ``(n,)`` boolean, True for treated units.
    x : numpy.ndarray
        ``(n, k)`` covariate design, first column the intercept (no level indicators:
        ``"pooled"`` adds them).
    level : numpy.ndarray
        ``(n,)`` level code of each unit in ``0..n_levels-1``.
    n_levels : int
        Number of levels.
    method : {"dr", "ipw", "reg"}
        As :func:`vaer.did.drdid.two_period_att`.
    nuisance : {"pooled", "per_level"}
        How the propensity and outcome models condition on the level.
    trim_level : float
        Comparison units with propensity at or above it get zero weight (dr, ipw).

    Returns
    -------
    LevelFit
        ATT and influence functions per level; levels with no treated or no comparison
        unit in the sample are NaN (and left out of the pooled fit).

    Raises
    ------
    ValueError
        On an unknown ``method`` or ``nuisance``.
    EstimationError
        On a singular design or a non-converging logit (e.g. a covariate that is
        constant within a level under ``"per_level"``).
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")
    if nuisance not in NUISANCE_MODES:
        raise ValueError(f"`nuisance` must be one of {NUISANCE_MODES}; got {nuisance!r}")
    n, m = delta_y.shape
    n_treated = np.bincount(level[d], minlength=n_levels)
    n_control = np.bincount(level[~d], minlength=n_levels)
    live = np.flatnonzero((n_treated > 0) & (n_control > 0))
    att = np.full((n_levels, m), np.nan)
    influence = np.zeros((n_levels, n, m))
    trimmed = 0
    if nuisance == "per_level":
        for code in live:
            rows = np.flatnonzero(level == code)
            fit = _fit(delta_y[rows], d[rows], x[rows], method, trim_level)
            ones = np.ones(len(rows), dtype=bool)
            est, inf = _level_terms(delta_y[rows], d[rows], x[rows], ones, fit, method)
            att[code] = est
            # rescale from the level's units to the whole sample: mean over n of the column
            influence[code][rows] = inf * (n / len(rows))
            trimmed += int(np.sum(~fit.keep))
        return LevelFit(att, influence, n_treated, n_control, trimmed)
    if len(live) == 0:
        return LevelFit(att, influence, n_treated, n_control, 0)
    rows = np.flatnonzero(np.isin(level, live))
    dummies = (level[rows][:, None] == live[None, 1:]).astype(np.float64)
    design = np.column_stack([x[rows], dummies])
    fit = _fit(delta_y[rows], d[rows], design, method, trim_level)
    for code in live:
        est, inf = _level_terms(delta_y[rows], d[rows], design, level[rows] == code, fit, method)
        att[code] = est
        influence[code][rows] = inf * (n / len(rows))
    return LevelFit(att, influence, n_treated, n_control, int(np.sum(~fit.keep)))
