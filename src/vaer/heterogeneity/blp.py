r"""Best linear projection of the effect on chosen covariates (grf's ``best_linear_projection``).

The projection :math:`\beta = \arg\min_b E[(\tau(X) - (b_0 + A^\top b_1))^2]` is estimated
by OLS of the doubly robust scores on :math:`[1, A]`,

.. math:: \Gamma_i = \beta_0 + A_i^\top \beta_1 + u_i,

with CR2 cluster-robust standard errors and two-sided t-tests with Bell-McCaffrey
degrees of freedom (:mod:`vaer.heterogeneity.ols`). A last row, :data:`JOINT_TERM`, tests
:math:`\beta_1 = 0` (no heterogeneity along any covariate) with Pustejovsky and Tipton's
HTZ F-test: an omnibus test of heterogeneity that, unlike the calibration test, does not
use :math:`\hat\tau`, so the nuisance errors that :math:`\hat\tau` and the scores share
do not enter it (:mod:`vaer.heterogeneity.withhold`). It is a summary of heterogeneity along
:math:`A` that stays valid when :math:`\tau` is not linear in :math:`A`.

References
----------
Semenova, V. and Chernozhukov, V. (2021). Debiased machine learning of conditional
average treatment effects and other causal functions. *Econometrics Journal* 24(2).
grf documentation, ``best_linear_projection``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.heterogeneity.calibration import coefficient_table
from vaer.heterogeneity.ols import OlsFit, cluster_ols

INTERCEPT = "(intercept)"
JOINT_TERM = "all slopes = 0 (joint F)"


@dataclass(frozen=True)
class BlpResult:
    """The best linear projection of one estimator's scores.

    Attributes
    ----------
    estimator : str
    fit : OlsFit
    table : DataFrame
        One row per term: ``(intercept)`` then the covariates; two-sided p-values from
        Student's t with ``df``; then the joint F-test of all slopes (``JOINT_TERM``: its
        ``df`` is the denominator df, ``inference`` states the F statistic).
    """

    estimator: str
    fit: OlsFit
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The BLP table rows of this estimator (``tables/blp.csv``)."""
        return self.table.copy()

    def metrics(self) -> dict[str, float]:
        """``blp.<estimator>.<term>`` coefficients and ``blp.<estimator>.joint_p_value``."""
        out = {
            f"blp.{self.estimator}.{term}": float(coef)
            for term, coef in zip(self.fit.terms, self.fit.coef, strict=True)
        }
        joint = self.table[self.table["term"] == JOINT_TERM]
        if not joint.empty and np.isfinite(joint["p_value"].iloc[0]):
            out[f"blp.{self.estimator}.joint_p_value"] = float(joint["p_value"].iloc[0])
        return out


def best_linear_projection(
    estimator: str,
    scores: np.ndarray,
    covariates: pd.DataFrame,
    clusters: np.ndarray,
    *,
    ci_level: float = 0.95,
) -> BlpResult:
    r"""OLS of the doubly robust scores on an intercept and ``covariates``, cluster-robust.

    Parameters
    ----------
    estimator : str
    scores : ndarray of shape (n,)
    covariates : DataFrame of shape (n, k)
        Numeric columns (may be empty: the projection is then the ATE).
    clusters : ndarray of shape (n,)
    ci_level : float

    Returns
    -------
    BlpResult

    Raises
    ------
    ValueError
        If lengths differ, a covariate is not numeric or not finite, or the covariates are
        collinear with the intercept.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(covariates) != len(scores):
        raise ValueError(
            f"`covariates` must have one row per score ({len(scores)}); got {len(covariates)}"
        )
    bad = [c for c in covariates.columns if not pd.api.types.is_numeric_dtype(covariates[c])]
    if bad:
        raise ValueError(f"BLP covariates must be numeric; {bad} are not")
    values = covariates.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("BLP covariates must be finite; found NaN or inf")
    design = np.column_stack([np.ones(len(scores)), values])
    fit = cluster_ols(scores, design, clusters, [INTERCEPT, *map(str, covariates.columns)])
    table = coefficient_table(estimator, fit, ci_level, False)
    k = values.shape[1]
    if k:
        joint = fit.wald(np.hstack([np.zeros((k, 1)), np.eye(k)]))
        row: dict[str, object] = {column: np.nan for column in table.columns}
        row.update(
            estimator=estimator,
            term=JOINT_TERM,
            df=joint.df_den,
            p_value=joint.p_value,
            inference=f"CR2, HTZ F({joint.df_num}, {joint.df_den:.1f}) = {joint.statistic:.3g}",
        )
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    return BlpResult(estimator=estimator, fit=fit, table=table)
