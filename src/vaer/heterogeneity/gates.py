r"""Group average treatment effects (GATEs) by firm type, with equality tests.

For a firm-type dimension with levels :math:`l = 1..L`, the GATE is

.. math:: \theta_l = E[\tau(X) \mid \text{type} = l],

estimated by the mean of the doubly robust scores :math:`\Gamma_i` over the firms of that
level (DESIGN.md section 6), with the joint CR1 cluster-robust covariance of all levels
(:func:`vaer.estimators.inference.group_means`). Per dimension this module reports

* each level's GATE, SE, CI, a two-sided p-value of :math:`\theta_l = 0` adjusted
  across the dimension's levels by Holm (``p_adj``) and by Romano-Wolf, and a sup-t joint
  confidence band (all levels covered together with probability ``ci_level``);
* every pairwise difference :math:`\theta_a - \theta_b` with Holm and Romano-Wolf
  adjusted p-values;
* the joint Wald test of :math:`\theta_1 = \dots = \theta_L` (:math:`\chi^2_{L-1}`).

Crossed dimensions (e.g. ownership x region) are treated as one dimension whose levels
are the observed combinations.

References
----------
Semenova, V. and Chernozhukov, V. (2021). Debiased machine learning of conditional
average treatment effects and other causal functions. *Econometrics Journal* 24(2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from vaer.estimators.inference import group_means
from vaer.heterogeneity.multiple_testing import (
    holm,
    multiplier_draws,
    romano_wolf,
    sup_t_critical,
    wald_test,
)

GATE_COLUMNS = [
    "estimator",
    "dimension",
    "level",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "p_adj",
    "p_value",
    "p_romano_wolf",
    "band_low",
    "band_high",
]
GATE_TEST_COLUMNS = [
    "estimator",
    "dimension",
    "test",
    "contrast",
    "estimate",
    "se",
    "statistic",
    "df",
    "p_value",
    "p_holm",
    "p_romano_wolf",
]
CROSS = " x "


@dataclass(frozen=True)
class GateResult:
    """GATEs of one estimator over every requested dimension.

    Attributes
    ----------
    estimator : str
    levels : DataFrame
        One row per dimension and level (columns ``GATE_COLUMNS``).
    tests : DataFrame
        Per dimension, the joint Wald equality test and every pairwise difference
        (columns ``GATE_TEST_COLUMNS``).
    """

    estimator: str
    levels: pd.DataFrame
    tests: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The GATE table (``tables/gate.csv`` rows of this estimator)."""
        return self.levels.copy()

    def tests_frame(self) -> pd.DataFrame:
        """The equality tests and pairwise differences (``tables/gate_tests.csv``)."""
        return self.tests.copy()

    def equality(self, dimension: str) -> pd.Series:
        """The Wald equality test row of ``dimension``.

        Raises
        ------
        KeyError
            If the dimension has no equality test (unknown, or a single level).
        """
        rows = self.tests[
            (self.tests["dimension"] == dimension) & (self.tests["test"] == "equality")
        ]
        if rows.empty:
            raise KeyError(f"no equality test for dimension '{dimension}'")
        return rows.iloc[0]

    def metrics(self) -> dict[str, float]:
        """``gate.<estimator>.<dimension>.<level>`` and the Wald statistic and p-value per
        dimension (``gate_test.<estimator>.<dimension>.wald`` / ``.p_value``)."""
        out: dict[str, float] = {}
        for row in self.levels.to_dict("records"):
            key = f"gate.{self.estimator}.{row['dimension']}.{row['level']}"
            out[key] = float(row["estimate"])
        equality = self.tests[self.tests["test"] == "equality"]
        for row in equality.to_dict("records"):
            prefix = f"gate_test.{self.estimator}.{row['dimension']}"
            out[f"{prefix}.wald"] = float(row["statistic"])
            out[f"{prefix}.p_value"] = float(row["p_value"])
        return out


def dimension_labels(
    firm_types: pd.DataFrame, dimensions: Sequence[str], crossed: Sequence[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """Labels per unit for every dimension: single columns, then crossed pairs.

    Raises
    ------
    ValueError
        If a named column is not among ``firm_types``' columns.
    """
    wanted = [*dimensions, *[c for pair in crossed for c in pair]]
    missing = [c for c in wanted if c not in firm_types.columns]
    if missing:
        raise ValueError(
            f"firm-type columns {missing} are not in the data's firm types "
            f"({', '.join(firm_types.columns) or 'none'}); add them to `roles.firm_types`"
        )
    labels = {d: firm_types[d].astype(str).to_numpy() for d in dimensions}
    for first, second in crossed:
        labels[f"{first}{CROSS}{second}"] = (
            firm_types[first].astype(str) + CROSS + firm_types[second].astype(str)
        ).to_numpy()
    return labels


def _dimension_rows(
    estimator: str,
    dimension: str,
    scores: np.ndarray,
    labels: np.ndarray,
    clusters: np.ndarray,
    ci_level: float,
    n_bootstrap: int,
    random_state: int,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    means = group_means(scores, labels, clusters)
    se = means.se
    z = stats.norm.ppf(0.5 + ci_level / 2)
    t = np.divide(means.estimates, se, out=np.zeros_like(se), where=se > 0)
    p = 2 * stats.norm.sf(np.abs(t))
    draws = multiplier_draws(means.cluster_influence, se, n_bootstrap, random_state)
    crit = sup_t_critical(draws, ci_level)
    p_rw = romano_wolf(t, draws)
    p_holm = holm(p)
    level_rows: list[dict[str, object]] = [
        {
            "estimator": estimator,
            "dimension": dimension,
            "level": level,
            "estimate": means.estimates[k],
            "se": se[k],
            "ci_low": means.estimates[k] - z * se[k],
            "ci_high": means.estimates[k] + z * se[k],
            "n": int(means.counts[k]),
            "p_adj": p_holm[k],
            "p_value": p[k],
            "p_romano_wolf": p_rw[k],
            "band_low": means.estimates[k] - crit * se[k],
            "band_high": means.estimates[k] + crit * se[k],
        }
        for k, level in enumerate(means.levels)
    ]
    n_levels = len(means.levels)
    if n_levels < 2:
        return level_rows, []
    restriction = np.hstack([-np.ones((n_levels - 1, 1)), np.eye(n_levels - 1)])
    statistic, df, p_wald = wald_test(means.estimates, means.cov, restriction)
    test_rows: list[dict[str, object]] = [
        {
            "estimator": estimator,
            "dimension": dimension,
            "test": "equality",
            "contrast": "all levels equal",
            "estimate": float("nan"),
            "se": float("nan"),
            "statistic": statistic,
            "df": df,
            "p_value": p_wald,
            "p_holm": p_wald,
            "p_romano_wolf": p_wald,
        }
    ]
    pairs = list(combinations(range(n_levels), 2))
    contrasts = np.zeros((len(pairs), n_levels))
    for row, (a, b) in enumerate(pairs):
        contrasts[row, a], contrasts[row, b] = 1.0, -1.0
    diff, diff_cov, diff_influence = means.contrast(contrasts)
    diff_se = np.sqrt(np.clip(np.diag(diff_cov), 0.0, None))
    diff_t = np.divide(diff, diff_se, out=np.zeros_like(diff), where=diff_se > 0)
    diff_p = 2 * stats.norm.sf(np.abs(diff_t))
    diff_draws = multiplier_draws(diff_influence, diff_se, n_bootstrap, random_state + 1)
    diff_rw = romano_wolf(diff_t, diff_draws)
    diff_holm = holm(diff_p)
    for row, (a, b) in enumerate(pairs):
        test_rows.append(
            {
                "estimator": estimator,
                "dimension": dimension,
                "test": "difference",
                "contrast": f"{means.levels[a]} - {means.levels[b]}",
                "estimate": diff[row],
                "se": diff_se[row],
                "statistic": diff_t[row],
                "df": 1,
                "p_value": diff_p[row],
                "p_holm": diff_holm[row],
                "p_romano_wolf": diff_rw[row],
            }
        )
    return level_rows, test_rows


def estimate_gates(
    estimator: str,
    scores: np.ndarray,
    firm_types: pd.DataFrame,
    clusters: np.ndarray,
    *,
    dimensions: Sequence[str],
    crossed: Sequence[tuple[str, str]] = (),
    ci_level: float = 0.95,
    n_bootstrap: int = 1000,
    random_state: int = 0,
) -> GateResult:
    r"""GATEs, pairwise differences and equality tests for every dimension.

    Parameters
    ----------
    estimator : str
        Label of the estimator whose scores these are.
    scores : ndarray of shape (n,)
        Doubly robust scores :math:`\Gamma_i`.
    firm_types : DataFrame of shape (n, d)
        Raw firm-type labels (``AnalysisData.firm_types``).
    clusters : ndarray of shape (n,)
    dimensions : sequence of str
        Columns of ``firm_types`` to break the effect down by.
    crossed : sequence of (str, str)
        Pairs of columns whose combinations form extra dimensions.
    ci_level : float
        Level of the CIs and of the joint band.
    n_bootstrap : int
        Multiplier-bootstrap draws for the band and the Romano-Wolf p-values.
    random_state : int

    Returns
    -------
    GateResult

    Raises
    ------
    ValueError
        If a dimension is not a column of ``firm_types``, lengths differ, or
        ``n_bootstrap`` < 20.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(firm_types) or len(scores) != len(clusters):
        raise ValueError(
            "`scores`, `firm_types` and `clusters` must have the same length; got "
            f"{len(scores)}, {len(firm_types)} and {len(clusters)}"
        )
    if n_bootstrap < 20:
        raise ValueError(f"`n_bootstrap` must be an int >= 20; got {n_bootstrap}")
    levels: list[dict[str, object]] = []
    tests: list[dict[str, object]] = []
    labels = dimension_labels(firm_types, dimensions, crossed)
    for offset, (dimension, values) in enumerate(labels.items()):
        level_rows, test_rows = _dimension_rows(
            estimator,
            dimension,
            scores,
            values,
            clusters,
            ci_level,
            n_bootstrap,
            random_state + 2 * offset,
        )
        levels += level_rows
        tests += test_rows
    return GateResult(
        estimator=estimator,
        levels=pd.DataFrame(levels, columns=GATE_COLUMNS),
        tests=pd.DataFrame(tests, columns=GATE_TEST_COLUMNS),
    )
