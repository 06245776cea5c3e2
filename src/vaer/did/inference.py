"""Cluster-robust inference from influence functions, and the cluster multiplier bootstrap.

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
from scipy import sparse

BOOT_WEIGHTS = ("mammen", "rademacher")


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


def cluster_vcov(influence: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cluster-robust covariance of the estimates behind ``influence``.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n_units, m)`` influence functions (see the module docstring for the scale).
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes.
    n_clusters : int
        Number of clusters ``G`` (>= 2).

    Returns
    -------
    numpy.ndarray
        ``(m, m)`` covariance ``G/(G-1) * sum_c S_c S_c' / n^2``.

    Raises
    ------
    ValueError
        If there are fewer than two clusters.
    """
    if n_clusters < 2:
        raise ValueError(f"cluster-robust inference needs >= 2 clusters; got {n_clusters}")
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster, n_clusters) / n
    return n_clusters / (n_clusters - 1) * (sums.T @ sums)


def cluster_se(influence: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cluster-robust standard errors (the diagonal of :func:`cluster_vcov`), NaN if 0.

    A zero standard error only arises for an estimate fixed by construction (the
    reference cell of a universal base period); it is reported as ``NaN``.
    """
    if n_clusters < 2:
        raise ValueError(f"cluster-robust inference needs >= 2 clusters; got {n_clusters}")
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster, n_clusters) / n
    se = np.sqrt(n_clusters / (n_clusters - 1) * np.sum(sums**2, axis=0))
    return np.where(se > 0, se, np.nan)


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
