r"""Joint tests and multiple-testing adjustments for a vector of estimates.

* :func:`wald_test`: :math:`W = (R\hat\theta)^\top (R \hat V R^\top)^{-1} R\hat\theta
  \sim \chi^2_{\operatorname{rank}}` under :math:`R\theta = 0`.
* :func:`holm`: Holm's (1979) step-down adjustment, valid under any dependence.
* :func:`multiplier_draws`, :func:`sup_t_critical` and :func:`romano_wolf`: a Gaussian
  multiplier bootstrap over clusters of the t-statistics (one N(0, 1) weight per cluster
  applied to the clusters' influence sums), the sup-t critical value of a joint band and
  Romano and Wolf's (2005, *Econometrica* 73(4)) step-down adjusted p-values, which,
  unlike Holm, use the correlation of the estimates.

References
----------
Chernozhukov, V., Chetverikov, D. and Kato, K. (2013). Gaussian approximations and
multiplier bootstrap for maxima of sums of high-dimensional random vectors.
*Ann. Statist.* 41(6), 2786-2819.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def wald_test(
    estimates: np.ndarray, cov: np.ndarray, restriction: np.ndarray
) -> tuple[float, int, float]:
    r"""Wald test of ``restriction @ theta == 0``.

    Parameters
    ----------
    estimates : ndarray of shape (L,)
    cov : ndarray of shape (L, L)
    restriction : ndarray of shape (k, L)

    Returns
    -------
    statistic : float
    df : int
        Rank of the restricted covariance (``k`` unless some contrasts are collinear).
    p_value : float
        Upper tail of :math:`\chi^2_{df}`; NaN when ``df`` is 0.
    """
    r = np.atleast_2d(np.asarray(restriction, dtype=np.float64))
    diff = r @ np.asarray(estimates, dtype=np.float64)
    v = r @ np.asarray(cov, dtype=np.float64) @ r.T
    df = int(np.linalg.matrix_rank(v)) if v.size else 0
    if df == 0:
        return float("nan"), 0, float("nan")
    statistic = float(diff @ np.linalg.pinv(v, hermitian=True) @ diff)
    return statistic, df, float(stats.chi2.sf(statistic, df))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate under any dependence).

    Parameters
    ----------
    p_values : ndarray of shape (m,)

    Returns
    -------
    ndarray of shape (m,)
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def multiplier_draws(
    cluster_influence: np.ndarray | None, se: np.ndarray, n_draws: int, random_state: int
) -> np.ndarray:
    r"""Bootstrap t-statistics :math:`t^*_{bl} = \sum_c e_{bc} S_{cl} / se_l`, :math:`e_{bc}`
    drawn from N(0, 1).

    Parameters
    ----------
    cluster_influence : ndarray of shape (G, L)
        Cluster influence sums with ``S.T @ S`` the covariance of the estimates
        (:attr:`vaer.estimators.inference.GroupMeans.cluster_influence`).
    se : ndarray of shape (L,)
    n_draws : int
    random_state : int

    Returns
    -------
    ndarray of shape (n_draws, L)
        Draws of the t-statistics under the null (zero where ``se`` is 0).

    Raises
    ------
    ValueError
        If ``cluster_influence`` is None (two-way clustering has no cluster sums).
    """
    if cluster_influence is None:
        raise ValueError(
            "the multiplier bootstrap needs one-way cluster influence sums; "
            "two-way clustered group means have none"
        )
    rng = np.random.default_rng(random_state)
    weights = rng.standard_normal((n_draws, cluster_influence.shape[0]))
    draws = weights @ cluster_influence
    safe = np.where(se > 0, se, np.inf)
    return draws / safe


def sup_t_critical(draws: np.ndarray, level: float) -> float:
    r"""The ``level`` quantile of :math:`\max_l |t^*_l|`: a joint band's half-width in SEs."""
    return float(np.quantile(np.max(np.abs(draws), axis=1), level))


def romano_wolf(t_stats: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Romano-Wolf step-down adjusted p-values of two-sided tests.

    Parameters
    ----------
    t_stats : ndarray of shape (L,)
        Observed t-statistics.
    draws : ndarray of shape (B, L)
        Bootstrap t-statistics under the null, from :func:`multiplier_draws`.

    Returns
    -------
    ndarray of shape (L,)
        Adjusted p-values, monotone in :math:`|t|`.
    """
    t = np.abs(np.asarray(t_stats, dtype=np.float64))
    a = np.abs(draws)
    order = np.argsort(-t)
    adjusted = np.empty(len(t))
    running = 0.0
    for rank, j in enumerate(order):
        remaining = order[rank:]
        tail_max = a[:, remaining].max(axis=1)
        p = float((1 + np.sum(tail_max >= t[j])) / (1 + len(tail_max)))
        running = max(running, p)
        adjusted[j] = running
    return adjusted
