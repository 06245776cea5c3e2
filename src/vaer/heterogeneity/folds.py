r"""Cross-fitting folds of ``tau_hat``: which firms were predicted by the same model.

A test that ranks or regresses on out-of-sample :math:`\hat\tau` compares firms. If two
firms' predictions come from different models, each fitted on data that include the
other firm's cluster, the comparison is biased even though no firm's own prediction saw
its cluster: a city with a high score raises the predictions of the others and not its
own, so under a constant effect the ranking is *anti*-correlated with the scores. With
cluster-honest out-of-bag forests (every city its own model, trained on the others) the
calibration slope, AUTOC and the top-minus-bottom sorted GATE had mean t-statistics of
about -0.5 under the null (``benchmarks/RESULTS.md``).

Within a fold, every firm is predicted by one model that saw no firm of the fold, so
the comparison is clean; statistics are therefore computed within folds (centring
:math:`\hat\tau` on the fold's mean, ranking within the fold) and combined, as in
Chernozhukov, Demirer, Duflo and Fernández-Val's sample splits and grf's advice to
evaluate a prioritisation rule on data its model did not see.

References
----------
Chernozhukov, V., Demirer, M., Duflo, E. and Fernández-Val, I. (2018). Generic machine
learning inference on heterogeneous treatment effects in randomized experiments. NBER
Working Paper 24678. Yadlowsky, S. et al. (2025). Evaluating treatment prioritization
rules via rank-weighted average treatment effects. *JASA* 120(549), 38-51.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def fold_codes(folds: np.ndarray | None, n: int, clusters: np.ndarray | None = None) -> np.ndarray:
    """Integer fold codes ``0..K-1`` (all zeros when ``folds`` is None).

    Parameters
    ----------
    folds : ndarray of shape (n,) or None
        Fold label of every unit: units with the same label were predicted by one model.
    n : int
    clusters : ndarray of shape (n,), optional
        If given, every cluster must lie in one fold.

    Raises
    ------
    ValueError
        If ``folds`` does not have length ``n``, or a cluster spans two folds.
    """
    if folds is None:
        return np.zeros(n, dtype=np.int64)
    values = np.asarray(folds)
    if values.shape != (n,):
        raise ValueError(f"`folds` must have shape ({n},); got {values.shape}")
    codes, _ = pd.factorize(values, sort=True)
    if clusters is not None:
        spans = pd.Series(codes).groupby(np.asarray(clusters)).nunique()
        if (spans > 1).any():
            raise ValueError(
                "every cluster must lie in one fold of `folds`; clusters "
                f"{list(spans[spans > 1].index[:5])} span several"
            )
    return codes.astype(np.int64)


def center_within(values: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` minus their fold mean, and the fold mean of every unit."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.bincount(codes, weights=values)
    means = sums / np.bincount(codes)
    return values - means[codes], means[codes]
