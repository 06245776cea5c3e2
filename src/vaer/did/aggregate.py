"""Aggregations of ATT(g, t) (Callaway–Sant'Anna 2021, section 3) with influence functions.

With ``p_g`` the share of units in cohort ``g`` (over all units of the panel):

- ``simple``: ``sum_{post cells} p_g ATT(g, t) / sum_{post cells} p_g``;
- ``dynamic`` (event study): ``theta(e) = sum_g p_g ATT(g, g + e) / sum_g p_g`` over the
  cohorts with a cell at event time ``e``; overall = mean of ``theta(e)`` over ``e >= 0``;
- ``group``: ``theta(g) =`` mean of ``ATT(g, t)`` over ``t >= g``; overall =
  ``sum_g p_g theta(g) / sum_g p_g``;
- ``calendar``: ``theta(t) = sum_g p_g ATT(g, t) / sum_g p_g`` over cohorts with
  ``g <= t``; overall = mean of ``theta(t)``.

The weights ``p_g`` are estimated, so the influence function of an aggregate
``sum_k w_k ATT_k`` with ``w_k = p_{g_k} / sum_j p_{g_j}`` is
``sum_k w_k psi_k + sum_k ATT_k * phi_k`` with ``phi_k`` the influence function of
``w_k`` (R ``did::aggte``'s ``wif``):

``phi_k(i) = (1{G_i = g_k} - p_{g_k}) / S - p_{g_k} sum_j (1{G_i = g_j} - p_{g_j}) / S^2``,
``S = sum_j p_{g_j}``. Standard errors cluster these influence functions in the
ATT(g, t)'s inference mode (:mod:`vaer.did.inference`): small-cluster t intervals and
Bonferroni-t bands over the keys, or normal intervals and cluster multiplier-bootstrap
sup-t bands.

Reference: Callaway, B. and Sant'Anna, P. H. C. (2021), Journal of Econometrics 225(2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.did.att_gt import ATTGTResult
from vaer.did.inference import (
    check_bootstrap_args,
    cluster_se_df,
    family_critical,
    interval_critical,
    multiplier_bootstrap,
)

AGGREGATIONS = ("simple", "dynamic", "group", "calendar")


@dataclass(frozen=True)
class AggregateResult:
    """An aggregation of ATT(g, t): one estimate per key plus an overall one.

    Attributes
    ----------
    aggregation : str
        ``"simple"``, ``"dynamic"``, ``"group"`` or ``"calendar"``.
    keys : numpy.ndarray
        Event times, cohorts or periods (empty for ``"simple"``).
    estimate, se : numpy.ndarray
        ``(n_keys,)`` estimates and cluster-robust SEs (NaN if fixed at 0).
    influence : numpy.ndarray
        ``(n_units, n_keys)`` influence functions (including the estimated-weight term).
    overall_estimate, overall_se : float
        The overall aggregate (see the module docstring) and its SE.
    overall_influence : numpy.ndarray
        ``(n_units,)`` its influence function.
    unit_ids : pandas.Index
        Row labels of the influence functions.
    cluster : numpy.ndarray
        Cluster code of each unit.
    n_clusters : int
        Number of clusters.
    anticipation : int
        Anticipation of the underlying ATT(g, t).
    alpha : float
        One minus the coverage of the intervals.
    inference : str
        The ATT(g, t)'s inference mode.
    df : numpy.ndarray
        Degrees of freedom of each key's t interval (infinite when asymptotic).
    overall_df : float
        Those of the overall aggregate.
    crit_value : float
        Sup-t critical value of the band over the keys (NaN without bootstrap).
    se_boot : numpy.ndarray or None
        Bootstrap SEs of the keys (None without bootstrap).
    """

    aggregation: str
    keys: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    influence: np.ndarray
    overall_estimate: float
    overall_se: float
    overall_influence: np.ndarray
    unit_ids: pd.Index
    cluster: np.ndarray
    n_clusters: int
    anticipation: int
    alpha: float
    inference: str
    df: np.ndarray
    overall_df: float
    crit_value: float = float("nan")
    se_boot: np.ndarray | None = field(default=None)

    def to_frame(self) -> pd.DataFrame:
        """One row per key, then the overall row (``key`` NaN, ``overall`` True).

        Returns
        -------
        pandas.DataFrame
            Columns aggregation, key, estimate, se, df, ci_low, ci_high, band_low,
            band_high (NaN for the overall row, and without bootstrap in the asymptotic
            mode), overall.
        """
        pointwise, band = family_critical(self.alpha, self.df, self.inference, self.crit_value)
        z = np.append(pointwise, interval_critical(self.alpha, np.array([self.overall_df])))
        est = np.append(self.estimate, self.overall_estimate)
        se = np.append(self.se, self.overall_se)
        crit = np.append(band, np.nan)
        return pd.DataFrame(
            {
                "aggregation": self.aggregation,
                "key": np.append(self.keys.astype(float), np.nan),
                "estimate": est,
                "se": se,
                "df": np.append(self.df, self.overall_df),
                "ci_low": est - z * se,
                "ci_high": est + z * se,
                "band_low": est - crit * se,
                "band_high": est + crit * se,
                "overall": np.append(np.zeros(len(self.keys), dtype=bool), True),
            }
        )


def _weighted(
    att: np.ndarray,
    influence: np.ndarray,
    item_cohort: np.ndarray,
    share: dict[int, float],
    unit_cohort: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Cohort-share weighted mean of ``att`` with the estimated-weight influence term."""
    p = np.array([share[int(g)] for g in item_cohort])
    total = p.sum()
    w = p / total
    theta = float(att @ w)
    # sum_k att_k 1{G_i = g_k} and #{k : g_k = G_i} for every unit
    cohorts = np.unique(item_cohort)
    sum_att = np.array([att[item_cohort == g].sum() for g in cohorts])
    count = np.array([np.sum(item_cohort == g) for g in cohorts], dtype=float)
    pos = np.searchsorted(cohorts, unit_cohort)
    pos = np.minimum(pos, len(cohorts) - 1)
    member = cohorts[pos] == unit_cohort
    a = np.where(member, sum_att[pos], 0.0)
    b = np.where(member, count[pos], 0.0)
    wif = (a - float(p @ att)) / total - (b - total) * theta / total
    return theta, influence @ w + wif


def _cohort_share(result: ATTGTResult) -> dict[int, float]:
    values, counts = np.unique(result.cohort, return_counts=True)
    n = result.n_units
    return {int(v): c / n for v, c in zip(values, counts, strict=True)}


def _check(
    aggregation: str,
    min_e: float,
    max_e: float,
    balance_e: int | None,
) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"`aggregation` must be one of {AGGREGATIONS}; got {aggregation!r}")
    if min_e > max_e:
        raise ValueError(f"`min_e` must be <= `max_e`; got {min_e} > {max_e}")
    if balance_e is not None and (
        isinstance(balance_e, bool) or not isinstance(balance_e, int | np.integer) or balance_e < 0
    ):
        raise ValueError(f"`balance_e` must be None or an int >= 0; got {balance_e!r}")


def aggregate(
    result: ATTGTResult,
    aggregation: str = "dynamic",
    *,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    balance_e: int | None = None,
    alpha: float | None = None,
    n_boot: int = 0,
    boot_weights: str = "mammen",
    random_state: int | np.random.Generator | None = None,
) -> AggregateResult:
    """Aggregate ATT(g, t) into one summary family (R ``did::aggte``).

    Parameters
    ----------
    result : ATTGTResult
        Output of :func:`vaer.did.att_gt.att_gt`.
    aggregation : {"simple", "dynamic", "group", "calendar"}
        The aggregation (see the module docstring).
    min_e, max_e : float
        Event-time window of ``"dynamic"``; ``max_e`` also caps the post cells used by
        ``"simple"`` and ``"group"`` (``t <= g + max_e``), as in R.
    balance_e : int or None
        ``"dynamic"`` only: keep the cohorts observed for at least ``balance_e`` periods
        after treatment and event times up to ``balance_e`` (a balanced event study).
    alpha : float or None
        One minus the coverage of the intervals (default: the ATT(g, t)'s).
    n_boot : int
        Cluster multiplier bootstrap draws for the simultaneous band over the keys
        (0 = none; asymptotic mode only: the small-cluster bands are Bonferroni-t).
    boot_weights : {"mammen", "rademacher"}
        Multiplier distribution.
    random_state : int, numpy.random.Generator or None
        Seed of the bootstrap.

    Returns
    -------
    AggregateResult
        Estimates, SEs, influence functions and the overall aggregate.

    Raises
    ------
    ValueError
        On an unknown aggregation, ``min_e > max_e``, a bad ``balance_e`` or bootstrap
        option, or no cell to aggregate.
    """
    _check(aggregation, min_e, max_e, balance_e)
    alpha = result.alpha if alpha is None else alpha
    check_bootstrap_args(n_boot, boot_weights, alpha)
    if result.inference == "small_cluster" and n_boot:
        raise ValueError(
            "`n_boot` draws a bootstrap band for inference='asymptotic'; the small-cluster "
            "mode's bands are Bonferroni-t: pass n_boot=0"
        )
    share = _cohort_share(result)
    g, t, att, inf = result.group, result.time, result.att, result.influence
    e = t - g
    post = (g <= t) & (t <= g + max_e)

    def weighted(cells: np.ndarray) -> tuple[float, np.ndarray]:
        return _weighted(att[cells], inf[:, cells], g[cells], share, result.cohort)

    keys: list[int] = []
    estimates: list[float] = []
    columns: list[np.ndarray] = []
    if aggregation == "simple":
        cells = np.flatnonzero(post)
        if len(cells) == 0:
            raise ValueError("no post-treatment cell to aggregate")
        overall, overall_inf = weighted(cells)
    elif aggregation == "group":
        for cohort in np.unique(g):
            cells = np.flatnonzero(post & (g == cohort))
            if len(cells):
                keys.append(int(cohort))
                estimates.append(float(att[cells].mean()))
                columns.append(inf[:, cells].mean(axis=1))
        if not keys:
            raise ValueError("no post-treatment cell to aggregate")
        overall, overall_inf = _weighted(
            np.array(estimates), np.column_stack(columns), np.array(keys), share, result.cohort
        )
    elif aggregation == "dynamic":
        include = np.ones(len(att), dtype=bool)
        event_times = np.unique(e)
        if balance_e is not None:
            last, first = int(result.periods[-1]), int(result.periods[0])
            include = (last - g) >= balance_e
            event_times = np.unique(e[include])
            event_times = event_times[
                (event_times <= balance_e) & (event_times >= balance_e - last + first)
            ]
        event_times = event_times[(event_times >= min_e) & (event_times <= max_e)]
        for event in event_times:
            cells = np.flatnonzero((e == event) & include)
            if len(cells):
                value, column = weighted(cells)
                keys.append(int(event))
                estimates.append(value)
                columns.append(column)
        if not keys:
            raise ValueError("no cell in the event-time window to aggregate")
        positive = np.array(keys) >= 0
        if np.any(positive):
            overall = float(np.mean(np.array(estimates)[positive]))
            overall_inf = np.column_stack(columns)[:, positive].mean(axis=1)
        else:
            overall, overall_inf = float("nan"), np.zeros(result.n_units)
    else:  # calendar
        first_cohort = g.min()
        for period in np.unique(t[t >= first_cohort]):
            cells = np.flatnonzero((t == period) & (g <= t))
            if len(cells):
                value, column = weighted(cells)
                keys.append(int(period))
                estimates.append(value)
                columns.append(column)
        if not keys:
            raise ValueError("no post-treatment cell to aggregate")
        overall = float(np.mean(estimates))
        overall_inf = np.column_stack(columns).mean(axis=1)

    influence = np.column_stack(columns) if columns else np.zeros((result.n_units, 0))
    mode, cluster, n_clusters = result.inference, result.cluster, result.n_clusters
    se, df = cluster_se_df(influence, cluster, n_clusters, mode)
    whole_se, whole_df = cluster_se_df(overall_inf[:, None], cluster, n_clusters, mode)
    overall_se, overall_df = float(whole_se[0]), float(whole_df[0])
    crit, se_boot = float("nan"), None
    if n_boot > 0 and columns:
        boot = multiplier_bootstrap(
            influence,
            result.cluster,
            result.n_clusters,
            n_boot=n_boot,
            weights=boot_weights,
            alpha=alpha,
            random_state=random_state,
        )
        crit, se_boot = boot.crit_value, boot.se
    return AggregateResult(
        aggregation=aggregation,
        keys=np.array(keys, dtype=np.int64),
        estimate=np.array(estimates, dtype=float),
        se=se,
        influence=influence,
        overall_estimate=float(overall),
        overall_se=overall_se,
        overall_influence=overall_inf,
        unit_ids=result.unit_ids,
        cluster=result.cluster,
        n_clusters=result.n_clusters,
        anticipation=result.anticipation,
        alpha=float(alpha),
        inference=mode,
        df=df,
        overall_df=overall_df,
        crit_value=crit,
        se_boot=se_boot,
    )
