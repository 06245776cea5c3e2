r"""Sorted GATES and CLAN (Chernozhukov, Demirer, Duflo and Fernández-Val).

Firms are split into ``K`` groups of (nearly) equal size by the quantiles of their
out-of-sample effect estimate :math:`\hat\tau(X_i)`; group :math:`k = 1` holds the lowest
predicted effects. The sorted GATE of group :math:`k` is

.. math:: \gamma_k = E[\tau(X) \mid G_k],

estimated by the mean doubly robust score in the group, and the headline contrast is
:math:`\gamma_K - \gamma_1` (top minus bottom). If :math:`\hat\tau` carries real
heterogeneity the :math:`\gamma_k` increase with :math:`k`. CLAN (classification
analysis) compares the average characteristics of the most and least affected groups:
for every modifier :math:`Z`, :math:`E[Z \mid G_K] - E[Z \mid G_1]`. All standard errors
are CR1 cluster-robust from the joint covariance of the group means.

Unlike the paper, which repeats random sample splits and takes medians, this uses the
single cross-fitted / out-of-bag :math:`\hat\tau` of the estimation stage, which is
already out of sample for every firm.

References
----------
Chernozhukov, V., Demirer, M., Duflo, E. and Fernández-Val, I. (2018). Generic machine
learning inference on heterogeneous treatment effects in randomized experiments.
NBER Working Paper 24678.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vaer.data.design import AnalysisData
from vaer.estimators.inference import GroupMeans, group_means

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
    "p_value",
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
        SE, CI and p-value.
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

    @property
    def top_minus_bottom(self) -> pd.Series:
        """The ``top - bottom`` row."""
        return self.groups[self.groups["group"] == TOP_MINUS_BOTTOM].iloc[0]

    def metrics(self) -> dict[str, float]:
        """Top-minus-bottom estimate, SE and p-value under ``gates_sorted.<estimator>.``."""
        row = self.top_minus_bottom
        prefix = f"gates_sorted.{self.estimator}.top_minus_bottom"
        return {prefix: float(row["estimate"]), f"{prefix}_se": float(row["se"])}


def quantile_groups(tau_hat: np.ndarray, n_groups: int) -> np.ndarray:
    """Group ``1..n_groups`` of every unit by the rank of ``tau_hat`` (ties by order).

    Raises
    ------
    ValueError
        If ``n_groups`` < 2 or there are fewer units than groups.
    """
    tau_hat = np.asarray(tau_hat, dtype=np.float64)
    if n_groups < 2 or len(tau_hat) < n_groups:
        raise ValueError(
            f"`n_groups` must be an int >= 2 and at most the number of units ({len(tau_hat)}); "
            f"got {n_groups}"
        )
    ranks = np.empty(len(tau_hat), dtype=np.int64)
    ranks[np.argsort(tau_hat, kind="stable")] = np.arange(len(tau_hat))
    return ranks * n_groups // len(tau_hat) + 1


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


def _top_bottom(means: GroupMeans, z: float) -> tuple[float, float, float, float, float]:
    contrast = np.zeros(len(means.levels))
    contrast[0], contrast[-1] = -1.0, 1.0
    estimate, cov, _ = means.contrast(contrast[None, :])
    diff, se = float(estimate[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
    p = float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else float("nan")
    return diff, se, diff - z * se, diff + z * se, p


def sorted_gates(
    estimator: str,
    tau_hat: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray,
    variables: pd.DataFrame,
    *,
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
    n_groups : int
    ci_level : float

    Returns
    -------
    SortedGatesResult

    Raises
    ------
    ValueError
        If lengths differ or ``n_groups`` is invalid.
    """
    tau_hat = np.asarray(tau_hat, dtype=np.float64)
    if not len(tau_hat) == len(scores) == len(clusters) == len(variables):
        raise ValueError(
            "`tau_hat`, `scores`, `clusters` and `variables` must have the same length; got "
            f"{len(tau_hat)}, {len(scores)}, {len(clusters)} and {len(variables)}"
        )
    groups = quantile_groups(tau_hat, n_groups).astype(str)
    order = [str(k) for k in range(1, n_groups + 1)]
    z = float(stats.norm.ppf(0.5 + ci_level / 2))
    means = group_means(scores, groups, clusters, levels=order)
    se = means.se
    rows: list[dict[str, object]] = []
    for k, level in enumerate(order):
        members = tau_hat[groups == level]
        p = float(2 * stats.norm.sf(abs(means.estimates[k] / se[k]))) if se[k] > 0 else 1.0
        rows.append(
            {
                "estimator": estimator,
                "group": level,
                "estimate": means.estimates[k],
                "se": se[k],
                "ci_low": means.estimates[k] - z * se[k],
                "ci_high": means.estimates[k] + z * se[k],
                "n": int(means.counts[k]),
                "tau_hat_mean": float(members.mean()),
                "tau_hat_min": float(members.min()),
                "tau_hat_max": float(members.max()),
                "p_value": p,
            }
        )
    diff, diff_se, low, high, p = _top_bottom(means, z)
    rows.append(
        {
            "estimator": estimator,
            "group": TOP_MINUS_BOTTOM,
            "estimate": diff,
            "se": diff_se,
            "ci_low": low,
            "ci_high": high,
            "n": int(means.counts[0] + means.counts[-1]),
            "tau_hat_mean": float(
                tau_hat[groups == order[-1]].mean() - tau_hat[groups == order[0]].mean()
            ),
            "tau_hat_min": float("nan"),
            "tau_hat_max": float("nan"),
            "p_value": p,
        }
    )
    clan_rows: list[dict[str, object]] = []
    for name in variables.columns:
        var_means = group_means(variables[name].to_numpy(dtype=np.float64), groups, clusters, order)
        diff, diff_se, low, high, p = _top_bottom(var_means, z)
        clan_rows.append(
            {
                "estimator": estimator,
                "variable": name,
                **{f"mean_g{k + 1}": var_means.estimates[k] for k in range(n_groups)},
                "difference": diff,
                "se": diff_se,
                "ci_low": low,
                "ci_high": high,
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
        "p_value",
    ]
    return SortedGatesResult(
        estimator=estimator,
        groups=pd.DataFrame(rows, columns=SORTED_COLUMNS),
        clan=pd.DataFrame(clan_rows, columns=clan_columns),
    )
