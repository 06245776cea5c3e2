"""Cluster-robust inference from influence functions, and the cluster multiplier bootstrap.

Two modes (``inference``):

- ``"small_cluster"`` (the default of :func:`vaer.did.att_gt`): valid when the treated
  units of a cohort sit in few clusters of unequal size, as pilot cities do. Each unit's
  influence function in a cell is scaled by ``(1 - h_c)^{-1/2}``, ``h_c`` the share of its
  cluster in its arm of the cell (treated cohort or comparison group)
  (:func:`arm_leverage_factor`): for a difference of two group means this is exactly
  the CR2 bias-reduced cluster-robust variance of Bell and McCaffrey (2002), so no
  ``G/(G-1)`` factor is applied; for the doubly robust cell it leaves out the
  covariates' own leverage (order ``p/n``). Intervals use Student t with the
  Satterthwaite degrees of freedom of the variance estimate,
  ``(sum_c S_c^2)^2 / sum_c S_c^4`` (:func:`satterthwaite_df`; Bell and McCaffrey 2002,
  Imbens and Kolesar 2016, with the cluster sums as plug-in variances), which falls to
  about the number of treated clusters when they dominate. Simultaneous bands and the
  pre-trend test are Bonferroni over the family with those t quantiles
  (:func:`bonferroni_critical`).
- ``"asymptotic"`` (R ``did``, csdid, moderndid): the CR1 covariance below, normal
  intervals and sup-t bands from the multiplier bootstrap.

Why: on vaer's synthetic pilot panel (about 15 adopting cities of 150 per cohort, 4 of
40) the asymptotic intervals of single ATT(g, t) covered 90% (82% with 40 cities), the
bootstrap bands 65%, and the pre-trend Wald test rejected a true null 15% of the time
(``benchmarks/RESULTS.md``, ``did_validity``); the small-cluster mode was chosen on
tuning seeds of that panel and is reported there on others.

References: Bell, R. M. and McCaffrey, D. F. (2002), "Bias reduction in standard errors
for linear regression with multi-stage samples", Survey Methodology 28(2), 169-181.
Imbens, G. W. and Kolesar, M. (2016), "Robust standard errors in small samples: some
practical advice", Review of Economics and Statistics 98(4), 701-712.

Every estimate ``theta_hat`` of this package comes with a per-unit influence function
``psi`` (an ``(n_units, m)`` matrix for ``m`` estimates) scaled so that
``theta_hat - theta = mean_i psi_i + o_p(n^{-1/2})``. With units grouped in ``G``
clusters (cities) and ``S_c = sum_{i in c} psi_i``, the cluster-robust covariance is

``V = G / (G - 1) * sum_c S_c S_c' / n^2``

(the small-sample factor ``G/(G-1)`` of Stata's ``vce(cluster)``). The multiplier
bootstrap draws ``theta*_b - theta_hat = sum_c v_bc S_c / n`` with i.i.d. weights ``v``
of mean 0 and variance 1 per cluster (Mammen or Rademacher) and gives the sup-t critical
value of simultaneous bands over a family of estimates (Callaway and Sant'Anna 2021,
section 4; Montiel Olea and Plagborg-Moller 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

BOOT_WEIGHTS = ("mammen", "rademacher")
INFERENCE_MODES = ("small_cluster", "asymptotic")


def check_inference(inference: str) -> None:
    """Raise a ValueError for an unknown inference mode."""
    if inference not in INFERENCE_MODES:
        raise ValueError(f"`inference` must be one of {INFERENCE_MODES}; got {inference!r}")


def arm_leverage_factor(cluster: np.ndarray, treated: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-unit factor ``(1 - h_c)^{-1/2}`` of the small-cluster (CR2) adjustment.

    Parameters
    ----------
    cluster : numpy.ndarray
        ``(n,)`` cluster codes of the units of one cell.
    treated : numpy.ndarray
        ``(n,)`` True for the cell's treated cohort, False for its comparison units.
    n_clusters : int
        Number of clusters ``G``.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` factors; ``h_c`` is the share of cluster ``c`` among the units of the
        unit's arm.

    Raises
    ------
    ValueError
        If an arm lies in a single cluster (its variance cannot be estimated).
    """
    factor = np.ones(len(cluster))
    for arm in (treated, ~treated):
        counts = np.bincount(cluster[arm], minlength=n_clusters)
        if counts.sum() == 0:
            continue
        share = counts / counts.sum()
        if share.max() >= 1.0:
            raise ValueError(
                "every unit of one arm of a cell (its treated cohort or its comparison "
                "group) is in one cluster; its cluster-robust variance cannot be estimated"
            )
        factor[arm] = 1.0 / np.sqrt(1.0 - share[cluster[arm]])
    return factor


def satterthwaite_df(influence: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Degrees of freedom ``(sum_c S_c^2)^2 / sum_c S_c^4`` of each cluster-robust variance.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n_units, m)`` influence functions.
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes.
    n_clusters : int
        Number of clusters.

    Returns
    -------
    numpy.ndarray
        ``(m,)`` degrees of freedom, between 1 and ``G`` (NaN for a zero variance).
    """
    return _df_of_sums(cluster_sums(influence, cluster, n_clusters))


def _df_of_sums(sums: np.ndarray) -> np.ndarray:
    """:func:`satterthwaite_df` from the ``(G, m)`` cluster sums (any common scale)."""
    scale = np.max(np.abs(sums), axis=0, initial=0.0)
    unit = sums / np.where(scale > 0, scale, 1.0)
    square = np.sum(unit**2, axis=0)
    quartic = np.sum(unit**4, axis=0)
    return np.where(scale > 0, square**2 / np.where(quartic > 0, quartic, 1.0), np.nan)


def cluster_se_df(
    influence: np.ndarray, cluster: np.ndarray, n_clusters: int, inference: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cluster_se` and the t degrees of freedom of each estimate, from one pass of
    cluster sums: :func:`satterthwaite_df` in the small-cluster mode, infinite (normal)
    in the asymptotic one."""
    sums = scaled_cluster_sums(influence, cluster, n_clusters, inference)
    se = np.sqrt(np.sum(sums**2, axis=0))
    df = _df_of_sums(sums) if inference == "small_cluster" else np.full(len(se), np.inf)
    return np.where(se > 0, se, np.nan), df


def interval_critical(alpha: float, df: np.ndarray) -> np.ndarray:
    """Two-sided ``1 - alpha`` Student t quantiles (normal where ``df`` is infinite)."""
    return np.asarray(stats.t.ppf(1.0 - alpha / 2.0, df), dtype=float)


def bonferroni_critical(alpha: float, df: np.ndarray) -> np.ndarray:
    """Per-estimate critical values of a Bonferroni simultaneous ``1 - alpha`` band.

    Estimates with NaN ``df`` (fixed at 0) are not counted in the family.
    """
    df = np.asarray(df, dtype=float)
    family = max(int(np.sum(np.isfinite(df) | np.isposinf(df))), 1)
    return np.asarray(stats.t.ppf(1.0 - alpha / (2.0 * family), df), dtype=float)


def cluster_sums(influence: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum the influence functions within each cluster.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n_units, m)`` influence functions.
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes in ``0..n_clusters-1``.
    n_clusters : int
        Number of clusters ``G``.

    Returns
    -------
    numpy.ndarray
        ``(G, m)`` cluster sums ``S_c``.
    """
    n = len(cluster)
    indicator = sparse.csr_matrix((np.ones(n), (cluster, np.arange(n))), shape=(n_clusters, n))
    return np.asarray(indicator @ influence)


def family_critical(
    alpha: float, df: np.ndarray, inference: str, crit_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """Critical values of a family of estimates: pointwise intervals and the band.

    Parameters
    ----------
    alpha : float
        One minus the coverage.
    df : numpy.ndarray
        Degrees of freedom of each estimate (infinite in the asymptotic mode).
    inference : {"small_cluster", "asymptotic"}
        See the module docstring.
    crit_value : float
        The bootstrap sup-t critical value (asymptotic mode; NaN without bootstrap).

    Returns
    -------
    tuple of numpy.ndarray
        Pointwise and simultaneous critical values, one per estimate.
    """
    check_inference(inference)
    pointwise = interval_critical(alpha, df)
    if inference == "small_cluster":
        return pointwise, bonferroni_critical(alpha, df)
    return pointwise, np.full(len(pointwise), crit_value)


def scaled_cluster_sums(
    influence: np.ndarray, cluster: np.ndarray, n_clusters: int, inference: str
) -> np.ndarray:
    """``(G, m)`` cluster sums of ``influence`` over ``n``, times ``sqrt(G/(G-1))`` in the
    asymptotic mode: their cross-product is :func:`cluster_vcov`."""
    factor = _small_sample_factor(n_clusters, inference)
    return cluster_sums(influence, cluster, n_clusters) * (np.sqrt(factor) / influence.shape[0])


def _small_sample_factor(n_clusters: int, inference: str) -> float:
    """``G/(G-1)`` for the asymptotic (CR1) mode; 1 for the small-cluster mode, whose
    leverage adjustment is already in the influence functions."""
    check_inference(inference)
    if n_clusters < 2:
        raise ValueError(f"cluster-robust inference needs >= 2 clusters; got {n_clusters}")
    return n_clusters / (n_clusters - 1) if inference == "asymptotic" else 1.0


def cluster_vcov(
    influence: np.ndarray, cluster: np.ndarray, n_clusters: int, inference: str = "asymptotic"
) -> np.ndarray:
    """Cluster-robust covariance of the estimates behind ``influence``.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n_units, m)`` influence functions (see the module docstring for the scale).
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes.
    n_clusters : int
        Number of clusters ``G`` (>= 2).
    inference : {"asymptotic", "small_cluster"}
        ``"asymptotic"``: factor ``G/(G-1)``; ``"small_cluster"``: none (the influence
        functions carry the leverage adjustment).

    Returns
    -------
    numpy.ndarray
        ``(m, m)`` covariance ``factor * sum_c S_c S_c' / n^2``.

    Raises
    ------
    ValueError
        If there are fewer than two clusters or the mode is unknown.
    """
    sums = scaled_cluster_sums(influence, cluster, n_clusters, inference)
    return np.asarray(sums.T @ sums)


def cluster_se(
    influence: np.ndarray, cluster: np.ndarray, n_clusters: int, inference: str = "asymptotic"
) -> np.ndarray:
    """Cluster-robust standard errors (the diagonal of :func:`cluster_vcov`), NaN if 0.

    A zero standard error only arises for an estimate fixed by construction (the
    reference cell of a universal base period); it is reported as ``NaN``.
    """
    return cluster_se_df(influence, cluster, n_clusters, inference)[0]


@dataclass(frozen=True)
class BootstrapResult:
    """A cluster multiplier bootstrap of a family of estimates.

    Attributes
    ----------
    se : numpy.ndarray
        ``(m,)`` bootstrap standard errors (standard deviation of the draws times
        ``sqrt(G/(G-1))``, matching the analytic factor); NaN for fixed estimates.
    crit_value : float
        Sup-t critical value: the ``1 - alpha`` quantile over draws of
        ``max_k |theta*_bk - theta_hat_k| / sd_k`` over the estimates with positive
        variance, ``sd_k`` the exact conditional standard deviation of the draws. A
        simultaneous band is ``theta_hat_k +/- crit_value * se_k``.
    n_boot : int
        Number of draws.
    weights : str
        ``"mammen"`` or ``"rademacher"``.
    alpha : float
        One minus the simultaneous coverage.
    """

    se: np.ndarray
    crit_value: float
    n_boot: int
    weights: str
    alpha: float


def _draw_weights(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=shape)
    root5 = np.sqrt(5.0)
    low, high = (1.0 - root5) / 2.0, (1.0 + root5) / 2.0
    p_low = (root5 + 1.0) / (2.0 * root5)
    return np.where(rng.random(shape) < p_low, low, high)


def check_bootstrap_args(n_boot: int, weights: str, alpha: float) -> None:
    """Raise a ValueError for an invalid ``n_boot``, ``weights`` or ``alpha``."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ValueError(f"`n_boot` must be an int >= 0; got {n_boot!r}")
    if weights not in BOOT_WEIGHTS:
        raise ValueError(f"`boot_weights` must be one of {BOOT_WEIGHTS}; got {weights!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1); got {alpha!r}")


def multiplier_bootstrap(
    influence: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    *,
    n_boot: int = 999,
    weights: str = "mammen",
    alpha: float = 0.05,
    random_state: int | np.random.Generator | None = None,
) -> BootstrapResult:
    """Cluster multiplier bootstrap: bootstrap SEs and a sup-t critical value.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n_units, m)`` influence functions of a family of ``m`` estimates.
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes.
    n_clusters : int
        Number of clusters ``G`` (>= 2).
    n_boot : int
        Number of draws (>= 1).
    weights : {"mammen", "rademacher"}
        Distribution of the per-cluster multipliers (mean 0, variance 1).
    alpha : float
        One minus the simultaneous coverage of the band.
    random_state : int, numpy.random.Generator or None
        Seed of the draws.

    Returns
    -------
    BootstrapResult
        Bootstrap SEs and the sup-t critical value.

    Raises
    ------
    ValueError
        On ``n_boot < 1``, unknown weights, ``alpha`` outside (0, 1), fewer than two
        clusters, or a family whose estimates all have zero variance.
    """
    check_bootstrap_args(n_boot, weights, alpha)
    if n_boot < 1:
        raise ValueError(f"`n_boot` must be an int >= 1 for a bootstrap; got {n_boot}")
    if n_clusters < 2:
        raise ValueError(f"the cluster bootstrap needs >= 2 clusters; got {n_clusters}")
    rng = np.random.default_rng(random_state)
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster, n_clusters) / n
    sd = np.sqrt(np.sum(sums**2, axis=0))
    live = sd > 1e-14 * max(1.0, float(np.max(sd, initial=0.0)))
    if not np.any(live):
        raise ValueError("every estimate of the family has zero variance; nothing to bootstrap")
    factor = np.sqrt(n_clusters / (n_clusters - 1))
    sup = np.empty(n_boot)
    total = np.zeros(sums.shape[1])
    total_sq = np.zeros(sums.shape[1])
    chunk = max(1, min(n_boot, 2_000_000 // max(1, n_clusters + sums.shape[1])))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        draws = _draw_weights(rng, (size, n_clusters), weights) @ sums
        total += draws.sum(axis=0)
        total_sq += (draws**2).sum(axis=0)
        sup[done : done + size] = np.max(np.abs(draws[:, live]) / sd[live], axis=1)
        done += size
    mean = total / n_boot
    var = np.maximum(total_sq / n_boot - mean**2, 0.0) * n_boot / max(n_boot - 1, 1)
    se = np.where(live, factor * np.sqrt(var), np.nan)
    crit = float(np.quantile(sup, 1.0 - alpha, method="inverted_cdf"))
    return BootstrapResult(se=se, crit_value=crit, n_boot=n_boot, weights=weights, alpha=alpha)
