"""A long unit-period panel checked and laid out as unit x period arrays.

Staggered difference-in-differences needs, per unit, its outcome in every period it is
observed, its cohort (first treated period), its cluster and its pre-period covariates.
:func:`build_panel` validates the long input once and returns those arrays; missing
unit-periods stay ``NaN`` (an unbalanced panel is kept as it is; each (g, t) cell later
decides which units it can use and counts the others). :class:`PanelColumns` names the
panel's five roles for every estimator of :mod:`vaer.did`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ColumnSpec = str | Sequence[Any] | np.ndarray | pd.Series
"""A column name of the panel's DataFrame, or one value per row."""


@dataclass(frozen=True, eq=False)
class PanelColumns:
    """The roles of a long unit-period panel: column names of its DataFrame, or arrays of
    one value per row.

    Attributes
    ----------
    unit : str or array-like
        Unit id (e.g. the firm).
    period : str or array-like
        Integer period (e.g. the year).
    cohort : str or array-like
        First treated period; 0, NaN or +inf = never treated; constant within a unit.
    cluster : str or array-like
        Cluster id for inference (e.g. the city); constant within a unit.
    outcome : str or array-like
        The outcome (finite).

    Notes
    -----
    Each role is checked against the data by :func:`build_panel` (a name
    must be a column, an array must have one value per row).
    """

    unit: ColumnSpec
    period: ColumnSpec
    cohort: ColumnSpec
    cluster: ColumnSpec
    outcome: ColumnSpec


@dataclass(frozen=True)
class Panel:
    """A validated panel laid out as unit x period arrays.

    Attributes
    ----------
    unit_ids : pandas.Index
        The ``n_units`` unit ids, sorted; row ``i`` of every array is unit ``unit_ids[i]``.
    periods : numpy.ndarray
        The ``n_periods`` distinct periods, sorted ascending (int64).
    outcome : numpy.ndarray
        ``(n_units, n_periods)`` outcomes; ``NaN`` where a unit is not observed.
    cohort : numpy.ndarray
        ``(n_units,)`` first treated period (int64); 0 for never treated.
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes ``0..n_clusters-1`` (int64).
    cluster_ids : pandas.Index
        The cluster labels behind the codes.
    covariates : numpy.ndarray
        ``(n_units, 1 + k)`` design matrix of the pre-period covariates, first column
        the intercept.
    covariate_names : tuple of str
        Names of the ``k`` covariates (without the intercept).
    n_rows : int
        Number of unit-period rows of the input.
    """

    unit_ids: pd.Index
    periods: np.ndarray
    outcome: np.ndarray
    cohort: np.ndarray
    cluster: np.ndarray
    cluster_ids: pd.Index
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    n_rows: int

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.unit_ids)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    @property
    def observed(self) -> np.ndarray:
        """``(n_units, n_periods)`` boolean: the unit is observed in the period."""
        return ~np.isnan(self.outcome)


def _column(data: pd.DataFrame | None, spec: ColumnSpec, role: str, n_rows: int | None) -> Any:
    """The values of one role: a column of ``data`` named ``spec``, or ``spec`` itself."""
    if isinstance(spec, str):
        if data is None:
            raise ValueError(f"`{role}` names a column ('{spec}') but no `data` was given")
        if spec not in data.columns:
            raise ValueError(
                f"`{role}` column '{spec}' is not in the data; columns are {list(data.columns)}"
            )
        return data[spec].to_numpy()
    values = np.asarray(spec)
    if values.ndim != 1:
        raise ValueError(f"`{role}` must be a column name or a 1-d array; got shape {values.shape}")
    if n_rows is not None and len(values) != n_rows:
        raise ValueError(f"`{role}` has {len(values)} values; the panel has {n_rows} rows")
    return values


def _numeric(values: Any, role: str) -> np.ndarray:
    """``values`` as float64, or a ValueError naming the role."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{role}` must be numeric; {error}") from None


def _per_unit_constant(codes: np.ndarray, values: np.ndarray, role: str) -> np.ndarray:
    """The value of ``values`` for each unit, checking it does not vary within a unit."""
    _, first = np.unique(codes, return_index=True)  # every unit has a row
    per_unit = values[first]
    varying = values != per_unit[codes]
    if np.any(varying):
        row = int(np.flatnonzero(varying)[0])
        raise ValueError(
            f"`{role}` varies within a unit (row {row}: {values[row]!r} vs "
            f"{per_unit[codes[row]]!r}); it must be constant for each unit"
        )
    return per_unit


def build_panel(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    covariates: Sequence[str] | pd.DataFrame | None = None,
) -> Panel:
    """Check a long unit-period panel and lay it out as unit x period arrays.

    Parameters
    ----------
    data : pandas.DataFrame or None
        The long panel, one row per unit-period. May be ``None`` when every role below
        is given as an array.
    columns : PanelColumns
        Column names of ``data`` (or arrays of one value per row) for the unit id, the
        period (integer-valued, e.g. a year), the cohort (first treated period; 0, NaN
        or +inf = never treated), the cluster id (constant within a unit) and the
        outcome (finite).
    covariates : list of str, pandas.DataFrame or None
        Pre-period covariates, time-invariant: column names of ``data``, whose value at
        each unit's first observed period is used, or a DataFrame indexed by unit id
        with one row per unit (at least every unit of the panel).

    Returns
    -------
    Panel
        The validated arrays.

    Raises
    ------
    ValueError
        On a missing column, an empty panel, non-integer periods, a non-finite outcome or
        covariate, a negative or non-integer cohort, a cohort or cluster varying within a
        unit, a missing cluster, a duplicate unit-period, or covariates missing units.
    """
    if data is not None and not isinstance(data, pd.DataFrame):
        raise ValueError(f"`data` must be a pandas DataFrame or None; got {type(data).__name__}")
    n_rows = None if data is None else len(data)
    unit_v = _column(data, columns.unit, "unit", n_rows)
    n_rows = len(unit_v)
    if n_rows == 0:
        raise ValueError("the panel has no rows")
    period_v = _numeric(_column(data, columns.period, "period", n_rows), "period")
    cohort_v = _numeric(_column(data, columns.cohort, "cohort", n_rows), "cohort")
    cluster_v = _column(data, columns.cluster, "cluster", n_rows)
    outcome_v = _numeric(_column(data, columns.outcome, "outcome", n_rows), "outcome")

    if not np.all(np.isfinite(period_v)) or np.any(period_v != np.round(period_v)):
        raise ValueError("`period` must hold integer values (e.g. years) with no missing values")
    if not np.all(np.isfinite(outcome_v)):
        bad = int(np.sum(~np.isfinite(outcome_v)))
        raise ValueError(
            f"`outcome` has {bad} missing or infinite values; drop those rows first "
            f"(unit-periods that are absent are handled as an unbalanced panel)"
        )
    cohort_v = np.where(np.isnan(cohort_v) | np.isposinf(cohort_v), 0.0, cohort_v)
    if np.any(cohort_v < 0) or np.any(cohort_v != np.round(cohort_v)):
        raise ValueError(
            "`cohort` must be the first treated period (an integer) or 0/NaN for never treated; "
            "found negative or non-integer values"
        )
    if pd.isna(cluster_v).any():
        raise ValueError("`cluster` has missing values; every unit needs a cluster")
    if pd.isna(unit_v).any():
        raise ValueError("`unit` has missing values")

    unit_codes, uniques = pd.factorize(unit_v, sort=True)
    unit_ids = pd.Index(uniques)
    periods = np.unique(period_v).astype(np.int64)
    period_codes = np.searchsorted(periods, period_v.astype(np.int64))
    n_units, n_periods = len(unit_ids), len(periods)

    cells = unit_codes.astype(np.int64) * n_periods + period_codes
    counts = np.bincount(cells, minlength=n_units * n_periods)
    if counts.max() > 1:
        row = int(np.flatnonzero(counts[cells] > 1)[0])
        raise ValueError(
            f"duplicate unit-period rows (e.g. unit {unit_v[row]!r}, period {int(period_v[row])}); "
            f"the panel needs one row per unit and period"
        )

    outcome_w = np.full((n_units, n_periods), np.nan)
    outcome_w[unit_codes, period_codes] = outcome_v
    cohort_u = _per_unit_constant(unit_codes, cohort_v, "cohort").astype(np.int64)
    cluster_codes_rows, cluster_ids = pd.factorize(cluster_v, sort=True)
    cluster_u = _per_unit_constant(unit_codes, cluster_codes_rows.astype(np.int64), "cluster")

    names: tuple[str, ...] = ()
    if covariates is None:
        x = np.ones((n_units, 1))
    elif isinstance(covariates, pd.DataFrame):
        names = tuple(str(c) for c in covariates.columns)
        missing = unit_ids.difference(covariates.index)
        if len(missing) > 0:
            raise ValueError(
                f"`covariates` has no row for {len(missing)} units (e.g. {missing[0]!r}); "
                f"index it by unit id with one row per unit"
            )
        if not covariates.index.is_unique:
            raise ValueError("`covariates` has duplicate unit ids in its index")
        values = _numeric(covariates.loc[unit_ids].to_numpy(), "covariates")
        x = np.column_stack([np.ones(n_units), values])
    else:
        names = tuple(covariates)
        if data is None:
            raise ValueError("`covariates` as column names needs `data`")
        order = np.lexsort((period_v, unit_codes))
        first_rows = order[np.r_[True, unit_codes[order][1:] != unit_codes[order][:-1]]]
        firsts = []
        for name in names:
            col = _column(data, name, "covariates", n_rows)
            firsts.append(_numeric(col, f"covariates ('{name}')")[first_rows])
        x = np.column_stack([np.ones(n_units), *firsts]) if firsts else np.ones((n_units, 1))
    if not np.all(np.isfinite(x)):
        raise ValueError("`covariates` has missing or infinite values (at the units' first period)")

    return Panel(
        unit_ids=unit_ids,
        periods=periods,
        outcome=outcome_w,
        cohort=cohort_u,
        cluster=cluster_u,
        cluster_ids=pd.Index(cluster_ids),
        covariates=x,
        covariate_names=names,
        n_rows=n_rows,
    )
