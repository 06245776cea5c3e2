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
