r"""The calibration test of grf's ``test_calibration``, on doubly robust scores.

Regress the doubly robust scores on the mean and the differential out-of-sample
prediction, with CR1 cluster-robust standard errors:

.. math:: \Gamma_i = \alpha\,\bar\tau + \beta\,(\hat\tau(X_i) - \bar\tau) + u_i,
          \qquad \bar\tau = \tfrac1n \textstyle\sum_i \hat\tau(X_i).

:math:`\alpha = 1` says the mean prediction is right; :math:`\beta = 1` says the
heterogeneity in :math:`\hat\tau` is well calibrated; :math:`\beta > 0` significantly
rejects the null of no heterogeneity (an omnibus test). As in grf, the p-values are
one-sided (:math:`H_1`: coefficient > 0). grf regresses the outcome residual on
treatment-residual-weighted predictions; the score form used here (DESIGN.md section 6)
has the same estimand and works unchanged for a continuous treatment.

References
----------
Athey, S. and Wager, S. (2019). Estimating treatment effects with causal forests: an
application. *Observational Studies* 5, 37-51. grf documentation, ``test_calibration``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vaer.heterogeneity.ols import OlsFit, cluster_ols

CALIBRATION_COLUMNS = [
    "estimator",
    "term",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "t_stat",
    "p_value",
]
MEAN_TERM = "mean_forest_prediction"
DIFFERENTIAL_TERM = "differential_forest_prediction"


@dataclass(frozen=True)
class CalibrationResult:
    """The calibration regression of one estimator.

    Attributes
    ----------
    estimator : str
    fit : OlsFit
    table : DataFrame
        One row per term (``CALIBRATION_COLUMNS``); ``p_value`` is one-sided.
    """

    estimator: str
    fit: OlsFit
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The calibration table rows of this estimator (``tables/calibration.csv``)."""
        return self.table.copy()

    def term(self, name: str) -> pd.Series:
        """The row of ``name`` (``mean_forest_prediction`` or
        ``differential_forest_prediction``).

        Raises
        ------
        KeyError
            If there is no such term.
        """
        rows = self.table[self.table["term"] == name]
        if rows.empty:
            raise KeyError(f"no term '{name}'; have {list(self.table['term'])}")
        return rows.iloc[0]

    def metrics(self) -> dict[str, float]:
        """``calibration.<estimator>.mean`` / ``.differential`` with their one-sided p-values."""
        out: dict[str, float] = {}
        for term, short in ((MEAN_TERM, "mean"), (DIFFERENTIAL_TERM, "differential")):
            row = self.term(term)
            out[f"calibration.{self.estimator}.{short}"] = float(row["estimate"])
            out[f"calibration.{self.estimator}.{short}_p_value"] = float(row["p_value"])
        return out


def coefficient_table(
    estimator: str, fit: OlsFit, ci_level: float, one_sided: bool
) -> pd.DataFrame:
    """Rows of coefficients with SEs, CIs, t-statistics and p-values."""
    z = float(stats.norm.ppf(0.5 + ci_level / 2))
    se = fit.se
    t = np.divide(fit.coef, se, out=np.full_like(se, np.nan), where=se > 0)
    p = stats.norm.sf(t) if one_sided else 2 * stats.norm.sf(np.abs(t))
    return pd.DataFrame(
        {
            "estimator": estimator,
            "term": list(fit.terms),
            "estimate": fit.coef,
            "se": se,
            "ci_low": fit.coef - z * se,
            "ci_high": fit.coef + z * se,
            "t_stat": t,
            "p_value": p,
        },
        columns=CALIBRATION_COLUMNS,
    )


def test_calibration(
    estimator: str,
    tau_hat: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray,
    *,
    ci_level: float = 0.95,
) -> CalibrationResult:
    r"""Cluster-robust calibration regression of the scores on mean and differential predictions.

    Parameters
    ----------
    estimator : str
    tau_hat : ndarray of shape (n,)
        Out-of-sample effect estimates.
    scores : ndarray of shape (n,)
        Doubly robust scores :math:`\Gamma_i`.
    clusters : ndarray of shape (n,)
    ci_level : float

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ValueError
        If lengths differ, ``tau_hat`` is constant, or its mean is zero (the mean
        coefficient is then undefined).
    """
    tau_hat = np.asarray(tau_hat, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if tau_hat.shape != scores.shape:
        raise ValueError(
            "`tau_hat` and `scores` must have the same shape; "
            f"got {tau_hat.shape} and {scores.shape}"
        )
    mean = float(tau_hat.mean())
    if mean == 0.0 or not np.std(tau_hat) > 0:
        raise ValueError(
            "the calibration test needs a non-constant `tau_hat` with a non-zero mean; "
            f"got mean {mean:.3g} and sd {np.std(tau_hat):.3g}"
        )
    design = np.column_stack([np.full_like(tau_hat, mean), tau_hat - mean])
    fit = cluster_ols(scores, design, clusters, [MEAN_TERM, DIFFERENTIAL_TERM])
    return CalibrationResult(
        estimator=estimator, fit=fit, table=coefficient_table(estimator, fit, ci_level, True)
    )


test_calibration.__test__ = False  # type: ignore[attr-defined]
