r"""Least squares with cluster-robust (CR1) standard errors.

For :math:`y = X\beta + u` with :math:`G` clusters,

.. math:: \hat V = (X^\top X)^{-1}\Big[\frac{G}{G-1}\frac{n-1}{n-k}
          \sum_c X_c^\top \hat u_c \hat u_c^\top X_c\Big](X^\top X)^{-1}

(Stata's small-sample factor; Cameron and Miller, 2015, *J. Human Resources* 50(2)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class OlsFit:
    """Coefficients of a cluster-robust OLS fit.

    Attributes
    ----------
    terms : tuple of str
    coef : ndarray of shape (k,)
    cov : ndarray of shape (k, k)
        CR1 covariance.
    n, n_clusters : int
    """

    terms: tuple[str, ...]
    coef: np.ndarray
    cov: np.ndarray
    n: int
    n_clusters: int

    @property
    def se(self) -> np.ndarray:
        """Standard errors, shape (k,)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))


def cluster_ols(
    y: np.ndarray, design: np.ndarray, clusters: np.ndarray, terms: Sequence[str]
) -> OlsFit:
    """OLS of ``y`` on ``design`` (no intercept added) with CR1 cluster-robust covariance.

    Parameters
    ----------
    y : ndarray of shape (n,)
    design : ndarray of shape (n, k)
    clusters : ndarray of shape (n,)
    terms : sequence of str
        Names of the ``k`` columns.

    Returns
    -------
    OlsFit

    Raises
    ------
    ValueError
        If shapes disagree, there are fewer than 2 clusters or ``n <= k``, or the design
        is rank deficient (e.g. a constant regressor next to the intercept).
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(design, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or len(terms) != x.shape[1]:
        raise ValueError(
            f"`design` must have shape (n, k) with n = len(y) = {len(y)} and k = len(terms) "
            f"= {len(terms)}; got {x.shape}"
        )
    n, k = x.shape
    codes, _ = pd.factorize(np.asarray(clusters))
    if len(codes) != n:
        raise ValueError(f"`clusters` must have length {n}; got {len(codes)}")
    n_clusters = int(codes.max()) + 1 if n else 0
    if n_clusters < 2 or n <= k:
        raise ValueError(
            f"cluster-robust OLS needs at least 2 clusters and more rows than terms; "
            f"got {n_clusters} clusters, {n} rows and {k} terms"
        )
    if np.linalg.matrix_rank(x) < k:
        raise ValueError(
            f"the regressors {list(terms)} are collinear (a constant or duplicated column); "
            "drop one"
        )
    xtx_inv = np.linalg.inv(x.T @ x)
    coef = xtx_inv @ (x.T @ y)
    resid = y - x @ coef
    scores = np.zeros((n_clusters, k))
    np.add.at(scores, codes, x * resid[:, None])
    factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
    cov = xtx_inv @ (factor * scores.T @ scores) @ xtx_inv
    return OlsFit(terms=tuple(terms), coef=coef, cov=cov, n=n, n_clusters=n_clusters)
