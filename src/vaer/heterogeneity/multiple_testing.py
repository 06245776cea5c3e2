r"""Multiple-testing adjustments and joint bands for t-tests with few clusters.

* :func:`holm`: Holm's (1979) step-down adjustment, valid under any dependence.
* :func:`t_draws`: draws of the vector of t-statistics under the null. Each draw is
  :math:`t^*_l = Z_l / \sqrt{\chi^2_{\nu_l}(U)/\nu_l}` with :math:`Z = \sum_c \xi_c w_c /
  \mathrm{se}` (:math:`\xi_c \sim N(0, 1)` per cluster, :math:`w_c` the clusters' CR2
  contributions, so :math:`Z \sim N(0, \hat R)` with :math:`\hat R` the estimated
  correlation of the estimates) and one uniform :math:`U` per draw giving every
  component's :math:`\chi^2_{\nu_l}` quantile. Each :math:`t^*_l` is then exactly
  Student's t with the Bell-McCaffrey df :math:`\nu_l` of its own test, and with equal
  df the vector is the multivariate t of Hothorn, Bretz and Westfall (2008): the fixed-G
  limit of cluster-robust t-statistics shares one variance estimate's randomness
  (Bester, Conley and Hansen, 2011), where a Gaussian multiplier bootstrap treats the
  SEs as known and is too narrow with few clusters.
* :func:`romano_wolf`: Romano and Wolf's (2005) step-down adjusted p-values in min-p
  form (Westfall and Young, 1993): they use the correlation of the estimates, unlike Holm.
* :func:`band_critical`: the joint level of a simultaneous band (every level covered at
  once with probability ``level``): each component's half-width is its t quantile at
  the common pointwise level :math:`\alpha^*`, the ``1 - level`` quantile of
  :math:`\min_l p^*_l`.

References
----------
Romano, J. P. and Wolf, M. (2005). Stepwise multiple testing as formalized data
snooping. *Econometrica* 73(4), 1237-1282. Westfall, P. H. and Young, S. S. (1993).
*Resampling-Based Multiple Testing*. Wiley. Hothorn, T., Bretz, F. and Westfall, P.
(2008). Simultaneous inference in general parametric models. *Biometrical Journal*
50(3), 346-363. Bester, C. A., Conley, T. G. and Hansen, C. B. (2011). Inference with
dependent data using cluster covariance estimators. *J. Econometrics* 165(2), 137-151.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate under any dependence).

    NaN p-values stay NaN and do not count towards the family.

    Parameters
    ----------
    p_values : ndarray of shape (m,)

    Returns
    -------
    ndarray of shape (m,)
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid])]
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def t_draws(
    contributions: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    n_draws: int,
    random_state: int,
) -> np.ndarray:
    r"""Null draws of the t-statistics of correlated estimates (module docstring).

    Parameters
    ----------
    contributions : ndarray of shape (G, L)
        Cluster contributions with ``contributions.T @ contributions`` the covariance of
        the estimates (:attr:`vaer.heterogeneity.ols.ContrastTests.cluster_contributions`).
    se : ndarray of shape (L,)
    df : ndarray of shape (L,)
        Degrees of freedom of each t-test; NaN marks a component without a test.
    n_draws : int
    random_state : int

    Returns
    -------
    ndarray of shape (n_draws, L)
        NaN in the columns without a test.

    Raises
    ------
    ValueError
        If the shapes disagree or ``n_draws`` < 1.
    """
    contributions = np.asarray(contributions, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    df = np.asarray(df, dtype=np.float64)
    if contributions.ndim != 2 or se.shape != df.shape or se.shape != contributions.shape[1:]:
        raise ValueError(
            "`contributions` must have shape (G, L) and `se`, `df` shape (L,); got "
            f"{contributions.shape}, {se.shape} and {df.shape}"
        )
    if n_draws < 1:
        raise ValueError(f"`n_draws` must be an int >= 1; got {n_draws}")
    rng = np.random.default_rng(random_state)
    weights = rng.standard_normal((n_draws, contributions.shape[0]))
    uniform = rng.random(n_draws)
    valid = np.isfinite(df) & np.isfinite(se) & (se > 0)
    out = np.full((n_draws, len(se)), np.nan)
    if not valid.any():
        return out
    z = weights @ contributions[:, valid] / se[valid]
    scale = stats.chi2.ppf(uniform[:, None], df[valid][None, :]) / df[valid][None, :]
    out[:, valid] = z / np.sqrt(scale)
    return out


def _draw_p_values(draws: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-values of the draws under each column's t(df); 2.0 where undefined."""
    with np.errstate(invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(draws), df[None, :])
    return np.where(np.isfinite(p), p, 2.0)


def romano_wolf(p_values: np.ndarray, draws: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Romano-Wolf step-down adjusted p-values of two-sided t-tests (min-p form).

    Parameters
    ----------
    p_values : ndarray of shape (L,)
        Observed two-sided p-values from t(``df``); NaN marks a component without a test.
    draws : ndarray of shape (B, L)
        Null draws of the t-statistics from :func:`t_draws`.
    df : ndarray of shape (L,)

    Returns
    -------
    ndarray of shape (L,)
        Adjusted p-values, monotone in the raw ones; NaN where the raw one is NaN.
    """
    p = np.asarray(p_values, dtype=np.float64)
    star = _draw_p_values(np.asarray(draws, dtype=np.float64), np.asarray(df, dtype=np.float64))
    adjusted = np.full(len(p), np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, j in enumerate(order):
        tail_min = star[:, order[rank:]].min(axis=1)
        found = float((1 + np.sum(tail_min <= p[j])) / (1 + len(tail_min)))
        running = max(running, found)
        adjusted[j] = running
    return adjusted


def band_critical(draws: np.ndarray, df: np.ndarray, level: float) -> np.ndarray:
    """Half-widths, in SEs, of a simultaneous ``level`` band over the components.

    Parameters
    ----------
    draws : ndarray of shape (B, L)
        From :func:`t_draws`.
    df : ndarray of shape (L,)
    level : float
        In (0, 1).

    Returns
    -------
    ndarray of shape (L,)
        :math:`t_{\\nu_l}^{-1}(1 - \\alpha^*/2)`; NaN where ``df`` is NaN.

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1); got {level}")
    df = np.asarray(df, dtype=np.float64)
    star = _draw_p_values(np.asarray(draws, dtype=np.float64), df)
    alpha = float(np.quantile(star.min(axis=1), 1.0 - level))
    with np.errstate(invalid="ignore"):
        return stats.t.ppf(1.0 - alpha / 2, df)
