r"""Means of a variable by group, with their joint cluster-robust covariance.

Clusters (cities) span groups (firm types), so the group means are correlated and tests
that compare groups need their joint covariance. For group :math:`l` with :math:`n_l`
units and mean :math:`\hat\theta_l`, the influence of unit :math:`i` is
:math:`\psi_{il} = 1\{g_i = l\}(v_i - \hat\theta_l) / n_l`; with cluster sums
:math:`S_{cl} = \sum_{i \in c} \psi_{il}` over :math:`G` clusters, the CR1 covariance is

.. math:: \hat V = \frac{G}{G - 1} S^\top S,

which for one group equals :func:`vaer.estimators.inference.cluster_robust_mean`
(Cameron and Miller, 2015, *J. Human Resources* 50(2), 317-372).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class GroupMeans:
    r"""Group means with their joint cluster-robust covariance.

    Attributes
    ----------
    levels : tuple of str
        Group labels, in the order of every array below.
    estimates : ndarray of shape (L,)
    cov : ndarray of shape (L, L)
        CR1 covariance of the estimates.
    counts : ndarray of shape (L,)
        Units per group.
    cluster_influence : ndarray of shape (G, L)
        Cluster sums of the influence functions, scaled by :math:`\sqrt{G/(G-1)}`, so
        that ``cluster_influence.T @ cluster_influence == cov``; the multiplier bootstrap
        draws from them.
    """

    levels: tuple[str, ...]
    estimates: np.ndarray
    cov: np.ndarray
    counts: np.ndarray
    cluster_influence: np.ndarray

    @property
    def se(self) -> np.ndarray:
        """Standard errors, shape (L,)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def contrast(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear contrasts ``matrix @ estimates``, their covariance and cluster influence.

        Parameters
        ----------
        matrix : ndarray of shape (k, L)

        Returns
        -------
        estimates : ndarray of shape (k,)
        cov : ndarray of shape (k, k)
        cluster_influence : ndarray of shape (G, k)
        """
        matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        if matrix.shape[1] != len(self.levels):
            raise ValueError(
                f"`matrix` must have {len(self.levels)} columns (one per level); "
                f"got {matrix.shape[1]}"
            )
        return (
            matrix @ self.estimates,
            matrix @ self.cov @ matrix.T,
            self.cluster_influence @ matrix.T,
        )


def group_means(
    values: np.ndarray,
    groups: np.ndarray | Sequence[str],
    clusters: np.ndarray,
    levels: Sequence[str] | None = None,
) -> GroupMeans:
    """Mean of ``values`` per group with the joint CR1 cluster-robust covariance.

    Parameters
    ----------
    values : ndarray of shape (n,)
        E.g. doubly robust scores (giving GATEs) or a modifier (giving CLAN means).
    groups : array-like of shape (n,)
        Group label per unit.
    clusters : ndarray of shape (n,)
        Cluster label per unit (each unit its own cluster gives HC-type SEs).
    levels : sequence of str, optional
        Order of the groups; sorted labels when omitted. Levels with no unit are errors.

    Returns
    -------
    GroupMeans

    Raises
    ------
    ValueError
        If shapes differ, there are fewer than 2 clusters, a value is not finite, or a
        requested level has no unit.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(groups).astype(str)
    clusters = np.asarray(clusters)
    if not values.shape == labels.shape == clusters.shape or values.ndim != 1:
        raise ValueError(
            "`values`, `groups` and `clusters` must be 1-d of the same length; "
            f"got shapes {values.shape}, {labels.shape} and {clusters.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("`values` must be finite; found NaN or inf")
    cluster_codes, _ = pd.factorize(clusters)
    n_clusters = int(cluster_codes.max()) + 1 if len(cluster_codes) else 0
    if n_clusters < 2:
        raise ValueError(f"cluster-robust SEs need at least 2 clusters; got {n_clusters}")
    order = list(levels) if levels is not None else sorted(set(labels.tolist()))
    index = {level: k for k, level in enumerate(order)}
    codes = np.array([index.get(label, -1) for label in labels])
    counts = np.bincount(codes[codes >= 0], minlength=len(order)).astype(np.int64)
    empty = [level for level, count in zip(order, counts, strict=True) if count == 0]
    if empty:
        raise ValueError(f"levels {empty} have no unit; drop them from `levels`")
    sums = np.bincount(codes[codes >= 0], weights=values[codes >= 0], minlength=len(order))
    estimates = sums / counts
    influence = np.zeros((n_clusters, len(order)))
    member = codes >= 0
    deviation = (values[member] - estimates[codes[member]]) / counts[codes[member]]
    np.add.at(influence, (cluster_codes[member], codes[member]), deviation)
    influence *= np.sqrt(n_clusters / (n_clusters - 1))
    return GroupMeans(
        levels=tuple(order),
        estimates=estimates,
        cov=influence.T @ influence,
        counts=counts,
        cluster_influence=influence,
    )
