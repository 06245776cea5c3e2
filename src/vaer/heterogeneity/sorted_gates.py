r"""Sorted GATES and CLAN (Chernozhukov, Demirer, Duflo and Fernández-Val).

Firms are split into ``K`` groups of (nearly) equal size by the quantiles of their
out-of-sample effect estimate :math:`\hat\tau(X_i)`, within each cross-fitting fold of
:math:`\hat\tau` (:mod:`vaer.heterogeneity.folds`); group :math:`k = 1` holds the lowest
predicted effects. The sorted GATE of group :math:`k` is

.. math:: \gamma_k = E[\tau(X) \mid G_k],

estimated by the mean doubly robust score in the group, and the headline contrast is
:math:`\gamma_K - \gamma_1` (top minus bottom). If :math:`\hat\tau` carries real
heterogeneity the :math:`\gamma_k` increase with :math:`k`. CLAN (classification
analysis) compares the average characteristics of the most and least affected groups:
for every modifier :math:`Z`, :math:`E[Z \mid G_K] - E[Z \mid G_1]`. Group means are
OLS on group indicators with CR2 cluster-robust standard errors; every p-value and CI
uses Student's t with the Bell-McCaffrey degrees of freedom (``df``;
:mod:`vaer.heterogeneity.ols`).

A CLAN contrast describes who the ranking puts in the top and bottom groups: its null
(equal mean characteristic) is false whenever :math:`\hat\tau` varies with the
characteristic, even under a constant effect, so it is no test of heterogeneity.

Unlike the paper, which repeats random sample splits and takes medians, this uses the
single cross-fitted :math:`\hat\tau` of the estimation stage, which is already out of
sample for every firm.

References
----------
Chernozhukov, V., Demirer, M., Duflo, E. and Fernández-Val, I. (2018). Generic machine
learning inference on heterogeneous treatment effects in randomized experiments.
NBER Working Paper 24678. Pustejovsky, J. E. and Tipton, E. (2018). Small-sample
methods for cluster-robust variance estimation and hypothesis testing in fixed effects
models. *JBES* 36(4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.data.design import AnalysisData
from vaer.heterogeneity.folds import fold_codes
from vaer.heterogeneity.ols import ClusterDesign, group_design
from vaer.heterogeneity.withhold import withhold

SORTED_COLUMNS = [
    "estimator",
    "group",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "tau_hat_mean",
    "tau_hat_min",
    "tau_hat_max",
    "df",
    "p_value",
    "inference",
]
TOP_MINUS_BOTTOM = "top - bottom"


@dataclass(frozen=True)
class SortedGatesResult:
    """Sorted GATES and CLAN of one estimator.

    Attributes
    ----------
    estimator : str
    groups : DataFrame
        One row per group ``1..K`` and a last row ``top - bottom`` (``SORTED_COLUMNS``).
    clan : DataFrame
        One row per variable: ``mean_g1..mean_gK``, the top-minus-bottom difference, its
        SE, CI, df and p-value.
    """

    estimator: str
    groups: pd.DataFrame
    clan: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The sorted GATES table (``tables/gates_sorted.csv`` rows)."""
        return self.groups.copy()

    def clan_frame(self) -> pd.DataFrame:
        """The CLAN table (``tables/clan.csv`` rows)."""
        return self.clan.copy()

    def withhold_ranking(self) -> SortedGatesResult:
        """A copy without the groups' CIs and p-values (:mod:`vaer.heterogeneity.withhold`);
        CLAN, which compares characteristics rather than scores, is kept."""
        rows = np.ones(len(self.groups), dtype=bool)
        groups = withhold(self.groups, rows, ["ci_low", "ci_high", "p_value"])
        return SortedGatesResult(estimator=self.estimator, groups=groups, clan=self.clan)

    @property
    def top_minus_bottom(self) -> pd.Series:
        """The ``top - bottom`` row."""
        return self.groups[self.groups["group"] == TOP_MINUS_BOTTOM].iloc[0]

    def metrics(self) -> dict[str, float]:
        """Top-minus-bottom estimate, SE and p-value under ``gates_sorted.<estimator>.``."""
        row = self.top_minus_bottom
        prefix = f"gates_sorted.{self.estimator}.top_minus_bottom"
        return {prefix: float(row["estimate"]), f"{prefix}_se": float(row["se"])}


def quantile_groups(
    tau_hat: np.ndarray, n_groups: int, folds: np.ndarray | None = None
) -> np.ndarray:
    """Group ``1..n_groups`` of every unit by the rank of ``tau_hat`` within its fold
    (ties by order).

    Raises
    ------
    ValueError
        If ``n_groups`` < 2 or a fold has fewer units than groups.
    """
    tau_hat = np.asarray(tau_hat, dtype=np.float64)
    codes = fold_codes(folds, len(tau_hat))
    sizes = np.bincount(codes) if len(codes) else np.zeros(1, dtype=np.int64)
    if n_groups < 2 or sizes.min() < n_groups:
        raise ValueError(
            f"`n_groups` must be an int >= 2 and at most the number of units in a fold "
            f"({int(sizes.min())}); got {n_groups}"
        )
    groups = np.empty(len(tau_hat), dtype=np.int64)
    for fold in range(len(sizes)):
        rows = np.flatnonzero(codes == fold)
        ranks = np.empty(len(rows), dtype=np.int64)
        ranks[np.argsort(tau_hat[rows], kind="stable")] = np.arange(len(rows))
        groups[rows] = ranks * n_groups // len(rows) + 1
    return groups


def clan_variables(data: AnalysisData) -> pd.DataFrame:
    """The modifiers in their original units for CLAN: numeric columns as they are, a
    share column ``column=level`` for every level of each firm type, and the encoded
    indicator columns of other categorical modifiers."""
    parts: dict[str, np.ndarray] = {}
    for column in data.x.columns:
        original = column.split("=", 1)[0] if "=" in column else column
        if original in data.firm_types.columns:
            continue
        parts[column] = data.x[column].to_numpy(dtype=np.float64)
    for dimension in data.firm_types.columns:
        if dimension not in data.feature_groups or not any(
            c in data.x.columns for c in data.feature_groups[dimension]
        ):
            continue
        labels = data.firm_types[dimension].astype(str).to_numpy()
        for level in sorted(set(labels.tolist())):
            parts[f"{dimension}={level}"] = (labels == level).astype(np.float64)
    return pd.DataFrame(parts)


def _top_bottom(
    design: ClusterDesign, values: np.ndarray, level: float
) -> tuple[float, float, float, float, float, float]:
    """Top-minus-bottom difference of the group means of ``values``: estimate, SE, CI,
    Bell-McCaffrey df and two-sided p-value."""
    contrast = np.zeros((1, len(design.terms)))
    contrast[0, 0], contrast[0, -1] = -1.0, 1.0
    tests = design.fit(values).contrasts(contrast)
    diff, se, df = float(tests.estimates[0]), float(tests.se[0]), float(tests.df[0])
    half = float(tests.half_width(level)[0])
    return diff, se, diff - half, diff + half, df, float(tests.p_values()[0])


def sorted_gates(
    estimator: str,
    tau_hat: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray,
    variables: pd.DataFrame,
    *,
    folds: np.ndarray | None = None,
    n_groups: int = 5,
    ci_level: float = 0.95,
) -> SortedGatesResult:
    r"""Sorted GATES by quantile group of ``tau_hat``, and CLAN of ``variables``.

    Parameters
    ----------
    estimator : str
    tau_hat : ndarray of shape (n,)
        Out-of-sample effect estimates (the ranking).
    scores : ndarray of shape (n,)
        Doubly robust scores (the effects).
    clusters : ndarray of shape (n,)
    variables : DataFrame of shape (n, m)
        Characteristics to compare across groups (see :func:`clan_variables`).
    folds : ndarray of shape (n,), optional
        Cross-fitting fold of every unit's ``tau_hat``; quantile groups are formed within
        folds.
    n_groups : int
    ci_level : float

    Returns
    -------
    SortedGatesResult

    Raises
    ------
    ValueError
        If lengths differ, ``n_groups`` is invalid or a variable is not finite.
    """
    tau_hat = np.asarray(tau_hat, dtype=np.float64)
    if not len(tau_hat) == len(scores) == len(clusters) == len(variables):
        raise ValueError(
            "`tau_hat`, `scores`, `clusters` and `variables` must have the same length; got "
            f"{len(tau_hat)}, {len(scores)}, {len(clusters)} and {len(variables)}"
        )
    groups = quantile_groups(tau_hat, n_groups, folds).astype(str)
    order = [str(k) for k in range(1, n_groups + 1)]
    design, _ = group_design(groups, clusters, order)
    tests = design.fit(np.asarray(scores, dtype=np.float64)).coefficients()
    half = tests.half_width(ci_level)
    p_values = tests.p_values()
    rows: list[dict[str, object]] = []
    for k, level in enumerate(order):
        members = tau_hat[groups == level]
        rows.append(
            {
                "estimator": estimator,
                "group": level,
                "estimate": tests.estimates[k],
                "se": tests.se[k],
                "ci_low": tests.estimates[k] - half[k],
                "ci_high": tests.estimates[k] + half[k],
                "n": len(members),
                "tau_hat_mean": float(members.mean()),
                "tau_hat_min": float(members.min()),
                "tau_hat_max": float(members.max()),
                "df": tests.df[k],
                "p_value": p_values[k],
                "inference": "CR2, t(df)",
            }
        )
    diff, diff_se, low, high, df, p = _top_bottom(design, np.asarray(scores), ci_level)
    rows.append(
        {
            "estimator": estimator,
            "group": TOP_MINUS_BOTTOM,
            "estimate": diff,
            "se": diff_se,
            "ci_low": low,
            "ci_high": high,
            "n": int(np.sum(groups == order[0]) + np.sum(groups == order[-1])),
            "tau_hat_mean": float(
                tau_hat[groups == order[-1]].mean() - tau_hat[groups == order[0]].mean()
            ),
            "tau_hat_min": float("nan"),
            "tau_hat_max": float("nan"),
            "df": df,
            "p_value": p,
            "inference": "CR2, t(df)",
        }
    )
    clan_rows: list[dict[str, object]] = []
    for name in variables.columns:
        values = variables[name].to_numpy(dtype=np.float64)
        var_means = design.bread @ (design.x.T @ values)
        diff, diff_se, low, high, df, p = _top_bottom(design, values, ci_level)
        clan_rows.append(
            {
                "estimator": estimator,
                "variable": name,
                **{f"mean_g{k + 1}": var_means[k] for k in range(n_groups)},
                "difference": diff,
                "se": diff_se,
                "ci_low": low,
                "ci_high": high,
                "df": df,
                "p_value": p,
            }
        )
    clan_columns = [
        "estimator",
        "variable",
        *[f"mean_g{k + 1}" for k in range(n_groups)],
        "difference",
        "se",
        "ci_low",
        "ci_high",
        "df",
        "p_value",
    ]
    return SortedGatesResult(
        estimator=estimator,
        groups=pd.DataFrame(rows, columns=SORTED_COLUMNS),
        clan=pd.DataFrame(clan_rows, columns=clan_columns),
    )
