"""Checks of a firm-year panel against its column roles, before any measure is built.

The checks are a pandera schema (run lazily, so every failure is collected) plus the
firm-type level counts; every problem is reported at once in one
:class:`~vaer.data.validation.DataValidationError`, each naming the role and column, the
first offending rows and the fix.

Checked: the panel roles are set (``roles.time``, ``roles.exports``,
``roles.va_components``); every role column exists (with the closest name as a hint);
unit and year present in every row; one row per firm-year; years are integers; exports
are numeric, finite and non-negative; numeric roles (instrument, VA components,
platform participation, mechanism proxies) are numeric and finite; firm-type columns are
categorical with at least ``min_firms_per_type`` firms per level.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from vaer.config.models import Roles
from vaer.data.validation import (
    DEFAULT_MAX_LEVELS,
    DataValidationError,
    content_problems,
    stata_missing_note,
    type_size_problems,
)

MAX_TYPE_LEVELS = 20
"""A numeric firm-type column with more distinct values than this looks continuous."""


def _rows(labels: Sequence[object], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in labels[:limit])
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return f"rows {shown}{more}"


def panel_role_columns(roles: Roles) -> dict[str, list[str]]:
    """Columns the panel must hold, keyed by role (outcome and treatment are built)."""
    named: dict[str, list[str]] = {"unit": [roles.unit]}
    for role in ("time", "exports", "industry", "cluster", "instrument", "va_firm", "policy"):
        column = getattr(roles, role)
        if column:
            named[role] = [column]
    for role in ("va_components", "controls", "modifiers", "firm_types"):
        columns = list(getattr(roles, role))
        if columns:
            named[role] = columns
    for channel, proxies in roles.mechanisms.items():
        named[f"mechanisms.{channel}"] = list(proxies)
    return named


_STRICT = ("unit", "time", "exports", "instrument", "va_firm", "va_components", "mechanisms.")


def _priority(role: str) -> int:
    """Which role's checks a column shared by several roles gets (the strictest)."""
    for rank, prefix in enumerate(_STRICT):
        if role.startswith(prefix):
            return rank
    return len(_STRICT) if role else len(_STRICT) + 1


def _numeric(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64)
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(np.float64)
    return pd.to_numeric(series, errors="coerce")


def _is_numeric(series: pd.Series) -> pd.Series:
    return series.isna() | _numeric(series).notna()


def _is_finite(series: pd.Series) -> pd.Series:
    return ~np.isinf(_numeric(series).fillna(0.0))


def _is_non_negative(series: pd.Series) -> pd.Series:
    return ~(_numeric(series) < 0)


def _is_year(series: pd.Series) -> pd.Series:
    values = _numeric(series)
    return values.isna() | (values == np.round(values))


FIXES: dict[str, Callable[[str, str, int, str, object], str]] = {
    "numeric": lambda role, col, k, rows, v: (
        f"roles.{role}: column '{col}' must be numeric but holds text in {k} rows "
        f"({rows}, e.g. {v!r}); clean or recode it"
    ),
    "finite": lambda role, col, k, rows, v: (
        f"roles.{role}: column '{col}' has {k} infinite values ({rows}); drop these rows "
        "or cap the values"
    ),
    "non_negative": lambda role, col, k, rows, v: (
        f"roles.{role}: column '{col}' has {k} negative export values ({rows}, e.g. {v!r}); "
        "exports are values >= 0: fix the sign or drop the rows"
    ),
    "integer_year": lambda role, col, k, rows, v: (
        f"roles.{role}: column '{col}' must hold integer years but has {k} other values "
        f"({rows}, e.g. {v!r}); use calendar years such as 2015"
    ),
    "not_nullable": lambda role, col, k, rows, v: (
        f"roles.{role}: column '{col}' has {k} missing values ({rows}); "
        + (
            "use 0 for a year without exports, or drop the rows"
            if role == "exports"
            else "drop these rows"
        )
    ),
}


def _schema(roles: Roles, roles_of: dict[str, str]) -> pa.DataFrameSchema:
    numeric = pa.Check(_is_numeric, name="numeric")
    finite = pa.Check(_is_finite, name="finite")
    columns: dict[str, pa.Column] = {}
    for column, role in roles_of.items():
        if role in ("unit",):
            columns[column] = pa.Column(nullable=False)
        elif role == "time":
            columns[column] = pa.Column(
                nullable=False, checks=[numeric, pa.Check(_is_year, name="integer_year")]
            )
        elif role == "exports":
            columns[column] = pa.Column(
                nullable=False,
                checks=[numeric, finite, pa.Check(_is_non_negative, name="non_negative")],
            )
        elif role in ("instrument", "va_components", "va_firm", "policy") or role.startswith(
            "mechanisms."
        ):
            columns[column] = pa.Column(nullable=True, checks=[numeric, finite])
        else:
            columns[column] = pa.Column(nullable=True)
    keys = [roles.unit, roles.time]
    unique = keys if all(k in roles_of and roles_of[k] in ("unit", "time") for k in keys) else None
    return pa.DataFrameSchema(columns, unique=unique, report_duplicates="all")


def _schema_problems(frame: pd.DataFrame, roles: Roles, roles_of: dict[str, str]) -> list[str]:
    try:
        _schema(roles, roles_of).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    problems: list[str] = []
    duplicates = cases[cases["check"].astype(str).str.contains("uniqueness|unique")]
    if len(duplicates):
        rows = sorted({int(i) for i in duplicates["index"].dropna()})
        first = frame.loc[rows[0]]
        problems.append(
            f"roles.unit/roles.time: columns '{roles.unit}' and '{roles.time}': {len(rows)} "
            "rows share a (firm, year) pair with another "
            f"row ({_rows(rows)}, e.g. firm {first[roles.unit]} in {first[str(roles.time)]}); "
            "panel mode needs one row per firm-year: aggregate the duplicates (sum the "
            "exports) or drop them"
        )
    rest = cases.drop(duplicates.index)
    for (column, check), group in rest.groupby(["column", "check"], sort=False):
        name = str(check)
        rows = [i for i in group["index"].tolist() if i is not None and i == i]
        first = group["failure_case"].iloc[0]
        first = first.item() if isinstance(first, np.generic) else first
        fix = FIXES.get(name)
        role = roles_of.get(str(column), "?")
        if fix is None:
            problems.append(f"roles.{role}: column '{column}' fails check {name} ({_rows(rows)})")
        else:
            note = stata_missing_note(frame, str(column)) if name == "not_nullable" else ""
            problems.append(fix(role, str(column), len(rows), _rows(rows), first) + note)
    return problems


def _type_problems(frame: pd.DataFrame, roles: Roles, min_firms_per_type: int) -> list[str]:
    problems = []
    for column in roles.firm_types:
        if column not in frame.columns:
            continue
        series = frame[column]
        if pd.api.types.is_float_dtype(series) and (
            series.nunique() > MAX_TYPE_LEVELS or not _is_year(series).all()
        ):
            problems.append(
                f"roles.firm_types: column '{column}' looks continuous ({series.nunique()} "
                "distinct numbers); firm types must be categories: bin it (e.g. size "
                "terciles) or move it to `roles.modifiers`"
            )
            continue
        problems += type_size_problems(frame, roles.unit, column, min_firms_per_type)
    return problems


def validate_panel(
    frame: pd.DataFrame,
    roles: Roles,
    *,
    min_firms_per_type: int = 20,
    max_levels: int = DEFAULT_MAX_LEVELS,
    source: str | None = None,
) -> None:
    """Check a firm-year panel against its roles (module docstring), all at once.

    Parameters
    ----------
    frame : pandas.DataFrame
        Firm-year rows.
    roles : Roles
        The study's column roles; ``outcome`` and ``treatment`` are not panel columns
        (the measures build them).
    min_firms_per_type : int
        Least number of distinct firms each level of each firm-type column must have.
    max_levels : int
        Most levels a text column among the controls, modifiers and firm types may have
        (``data.max_levels``).
    source : str, optional
        Where the panel came from, for the message.

    Raises
    ------
    DataValidationError
        Listing every problem found.
    """
    problems: list[str] = []
    if roles.time is None:
        problems.append("roles.time: panel mode needs the year column; set `roles.time`")
    if roles.exports is None:
        problems.append(
            "roles.exports: panel mode needs the export value column; set `roles.exports`"
        )
    if not roles.va_components:
        problems.append(
            "roles.va_components: panel mode builds the VA index from city-year components; "
            "list them (the first is the ICT-service employment share)"
        )
    if roles.cluster is None:
        problems.append(
            "roles.cluster: panel mode needs the city column (the VA index is built per "
            "city); set `roles.cluster`"
        )
    available = [str(c) for c in frame.columns]
    roles_of: dict[str, str] = {}
    reported: set[str] = set()
    for role, columns in panel_role_columns(roles).items():
        for column in columns:
            if column not in frame.columns:
                if column in reported:
                    continue
                reported.add(column)
                close = difflib.get_close_matches(column, available, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "check the spelling"
                problems.append(
                    f"roles.{role}: column '{column}' is not in the data; {hint} "
                    f"(columns: {', '.join(available[:12])}"
                    f"{' ...' if len(available) > 12 else ''})"
                )
            elif _priority(role) < _priority(roles_of.get(column, "")):
                roles_of[column] = role
    rows = frame.reset_index(drop=True)
    problems += _schema_problems(rows, roles, roles_of)
    if roles.unit in frame.columns:
        # the schema reports the non-nullable roles and text in the numeric ones
        present = {
            role: [c for c in columns if c in frame.columns]
            for role, columns in panel_role_columns(roles).items()
            if role not in ("unit", "time", "exports")
        }
        numeric = {c for c, role in roles_of.items() if _priority(role) < len(_STRICT)}
        problems += content_problems(rows, roles, present, max_levels, checked_numeric=numeric)
        problems += _type_problems(rows, roles, min_firms_per_type)
    if problems:
        raise DataValidationError(problems, source)
