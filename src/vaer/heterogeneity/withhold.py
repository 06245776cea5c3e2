r"""Withholding the p-values and intervals of tests that rank or regress on ``tau_hat``.

The calibration slope, sorted GATES and RATE (with the TOC band) test whether firms that
``tau_hat`` ranks high have larger doubly robust scores. Their reference distributions
(:mod:`vaer.heterogeneity.ols`, :mod:`vaer.heterogeneity.rate`) are right for scores that
are independent across clusters given the ranking. The scores the estimation stage
writes are not: the ranking and the scores are built from the same cross-fitted nuisance
models, so a misfit of those models that varies with the modifiers appears in both as
"heterogeneity", and a cluster-honest out-of-bag forest carries each city's scores into
the other cities' predictions (:mod:`vaer.heterogeneity.folds`). Under a constant effect
these tests rejected in up to a quarter of the draws at the 5% level, with mean
t-statistics from -0.7 to +0.5 depending on the estimator and design
(``benchmarks/RESULTS.md``, section ``heterogeneity_size``). Until the estimation stage
provides a ranking and scores that do not share data, their p-values and confidence
intervals are withheld by default (``heterogeneity.ranking_tests``); the estimates and
their SEs (conditional on the ranking) are still written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

RANKING_WITHHELD = (
    "withheld: tau_hat and the scores share nuisance errors, so this ranking-based test "
    "is not size-controlled (heterogeneity.ranking_tests)"
)


def withhold(
    frame: pd.DataFrame, rows: np.ndarray | pd.Series, columns: Sequence[str]
) -> pd.DataFrame:
    """A copy of ``frame`` with ``columns`` set to NaN on ``rows`` (boolean mask) and the
    ``inference`` column of those rows set to :data:`RANKING_WITHHELD`."""
    out = frame.copy()
    mask = np.asarray(rows, dtype=bool)
    for column in columns:
        if column in out.columns:
            out[column] = out[column].astype(np.float64)
            out.loc[mask, column] = np.nan
    out["inference"] = out["inference"].astype(object) if "inference" in out else ""
    out.loc[mask, "inference"] = RANKING_WITHHELD
    return out
