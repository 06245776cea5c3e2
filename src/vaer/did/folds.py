"""Cross-fitting folds of whole cities with every stratum (cohort, or arm) spread over them.

Folds drawn without regard to adoption can put every city of a small cohort in one fold:
the model trained on the other folds then never sees the cohort (a propensity model
trained on one arm only). :func:`deal_city_folds` deals the cities of each stratum over
the folds instead, so a stratum of two or more cities has cities outside every fold.
"""

from __future__ import annotations

import numpy as np


def deal_city_folds(
    cluster: np.ndarray, stratum: np.ndarray, random_state: int, n_folds: int
) -> np.ndarray:
    """Fold code ``0..n_folds-1`` of every unit: whole clusters, every stratum spread over
    the folds.

    Clusters are grouped by their stratum (the largest stratum code of their units) and,
    within each group, dealt in rounds of ``n_folds``, largest cluster first (ties in a
    random order), to the folds with the fewest clusters (then the fewest units), each fold
    once per round. So a stratum of two or more clusters has clusters outside every fold,
    one of ``n_folds`` or more has clusters in every fold, and the folds' cluster counts
    differ by at most one.

    Parameters
    ----------
    cluster : numpy.ndarray
        ``(n,)`` cluster label of every unit.
    stratum : numpy.ndarray
        ``(n,)`` integer stratum of every unit (e.g. its cohort, or 1 for treated units).
    random_state : int
        Seed of the order of equal-size clusters.
    n_folds : int
        Number of folds (>= 1).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` fold codes.
    """
    clusters, codes = np.unique(np.asarray(cluster), return_inverse=True)
    size = np.bincount(codes)
    cluster_stratum = np.full(len(clusters), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(cluster_stratum, codes, np.asarray(stratum, dtype=np.int64))
    rng = np.random.default_rng(random_state)
    fold_of = np.empty(len(clusters), dtype=np.int64)
    n_clusters = np.zeros(n_folds, dtype=np.int64)
    n_units = np.zeros(n_folds, dtype=np.int64)
    for value in np.unique(cluster_stratum):
        members = rng.permutation(np.flatnonzero(cluster_stratum == value))
        members = members[np.argsort(-size[members], kind="stable")]
        for start in range(0, len(members), n_folds):
            order = np.lexsort((n_units, n_clusters))  # fewest clusters, then fewest units
            for member, fold in zip(members[start : start + n_folds], order, strict=False):
                fold_of[member] = fold
                n_clusters[fold] += 1
                n_units[fold] += size[member]
    return fold_of[codes]
