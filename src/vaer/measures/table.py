"""From a firm-year panel to the analysis table: one row per firm for one shock window.

Outcome (resilience), treatment (VA exposure), features and mediators are built from the
panel with the measures of :mod:`vaer.config.panel.MeasuresConfig`; every firm left out
is counted under the first reason it fails (DESIGN.md section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.config.models import Roles
from vaer.config.panel import MeasuresConfig, ShockWindow
from vaer.measures.expected import industry_expected, national_expected
from vaer.measures.growth import growth, window_levels
from vaer.measures.resilience import composite, excess_growth, martin_ratio, survival, winsorize
from vaer.measures.va_index import binarise, city_index

DROP_REASONS = {
    "no_row_in_base_year": "no row in the pre-shock year (entered later or exited before)",
    "zero_base_exports": "no exports in the pre-period (base level 0)",
    "missing_<column>": "a role column is missing (NaN) in the pre-shock year",
    "no_va_index": "the city has no VA index in the pre-shock year",
    "undefined_growth": "growth undefined (log growth of an exit or a zero level)",
    "no_benchmark": "no expected growth (alone in its industry, or zero expected growth)",
}
"""Why a firm of the panel is not in the analysis table, in the order they are checked."""


@dataclass(frozen=True)
class AnalysisTable:
    """The analysis table of one shock window and what it cost.

    Attributes
    ----------
    frame : DataFrame
        One row per firm: the role columns at the pre-shock year, ``roles.treatment``
        (VA exposure), ``roles.outcome``, the growth rates (``growth_trough``,
        ``growth_recovery``, ``expected_trough``, ``expected_recovery``), ``survived``,
        ``base_exports`` and the mediators ``d_<proxy>`` (proxy at the last trough year
        minus its pre-shock value; NaN where either is missing).
    window_name : str
    window : ShockWindow
    panel_firms : int
        Firms in the panel.
    dropped : dict
        Reason -> firms left out (see :data:`DROP_REASONS`); missing features are
        counted per column as ``missing_<column>``.
    winsorized : int
        Outcome values clipped by winsorising.
    outcome_weights : tuple of float or None
        ``(a, b)`` such that the outcome is ``a * resistance + b * recovery + const``
        over the table (log or DHS growth as chosen); None when it is not such a map
        (survival: (0, 0); ratio with industry benchmarks, winsorised outcomes: None).
    """

    frame: pd.DataFrame
    window_name: str
    window: ShockWindow
    panel_firms: int
    dropped: dict[str, int] = field(default_factory=dict)
    winsorized: int = 0
    outcome_weights: tuple[float, float] | None = (1.0, 0.0)

    def to_frame(self) -> pd.DataFrame:
        """Firms kept and dropped by reason, with the share of the panel's firms."""
        rows = [("kept", len(self.frame)), *self.dropped.items()]
        frame = pd.DataFrame(rows, columns=["reason", "firms"])
        frame["share"] = frame["firms"] / max(self.panel_firms, 1)
        return frame

    def metrics(self) -> dict[str, float]:
        """``data.dropped.<reason>`` counts and ``data.winsorized``, for tracking."""
        metrics = {f"data.dropped.{reason}": float(n) for reason, n in self.dropped.items()}
        metrics["data.winsorized"] = float(self.winsorized)
        metrics["data.panel_firms"] = float(self.panel_firms)
        return metrics


def _feature_columns(roles: Roles) -> list[str]:
    """Panel columns whose pre-shock values go into the table (and must not be missing)."""
    columns = [
        *roles.controls,
        *roles.modifiers,
        *roles.firm_types,
        *[c for c in (roles.cluster, roles.instrument, roles.industry, roles.va_firm) if c],
        *[p for proxies in roles.mechanisms.values() for p in proxies],
    ]
    return list(dict.fromkeys(columns))


def _require(roles: Roles) -> tuple[str, str, str]:
    if roles.time is None or roles.exports is None:
        raise ValueError(
            "panel mode needs `roles.time` (the year column) and `roles.exports` "
            "(the export value column); set both"
        )
    if not roles.va_components:
        raise ValueError(
            "panel mode builds the VA index from city-year components: list them in "
            "`roles.va_components` (the first is the ICT-service employment share)"
        )
    if roles.cluster is None:
        raise ValueError(
            "panel mode needs `roles.cluster` (the city column) to build the city VA index"
        )
    return roles.time, roles.exports, roles.cluster


def build_analysis_table(
    panel: pd.DataFrame, roles: Roles, measures: MeasuresConfig
) -> AnalysisTable:
    """Build the one-row-per-firm analysis table of one shock window.

    Steps (window years from ``measures.shock``; pre-shock year ``t*`` = last pre year):

    1. levels per firm (:func:`vaer.measures.growth.window_levels`): base = mean exports
       over the pre years with a row, trough and recovery = mean over their years with
       missing rows as 0;
    2. growth ``g`` from base to trough and to recovery (``measures.growth``: 'log' or
       'dhs'); expected growth national (aggregate over the benchmark firms: those with
       a row at ``t*`` and positive base exports) or industry leave-one-out over the same
       firms;
    3. outcome ``measures.outcome``: resistance ``g_trough - e_trough``; recovery
       ``g_recovery - e_recovery``; ratio ``(g_trough - e_trough) / |e_trough|``;
       survival ``1{recovery level > 0}``; composite ``(z_res + z_rec) / 2``; then
       winsorised at ``measures.winsorize`` quantiles if set;
    4. treatment ``roles.treatment``: city VA index at ``t*`` (``measures.va_index`` over
       the cities with a row at ``t*``) plus the firm's ``roles.va_firm`` at ``t*`` if set,
       binarised by ``measures.binarize``;
    5. features: the role columns' values at ``t*``; mediators ``d_<proxy>``.

    Parameters
    ----------
    panel : DataFrame
        Firm-year rows, validated by :func:`vaer.data.panel_validation.validate_panel`.
    roles : Roles
        Column roles; ``roles.outcome`` and ``roles.treatment`` name the built columns.
    measures : MeasuresConfig

    Returns
    -------
    AnalysisTable

    Raises
    ------
    ValueError
        If panel roles are not set, the window's years are not in the panel, or no firm
        is left.
    """
    time, exports, city = _require(roles)
    window = measures.window
    years = set(pd.unique(panel[time]).tolist())
    absent = sorted({*window.pre, *window.trough, *window.recovery} - years)
    if absent:
        raise ValueError(
            f"shock window {measures.window_name!r} needs years {absent} that are not in "
            f"the panel (years {min(years)}-{max(years)}); choose another `measures.shock`"
        )
    unit = roles.unit
    base_year = window.base_year
    levels = window_levels(
        panel,
        unit=unit,
        time=time,
        exports=exports,
        pre=window.pre,
        trough=window.trough,
        recovery=window.recovery,
    )
    panel_firms = len(levels)
    reason = pd.Series("", index=levels.index, dtype=object)

    def mark(mask: pd.Series | np.ndarray, label: str) -> None:
        todo = (reason == "") & np.asarray(mask, dtype=bool)
        reason[todo] = label

    mark(~levels["in_base_year"], "no_row_in_base_year")
    mark(levels["base"].fillna(0.0) <= 0, "zero_base_exports")
    benchmark = reason == ""

    features = _feature_columns(roles)
    at_base = panel.loc[panel[time] == base_year].set_index(unit)
    at_base = at_base.reindex(levels.index)
    for column in features:
        mark(at_base[column].isna(), f"missing_{column}")

    cities = at_base.loc[levels["in_base_year"].to_numpy(), [city, *roles.va_components]]
    cities = cities.groupby(city, sort=True)[list(roles.va_components)].mean().dropna()
    index = city_index(cities, measures.va_index) if len(cities) else pd.Series(dtype=float)
    va = at_base[city].map(index).astype(np.float64)
    if roles.va_firm:
        va = va + at_base[roles.va_firm].astype(np.float64)
    mark(va.isna(), "no_va_index")

    kind = measures.growth
    x0 = levels["base"].fillna(0.0).to_numpy()
    g_trough = growth(x0, levels["trough"].to_numpy(), kind)
    g_recovery = growth(x0, levels["recovery"].to_numpy(), kind)
    bench = benchmark.to_numpy()
    if measures.expected == "national":
        e_trough = np.full(
            panel_firms, national_expected(x0[bench], levels["trough"].to_numpy()[bench], kind)
        )
        e_recovery = np.full(
            panel_firms, national_expected(x0[bench], levels["recovery"].to_numpy()[bench], kind)
        )
    else:
        if roles.industry is None:
            raise ValueError(
                "`measures.expected: industry` needs `roles.industry` (the industry column)"
            )
        industry = at_base[roles.industry].to_numpy()
        e_trough = np.full(panel_firms, np.nan)
        e_recovery = np.full(panel_firms, np.nan)
        e_trough[bench] = industry_expected(
            x0[bench], levels["trough"].to_numpy()[bench], industry[bench], kind
        )
        e_recovery[bench] = industry_expected(
            x0[bench], levels["recovery"].to_numpy()[bench], industry[bench], kind
        )

    outcome_name = measures.outcome
    weights: tuple[float, float] | None = (1.0, 0.0)
    needs_trough = outcome_name in ("resistance", "ratio", "composite")
    needs_recovery = outcome_name in ("recovery", "composite")
    if needs_trough:
        mark(np.isnan(g_trough), "undefined_growth")
        mark(np.isnan(e_trough), "no_benchmark")
    if needs_recovery:
        mark(np.isnan(g_recovery), "undefined_growth")
        mark(np.isnan(e_recovery), "no_benchmark")
    if outcome_name == "ratio":
        mark(np.abs(np.nan_to_num(e_trough)) == 0, "no_benchmark")

    keep = (reason == "").to_numpy()
    if not keep.any():
        so_far = reason.value_counts().to_dict()
        raise ValueError(
            f"no firm is left for shock window {measures.window_name!r} (dropped: {so_far}); "
            "check the window's years and the export column"
        )
    resistance = excess_growth(g_trough, e_trough)
    recovery = excess_growth(g_recovery, e_recovery)
    if outcome_name == "resistance":
        outcome = resistance[keep]
    elif outcome_name == "recovery":
        outcome, weights = recovery[keep], (0.0, 1.0)
    elif outcome_name == "ratio":
        outcome = martin_ratio(g_trough, e_trough)[keep]
        weights = (1.0 / abs(e_trough[keep][0]), 0.0) if measures.expected == "national" else None
    elif outcome_name == "survival":
        outcome, weights = survival(levels["recovery"].to_numpy())[keep], (0.0, 0.0)
    else:
        outcome, sd_res, sd_rec = composite(resistance[keep], recovery[keep])
        weights = (0.5 / sd_res, 0.5 / sd_rec)
    n_clipped = 0
    if measures.winsorize is not None and outcome_name != "survival":
        outcome, n_clipped = winsorize(outcome, *measures.winsorize)
        if n_clipped:
            weights = None

    table = at_base.loc[keep, features].copy()
    for column in features:
        if isinstance(table[column].dtype, pd.CategoricalDtype):
            table[column] = table[column].astype(object)
    table.insert(0, unit, levels.index[keep])
    va_kept = va.to_numpy(dtype=np.float64)[keep]
    table[roles.treatment] = (
        va_kept if measures.binarize == "none" else binarise(va_kept, measures.binarize)[0]
    )
    table[roles.outcome] = outcome
    table["growth_trough"] = g_trough[keep]
    table["growth_recovery"] = g_recovery[keep]
    table["expected_trough"] = e_trough[keep]
    table["expected_recovery"] = e_recovery[keep]
    table["survived"] = survival(levels["recovery"].to_numpy())[keep]
    table["base_exports"] = x0[keep]
    end = max(window.trough)
    at_end = panel.loc[panel[time] == end].set_index(unit).reindex(levels.index[keep])
    for proxies in roles.mechanisms.values():
        for proxy in proxies:
            table[f"d_{proxy}"] = at_end[proxy].to_numpy(dtype=np.float64) - table[proxy].to_numpy(
                dtype=np.float64
            )
    dropped = reason[reason != ""].value_counts()
    order = {label: i for i, label in enumerate(DROP_REASONS)}

    def rank(label: str) -> tuple[int, str]:
        key = "missing_<column>" if label.startswith("missing_") else label
        return order.get(key, len(order)), label

    counts = {str(label): int(dropped[label]) for label in sorted(dropped.index, key=rank)}
    return AnalysisTable(
        frame=table.reset_index(drop=True),
        window_name=measures.window_name,
        window=window,
        panel_firms=panel_firms,
        dropped=counts,
        winsorized=n_clipped,
        outcome_weights=weights,
    )
