r"""The calibration test of grf's ``test_calibration``, on doubly robust scores.

Regress the doubly robust scores on the mean and the differential out-of-sample
prediction, with CR2 cluster-robust standard errors:

.. math:: \Gamma_i = \alpha\,\bar\tau_{k(i)} + \beta\,(\hat\tau(X_i) - \bar\tau_{k(i)})
          + u_i,

with :math:`\bar\tau_k` the mean prediction of the firms of cross-fitting fold :math:`k`
(one fold, the overall mean, when the folds are unknown; see
:mod:`vaer.heterogeneity.folds` for why the centring is per fold).

:math:`\alpha = 1` says the mean prediction is right; :math:`\beta = 1` says the
heterogeneity in :math:`\hat\tau` is well calibrated; :math:`\beta > 0` significantly
rejects the null of no heterogeneity (an omnibus test). As in grf, the p-values are
one-sided (:math:`H_1`: coefficient > 0), here from Student's t with the Bell-McCaffrey
degrees of freedom of the CR2 variance (``df``; :mod:`vaer.heterogeneity.ols`) instead of
the normal, which over-rejects with few clusters. grf regresses the outcome residual on
treatment-residual-weighted predictions; the score form used here (DESIGN.md section 6)
has the same estimand and works unchanged for a continuous treatment.

References
----------
Athey, S. and Wager, S. (2019). Estimating treatment effects with causal forests: an
application. *Observational Studies* 5, 37-51. grf documentation, ``test_calibration``.
Imbens, G. W. and Kolesár, M. (2016). Robust standard errors in small samples: some
practical advice. *Review of Economics and Statistics* 98(4), 701-712.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.heterogeneity.folds import center_within, fold_codes
from vaer.heterogeneity.ols import OlsFit, cluster_ols
from vaer.heterogeneity.withhold import withhold

CALIBRATION_COLUMNS = [
    "estimator",
    "term",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "t_stat",
    "df",
    "p_value",
    "inference",
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
        One row per term (``CALIBRATION_COLUMNS``); ``p_value`` is one-sided, from
        Student's t with ``df``.
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

    def withhold_ranking(self) -> CalibrationResult:
        """A copy without the differential coefficient's CI, t-statistic and p-value
        (:mod:`vaer.heterogeneity.withhold`)."""
        rows = self.table["term"] == DIFFERENTIAL_TERM
        table = withhold(self.table, rows, ["ci_low", "ci_high", "t_stat", "p_value"])
        return CalibrationResult(estimator=self.estimator, fit=self.fit, table=table)

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
    """Rows of coefficients with CR2 SEs, t(df) CIs, t-statistics, Bell-McCaffrey df and
    p-values (one-sided: coefficient > 0)."""
    tests = fit.coefficients()
    half = tests.half_width(ci_level)
    return pd.DataFrame(
        {
            "estimator": estimator,
            "term": list(fit.terms),
            "estimate": tests.estimates,
            "se": tests.se,
            "ci_low": tests.estimates - half,
            "ci_high": tests.estimates + half,
            "t_stat": tests.t_stat,
            "df": tests.df,
            "p_value": tests.p_values("greater" if one_sided else "two-sided"),
            "inference": f"CR2, t(df){', one-sided' if one_sided else ''}",
        },
        columns=CALIBRATION_COLUMNS,
    )


def test_calibration(
    estimator: str,
    tau_hat: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray,
    *,
    folds: np.ndarray | None = None,
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
    folds : ndarray of shape (n,), optional
        Cross-fitting fold of every unit's ``tau_hat`` (units predicted by one model share
        a fold); the predictions are centred within folds.
    ci_level : float

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ValueError
        If lengths differ, ``tau_hat`` is constant within folds, its mean is zero (the
        mean coefficient is then undefined), or a cluster spans two folds.
    """
    tau_hat = np.asarray(tau_hat, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if tau_hat.shape != scores.shape:
        raise ValueError(
            "`tau_hat` and `scores` must have the same shape; "
            f"got {tau_hat.shape} and {scores.shape}"
        )
    codes = fold_codes(folds, len(tau_hat), clusters)
    centered, means = center_within(tau_hat, codes)
    mean = float(tau_hat.mean())
    if mean == 0.0 or not np.std(centered) > 0:
        raise ValueError(
            "the calibration test needs a `tau_hat` that varies within folds and has a "
            f"non-zero mean; got mean {mean:.3g} and within-fold sd {np.std(centered):.3g}"
        )
    design = np.column_stack([means, centered])
    fit = cluster_ols(scores, design, clusters, [MEAN_TERM, DIFFERENTIAL_TERM])
    return CalibrationResult(
        estimator=estimator, fit=fit, table=coefficient_table(estimator, fit, ci_level, True)
    )


test_calibration.__test__ = False  # type: ignore[attr-defined]
