"""Cluster-robust inference for means of scores.

For scores :math:`\\psi_i` with mean :math:`\\hat\\theta`, the one-way cluster-robust
variance with the CR1 small-sample factor is

.. math:: \\hat V = \\frac{G}{G-1}\\,\\frac{1}{n^2}\\sum_{g=1}^{G}
          \\Big(\\sum_{i \\in g} (\\psi_i - \\hat\\theta)\\Big)^2,

with :math:`G` clusters (Cameron and Miller, 2015, *J. Human Resources* 50(2)).
"""

from __future__ import annotations

from collections.abc import Sequence
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
        Group labels, sorted (or in the order of ``levels`` when given).
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
    cluster_influence : ndarray of shape (n_clusters, k) or None
        One-way clustering only: cluster sums of the influence functions scaled by
        :math:`\\sqrt{C/(C-1)}`, so that ``cluster_influence.T @ cluster_influence == cov``;
        multiplier bootstraps draw from them.
    """

    labels: np.ndarray
    estimates: np.ndarray
    cov: np.ndarray
    counts: np.ndarray
    n_clusters: int
    se_type: str
    cluster_influence: np.ndarray | None = None

    @property
    def levels(self) -> tuple[str, ...]:
        """Group labels as strings, in the order of every array."""
        return tuple(str(label) for label in self.labels)

    @property
    def se(self) -> np.ndarray:
        """Standard errors, shape (k,)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def contrast(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Linear contrasts ``matrix @ estimates``, their covariance and cluster influence.

        Parameters
        ----------
        matrix : ndarray of shape (m, k)

        Returns
        -------
        estimates : ndarray of shape (m,)
        cov : ndarray of shape (m, m)
        cluster_influence : ndarray of shape (n_clusters, m) or None

        Raises
        ------
        ValueError
            If ``matrix`` does not have one column per group.
        """
        matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        if matrix.shape[1] != len(self.labels):
            raise ValueError(
                f"`matrix` must have {len(self.labels)} columns (one per level); "
                f"got {matrix.shape[1]}"
            )
        influence = None if self.cluster_influence is None else self.cluster_influence @ matrix.T
        return matrix @ self.estimates, matrix @ self.cov @ matrix.T, influence

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


def _cluster_sums(influence: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Cluster sums of the influence rows, scaled by sqrt(C/(C-1)) (CR1)."""
    codes, _ = pd.factorize(clusters)
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if n_clusters < 2:
        raise ValueError(f"cluster-robust SEs need at least 2 clusters; got {n_clusters}")
    sums = np.zeros((n_clusters, influence.shape[1]))
    np.add.at(sums, codes, influence)
    return sums * np.sqrt(n_clusters / (n_clusters - 1))


def group_means(
    scores: np.ndarray,
    groups: np.ndarray | Sequence[str],
    clusters: np.ndarray,
    levels: Sequence[str] | None = None,
    *,
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
    levels : sequence of str, optional
        Groups to report, in this order (labels compared as strings); units of other
        groups are left out. Sorted labels of all units when omitted.
    clusters2 : ndarray of shape (n,), optional
        Second clustering dimension for two-way clustered SEs.

    Returns
    -------
    GroupMeans

    Raises
    ------
    ValueError
        If shapes differ, scores are not finite, a clustering has fewer than 2 clusters,
        or a requested level has no unit.
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
    if levels is None:
        codes, labels = pd.factorize(groups, sort=True)
    else:
        labels = np.asarray(list(levels))
        index = pd.Index([str(level) for level in labels])
        codes = index.get_indexer(pd.Index(pd.Series(groups).astype(str))).astype(np.int64)
    k = len(labels)
    member = codes >= 0
    counts = np.bincount(codes[member], minlength=k).astype(np.float64)
    empty = [str(level) for level, count in zip(labels, counts, strict=True) if count == 0]
    if empty:
        raise ValueError(f"levels {empty} have no unit; drop them from `levels`")
    estimates = np.bincount(codes[member], weights=scores[member], minlength=k) / counts
    influence = np.zeros((len(scores), k))
    rows = np.flatnonzero(member)
    influence[rows, codes[member]] = (scores[member] - estimates[codes[member]]) / counts[
        codes[member]
    ]
    sums = _cluster_sums(influence, clusters)
    cov = sums.T @ sums
    se_type = "cluster-robust (CR1)"
    cluster_influence: np.ndarray | None = sums
    if clusters2 is not None:
        second = np.asarray(clusters2)
        sums2 = _cluster_sums(influence, second)
        pairs = pd.factorize(pd.Series(list(zip(clusters, second, strict=True))))[0]
        sums12 = _cluster_sums(influence, pairs)
        values, vectors = np.linalg.eigh(cov + sums2.T @ sums2 - sums12.T @ sums12)
        cov = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        se_type, cluster_influence = "two-way cluster-robust (CGM)", None
    return GroupMeans(
        labels=np.asarray(labels),
        estimates=estimates,
        cov=cov,
        counts=counts.astype(np.int64),
        n_clusters=sums.shape[0],
        se_type=se_type,
        cluster_influence=cluster_influence,
    )
