r"""Group average treatment effects (GATEs) by firm type, with equality tests.

For a firm-type dimension with levels :math:`l = 1..L`, the GATE is

.. math:: \theta_l = E[\tau(X) \mid \text{type} = l],

estimated by the mean of the doubly robust scores :math:`\Gamma_i` over the firms of that
level (DESIGN.md section 6): OLS of the scores on the level indicators, with the CR2
cluster-robust covariance of all levels (:mod:`vaer.heterogeneity.ols`). Per dimension
this module reports

* each level's GATE, SE, CI and two-sided p-value of :math:`\theta_l = 0` from Student's
  t with the Bell-McCaffrey degrees of freedom ``df`` (close to the number of clusters
  with firms of that level minus one: a region found in six cities has about five), the
  p-value adjusted across the dimension's levels by Holm (``p_adj``) and by Romano-Wolf,
  and a simultaneous band (all levels covered together with probability ``ci_level``);
* every pairwise difference :math:`\theta_a - \theta_b`, t-tested the same way, with
  Holm and Romano-Wolf adjusted p-values;
* the joint test of :math:`\theta_1 = \dots = \theta_L`: Pustejovsky and Tipton's HTZ
  F-test (the cluster-robust Wald statistic scaled as Hotelling's :math:`T^2`),
  :math:`F(L - 1, \eta - L + 2)`; ``df`` is the numerator and ``df_den`` the
  denominator degrees of freedom (a difference's t-test is :math:`F(1, \nu)`). A level
  whose firms all sit in one cluster has no variance estimate (no SE, CI or p-value) and
  is left out of the equality test, which the ``contrast`` column then says.

Crossed dimensions (e.g. ownership x region) are treated as one dimension whose levels
are the observed combinations.

References
----------
Semenova, V. and Chernozhukov, V. (2021). Debiased machine learning of conditional
average treatment effects and other causal functions. *Econometrics Journal* 24(2).
Pustejovsky, J. E. and Tipton, E. (2018). Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models. *JBES* 36(4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from vaer.heterogeneity.multiple_testing import band_critical, holm, romano_wolf, t_draws
from vaer.heterogeneity.ols import group_design

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
    "df",
    "n_clusters",
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
    "df_den",
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
        One row per dimension and level (columns ``GATE_COLUMNS``); ``df`` is the
        t-test's degrees of freedom and ``n_clusters`` the clusters with firms of the
        level.
    tests : DataFrame
        Per dimension, the joint equality F-test and every pairwise difference
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
        """The equality test row of ``dimension``.

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
        """``gate.<estimator>.<dimension>.<level>`` and the equality F statistic and p-value
        per dimension (``gate_test.<estimator>.<dimension>.wald`` / ``.p_value``)."""
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
    design, _ = group_design(labels, clusters)
    fit = design.fit(scores)
    levels = list(design.terms)
    n_levels = len(levels)
    counts = design.x.sum(axis=0).astype(np.int64)
    level_clusters = [len(np.unique(design.codes[design.x[:, k] > 0])) for k in range(n_levels)]
    means = fit.coefficients()
    p = means.p_values()
    half = means.half_width(ci_level)
    draws = t_draws(means.cluster_contributions, means.se, means.df, n_bootstrap, random_state)
    band = band_critical(draws, means.df, ci_level) * means.se
    p_rw = romano_wolf(p, draws, means.df)
    p_holm = holm(p)
    level_rows: list[dict[str, object]] = [
        {
            "estimator": estimator,
            "dimension": dimension,
            "level": level,
            "estimate": means.estimates[k],
            "se": means.se[k],
            "ci_low": means.estimates[k] - half[k],
            "ci_high": means.estimates[k] + half[k],
            "n": int(counts[k]),
            "p_adj": p_holm[k],
            "p_value": p[k],
            "p_romano_wolf": p_rw[k],
            "band_low": means.estimates[k] - band[k],
            "band_high": means.estimates[k] + band[k],
            "df": means.df[k],
            "n_clusters": level_clusters[k],
        }
        for k, level in enumerate(levels)
    ]
    if n_levels < 2:
        return level_rows, []
    # a level whose firms sit in one city has no variance estimate: test the others
    testable = np.flatnonzero(np.isfinite(means.df))
    restriction = np.zeros((max(len(testable) - 1, 1), n_levels))
    if len(testable) >= 2:
        restriction[:, testable[0]] = -1.0
        restriction[np.arange(len(testable) - 1), testable[1:]] = 1.0
    joint = fit.wald(restriction) if len(testable) >= 2 else None
    untestable = [levels[k] for k in range(n_levels) if k not in set(testable.tolist())]
    nan = float("nan")
    test_rows: list[dict[str, object]] = [
        {
            "estimator": estimator,
            "dimension": dimension,
            "test": "equality",
            "contrast": "all levels equal"
            if not untestable
            else f"levels equal, except {', '.join(untestable)} (firms in one city only)",
            "estimate": float("nan"),
            "se": float("nan"),
            "statistic": nan if joint is None else joint.statistic,
            "df": len(testable) - 1 if joint is None else joint.df_num,
            "df_den": nan if joint is None else joint.df_den,
            "p_value": nan if joint is None else joint.p_value,
            "p_holm": nan if joint is None else joint.p_value,
            "p_romano_wolf": nan if joint is None else joint.p_value,
        }
    ]
    pairs = list(combinations(range(n_levels), 2))
    contrasts = np.zeros((len(pairs), n_levels))
    for row, (a, b) in enumerate(pairs):
        contrasts[row, a], contrasts[row, b] = 1.0, -1.0
    diffs = fit.contrasts(contrasts)
    diff_p = diffs.p_values()
    diff_draws = t_draws(
        diffs.cluster_contributions, diffs.se, diffs.df, n_bootstrap, random_state + 1
    )
    diff_rw = romano_wolf(diff_p, diff_draws, diffs.df)
    diff_holm = holm(diff_p)
    for row, (a, b) in enumerate(pairs):
        test_rows.append(
            {
                "estimator": estimator,
                "dimension": dimension,
                "test": "difference",
                "contrast": f"{levels[a]} - {levels[b]}",
                "estimate": diffs.estimates[row],
                "se": diffs.se[row],
                "statistic": diffs.t_stat[row],
                "df": 1,
                "df_den": diffs.df[row],
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
        Null draws of the t-statistics for the band and the Romano-Wolf p-values.
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
