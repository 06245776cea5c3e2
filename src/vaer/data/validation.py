"""Checks of an analysis table against its declared column roles.

All problems are collected in one pass and raised together, each naming the column,
the problem, a few offending rows and the fix, before any estimator runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vaer.config.models import Roles
from vaer.data.column_checks import (
    cluster_problems,
    empty_column_problems,
    level_count_problems,
    numbers_as_text_problems,
    treatment_variation_problems,
)

DEFAULT_MAX_LEVELS = 50
"""Default of ``data.max_levels``."""


class DataValidationError(ValueError):
    """The data do not fit the declared roles; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"data problems{where}:\n{body}")


def _rows(index: pd.Index, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in index[:limit])
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return f"rows {shown}{more}"


def role_columns(roles: Roles) -> dict[str, list[str]]:
    """Every column a study names, keyed by its role (``mechanisms.<channel>`` for proxies)."""
    named: dict[str, list[str]] = {
        "unit": [roles.unit],
        "outcome": [roles.outcome],
        "treatment": [roles.treatment],
        "controls": list(roles.controls),
        "modifiers": list(roles.modifiers),
        "firm_types": list(roles.firm_types),
    }
    if roles.cluster:
        named["cluster"] = [roles.cluster]
    if roles.instrument:
        named["instrument"] = [roles.instrument]
    for channel, proxies in roles.mechanisms.items():
        named[f"mechanisms.{channel}"] = list(proxies)
    for channel, mediators in roles.mediators.items():
        named[f"mediators.{channel}"] = list(mediators)
    return named


def missing_column_problems(frame: pd.DataFrame, roles: Roles) -> list[str]:
    """One message per role column absent from ``frame``, with the closest name if any."""
    problems = []
    available = [str(c) for c in frame.columns]
    for role, columns in role_columns(roles).items():
        for column in columns:
            if column not in frame.columns:
                close = difflib.get_close_matches(column, available, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "check the spelling"
                problems.append(
                    f"roles.{role}: column '{column}' is not in the data; {hint} "
                    f"(columns: {', '.join(available[:12])}{' ...' if len(available) > 12 else ''})"
                )
    return problems


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def type_size_problems(
    frame: pd.DataFrame, unit: str, column: str, min_firms_per_type: int
) -> list[str]:
    """The message for the levels of firm-type ``column`` held by fewer than
    ``min_firms_per_type`` distinct units of ``frame`` (a table or a panel), if any."""
    firms = frame[[unit, column]].dropna().drop_duplicates()
    counts = firms[column].astype(str).value_counts()
    small = counts[counts < min_firms_per_type]
    if not len(small):
        return []
    listed = ", ".join(f"{level!r} ({count})" for level, count in small.items())
    return [
        f"roles.firm_types: column '{column}' has levels with fewer than "
        f"{min_firms_per_type} firms: {listed}; merge them into a larger level or "
        "lower `data.min_firms_per_type`"
    ]


def stata_missing_note(frame: pd.DataFrame, column: str) -> str:
    """How many of a column's missing values were Stata extended missing values (``.a`` to
    ``.z``, recorded by :func:`vaer.data.readers.read_frame` in ``frame.attrs``), if any."""
    codes = frame.attrs.get("stata_missing", {}).get(column)
    if not codes:
        return ""
    listed = ", ".join(f"{code} ({count})" for code, count in sorted(codes.items()))
    return (
        f" (Stata extended missing values among them: {listed}; such codes usually mean "
        "'not applicable' or 'refused': recode them to a value if they carry one)"
    )


def content_problems(
    frame: pd.DataFrame,
    roles: Roles,
    named: dict[str, list[str]],
    max_levels: int,
    checked_numeric: set[str] | None = None,
) -> list[str]:
    """What the role columns hold (:mod:`vaer.data.column_checks`), for tables and panels.

    Parameters
    ----------
    frame : DataFrame
        The table or the panel, holding every column of ``named``.
    roles : Roles
    named : dict
        Role -> its columns (as :func:`role_columns`).
    max_levels : int
        ``data.max_levels``.
    checked_numeric : set of str, optional
        Columns whose type another check already requires to be numeric (the panel
        schema's): only checked for being empty here.
    """
    problems: list[str] = []
    firm_types = set(roles.firm_types)
    reported: set[str] = set()  # one message per column, under its first role
    for role, columns in named.items():
        for column in columns:
            if column in reported:
                continue
            before = len(problems)
            empty = empty_column_problems(frame, role, column)
            problems += empty
            if empty:
                reported.add(column)
                continue
            if column in (checked_numeric or set()):
                continue
            numeric_role = role in ("controls", "modifiers") or role.startswith("mechanisms.")
            if numeric_role and column not in firm_types:
                found = numbers_as_text_problems(frame, role, column)
                problems += found
                if found:
                    reported.add(column)
                    continue
            if role in ("controls", "modifiers", "firm_types") and not (
                role != "firm_types" and column in firm_types
            ):
                problems += level_count_problems(frame, role, column, max_levels)
            if len(problems) > before:
                reported.add(column)
    if roles.cluster and roles.cluster in frame.columns:
        problems += cluster_problems(frame, roles.unit, roles.cluster)
    return problems


def validate_table(
    frame: pd.DataFrame,
    roles: Roles,
    *,
    min_firms_per_type: int = 20,
    max_levels: int = DEFAULT_MAX_LEVELS,
    source: str | None = None,
) -> None:
    """Check a one-row-per-unit table against its roles.

    Parameters
    ----------
    frame : pandas.DataFrame
        The analysis table.
    roles : Roles
        The study's column roles.
    min_firms_per_type : int
        Least number of units each level of each firm-type column must have.
    max_levels : int
        Most levels a text column among the controls, modifiers and firm types may have
        (``data.max_levels``).
    source : str, optional
        Where the table came from, for the message.

    Raises
    ------
    DataValidationError
        Listing every problem: missing columns, duplicate units, text in a numeric role,
        numbers stored as text, empty columns, NaN (except in mediators) or infinite
        values, a treatment that (nearly) never varies, text columns with too many levels,
        firm types with one level or levels with too few firms, clusters of single firms.
    """
    problems = missing_column_problems(frame, roles)
    if problems:
        raise DataValidationError(problems, source)

    duplicated = frame[roles.unit].duplicated(keep=False)
    if duplicated.any():
        ids = frame.loc[duplicated, roles.unit].astype(str).unique()
        problems.append(
            f"roles.unit: column '{roles.unit}' has {int(duplicated.sum())} rows sharing "
            f"{len(ids)} ids (e.g. {', '.join(ids[:3])}); table mode needs one row per unit: "
            "aggregate or drop the duplicates"
        )

    numeric_roles = {"outcome": roles.outcome, "treatment": roles.treatment}
    if roles.instrument:
        numeric_roles["instrument"] = roles.instrument
    for role, column in numeric_roles.items():
        series = frame[column]
        if not _is_numeric(series):
            coerced = pd.to_numeric(series, errors="coerce")
            bad = series.index[coerced.isna() & series.notna()]
            problems.append(
                f"roles.{role}: column '{column}' must be numeric but holds text "
                f"({_rows(bad)}, e.g. {series.loc[bad[0]]!r}); clean or recode it"
            )

    named = role_columns(roles)
    problems += content_problems(frame, roles, named, max_levels)
    for role, columns in named.items():
        for column in columns:
            series = frame[column]
            missing = series.index[series.isna()]
            # a mediator may be missing (e.g. a firm that exits during the trough has no
            # change of its proxy): its mechanism test uses the firms where it is observed;
            # an empty column has its own message
            if len(missing) and len(missing) < len(series) and not role.startswith("mediators."):
                problems.append(
                    f"roles.{role}: column '{column}' has {len(missing)} missing values "
                    f"({_rows(missing)}){stata_missing_note(frame, column)}; drop or "
                    "impute these rows"
                )
            if _is_numeric(series):
                infinite = series.index[np.isinf(series.to_numpy(dtype=float))]
                if len(infinite):
                    problems.append(
                        f"roles.{role}: column '{column}' has {len(infinite)} infinite values "
                        f"({_rows(infinite)}); drop these rows or cap the values"
                    )

    if _is_numeric(frame[roles.treatment]):
        problems += treatment_variation_problems(frame, roles.treatment)

    for column in roles.firm_types:
        if frame[column].nunique(dropna=True) <= 1:
            continue  # one level: content_problems said so
        problems += type_size_problems(frame, roles.unit, column, min_firms_per_type)
    if problems:
        raise DataValidationError(problems, source)
