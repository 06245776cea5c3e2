"""Cluster-robust inference for means of scores.

For scores :math:`\\psi_i` with mean :math:`\\hat\\theta`, the one-way cluster-robust
variance with the CR1 small-sample factor is

.. math:: \\hat V = \\frac{G}{G-1}\\,\\frac{1}{n^2}\\sum_{g=1}^{G}
          \\Big(\\sum_{i \\in g} (\\psi_i - \\hat\\theta)\\Big)^2,

with :math:`G` clusters (Cameron and Miller, 2015, *J. Human Resources* 50(2)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class MeanEstimate:
    """A mean of scores with its standard error and 95% confidence interval."""

    estimate: float
    se: float
    n: int
    n_clusters: int

    @property
    def ci_low(self) -> float:
        return self.estimate - stats.norm.ppf(0.975) * self.se

    @property
    def ci_high(self) -> float:
        return self.estimate + stats.norm.ppf(0.975) * self.se

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the null that the mean is zero."""
        if self.se == 0:
            return 0.0 if self.estimate != 0 else 1.0
        return float(2 * stats.norm.sf(abs(self.estimate / self.se)))


def cluster_robust_mean(scores: np.ndarray, clusters: np.ndarray) -> MeanEstimate:
    """Mean of ``scores`` with a one-way cluster-robust (CR1) standard error.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    clusters : ndarray of shape (n,)
        Cluster label per unit; every unit its own cluster gives the usual HC1-type SE.

    Raises
    ------
    ValueError
        If shapes differ, or there are fewer than 2 clusters.
    """
    scores = np.asarray(scores, dtype=np.float64)
    clusters = np.asarray(clusters)
    if scores.shape != clusters.shape:
        raise ValueError(
            "`scores` and `clusters` must have the same shape; "
            f"got {scores.shape} and {clusters.shape}"
        )
    codes, _ = pd.factorize(clusters)
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if n_clusters < 2:
        raise ValueError(f"cluster-robust SEs need at least 2 clusters; got {n_clusters}")
    n = len(scores)
    mean = float(scores.mean())
    sums = np.bincount(codes, weights=scores - mean, minlength=n_clusters)
    variance = n_clusters / (n_clusters - 1) * float(np.sum(sums**2)) / n**2
    return MeanEstimate(estimate=mean, se=float(np.sqrt(variance)), n=n, n_clusters=n_clusters)


@dataclass(frozen=True)
class GroupMeans:
    """Means of scores per group with their joint cluster-robust covariance.

    Attributes
    ----------
    labels : ndarray of shape (k,)
        Group labels, sorted.
    estimates : ndarray of shape (k,)
        Mean score per group.
    cov : ndarray of shape (k, k)
        Cluster-robust covariance of ``estimates`` (groups share clusters, so the
        off-diagonal terms are generally non-zero).
    counts : ndarray of shape (k,)
        Units per group.
    n_clusters : int
        Clusters of the (first) clustering dimension.
    se_type : str
    """

    labels: np.ndarray
    estimates: np.ndarray
    cov: np.ndarray
    counts: np.ndarray
    n_clusters: int
    se_type: str

    @property
    def se(self) -> np.ndarray:
        """Standard errors, shape (k,)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def to_frame(self) -> pd.DataFrame:
        """One row per group: estimate, SE, 95% CI, n."""
        z = stats.norm.ppf(0.975)
        return pd.DataFrame(
            {
                "group": self.labels,
                "estimate": self.estimates,
                "se": self.se,
                "ci_low": self.estimates - z * self.se,
                "ci_high": self.estimates + z * self.se,
                "n": self.counts,
            }
        )


def _cluster_meat(influence: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, int]:
    codes, _ = pd.factorize(clusters)
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if n_clusters < 2:
        raise ValueError(f"cluster-robust SEs need at least 2 clusters; got {n_clusters}")
    sums = np.zeros((n_clusters, influence.shape[1]))
    np.add.at(sums, codes, influence)
    return n_clusters / (n_clusters - 1) * sums.T @ sums, n_clusters


def group_means(
    scores: np.ndarray,
    groups: np.ndarray,
    clusters: np.ndarray,
    clusters2: np.ndarray | None = None,
) -> GroupMeans:
    """Means of ``scores`` within each group, with a cluster-robust covariance matrix.

    With :math:`\\hat\\theta_g = n_g^{-1}\\sum_{i: g_i = g}\\psi_i`, the influence of unit
    :math:`i` on :math:`\\hat\\theta_g` is :math:`\\phi_{ig} = 1\\{g_i = g\\}
    (\\psi_i - \\hat\\theta_g)/n_g`, and the one-way cluster-robust (CR1) covariance is

    .. math:: \\hat V = \\frac{C}{C-1} \\sum_{c=1}^{C} \\Phi_c \\Phi_c^\\top, \\qquad
              \\Phi_c = \\sum_{i \\in c} \\phi_i,

    over :math:`C` clusters. With ``clusters2`` the two-way covariance of Cameron, Gelbach
    and Miller (2011, *JBES* 29(2)) is :math:`\\hat V_1 + \\hat V_2 - \\hat V_{12}`
    (:math:`V_{12}` clustered on the intersection), with negative eigenvalues set to 0.
    With scores from :mod:`vaer.estimators.scores`, ``estimates`` are group average
    effects (GATEs) and ``cov`` feeds Wald tests of their equality.

    Parameters
    ----------
    scores : ndarray of shape (n,)
        Doubly robust scores.
    groups : ndarray of shape (n,)
        Group label per unit (one group for all units gives the ATE).
    clusters : ndarray of shape (n,)
        Cluster label per unit (each unit its own cluster gives HC1-type SEs).
    clusters2 : ndarray of shape (n,), optional
        Second clustering dimension for two-way clustered SEs.

    Returns
    -------
    GroupMeans

    Raises
    ------
    ValueError
        If shapes differ, scores are not finite, or a clustering has fewer than 2 clusters.
    """
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.asarray(groups)
    clusters = np.asarray(clusters)
    others = [groups, clusters] + ([] if clusters2 is None else [np.asarray(clusters2)])
    if scores.ndim != 1 or any(a.shape != scores.shape for a in others):
        raise ValueError(
            "`scores`, `groups` and the cluster arrays must be 1-d of the same length; "
            f"got {[scores.shape, *[a.shape for a in others]]}"
        )
    if not np.isfinite(scores).all():
        raise ValueError("`scores` must be finite; got NaN or inf")
    codes, labels = pd.factorize(groups, sort=True)
    k = len(labels)
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    estimates = np.bincount(codes, weights=scores, minlength=k) / counts
    influence = np.zeros((len(scores), k))
    rows = np.arange(len(scores))
    influence[rows, codes] = (scores - estimates[codes]) / counts[codes]
    cov, n_clusters = _cluster_meat(influence, clusters)
    se_type = "cluster-robust (CR1)"
    if clusters2 is not None:
        second = np.asarray(clusters2)
        cov2, _ = _cluster_meat(influence, second)
        pairs = pd.factorize(pd.Series(list(zip(clusters, second, strict=True))))[0]
        cov12, _ = _cluster_meat(influence, pairs)
        values, vectors = np.linalg.eigh(cov + cov2 - cov12)
        cov = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        se_type = "two-way cluster-robust (CGM)"
    return GroupMeans(
        labels=np.asarray(labels),
        estimates=estimates,
        cov=cov,
        counts=counts.astype(np.int64),
        n_clusters=n_clusters,
        se_type=se_type,
    )
