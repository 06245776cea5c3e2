"""Any result table -> rows of formatted cells, so new tables render without bespoke code.

Conventions the formatting relies on (the columns every vaer stage writes): ``estimate``
with ``se`` (shown as the estimate with significance stars and the SE in parentheses),
``ci_low``/``ci_high`` (one "95% CI" column), ``p_value`` and ``p_*`` (three decimals),
``share`` (a percentage), ``n`` (an integer count), booleans (yes/no). Text columns come
first, as the row labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.reporting.format import normal_p_value, p_text, percent, sig, stars
from vaer.reporting.words import WORDS, Words

MAX_ROWS = 200
"""Tables longer than this (or with a ``unit`` column) are per-unit data: summarised, not
printed."""

COLUMN_WORDS = "col."
"""Prefix of the catalogue entries naming a column (``col.<column>``,
:mod:`vaer.reporting.words`); other columns are named after themselves."""

_MERGED = {"estimate", "se", "ci_low", "ci_high"}

CALENDAR_COLUMNS = frozenset(
    {
        "year",
        "time",
        "period",
        "base_period",
        "cohort",
        "group",
        "key",
        "event_time",
        "treated_cohort",
        "control_cohort",
    }
)
"""Years, cohorts, event times and group numbers: integers shown as is (2014, not 2,014)."""


def label(column: str, words: Words | None = None) -> str:
    """The reader's name of a column in the report's language (``band_low`` -> ``Band low``,
    ``联合带下限`` in Chinese); a column the catalogue does not name is shown by its name."""
    key = COLUMN_WORDS + column
    if key in WORDS:
        return (words or Words())(key)
    return column.replace("_", " ").capitalize()


def is_per_unit(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` holds per-unit data rather than a results table."""
    return "unit" in frame.columns or len(frame) > MAX_ROWS


def _is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def cell(column: str, value: object, words: Words | None = None) -> str:
    """One value formatted for reading, by its column's convention (booleans as yes/no
    in the report's language)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return (words or Words())("yes" if value else "no")
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    if column == "p_value" or column.startswith("p_"):
        return p_text(number)
    if column == "share" or column.endswith("_share"):
        return percent(number, 1)
    if column in CALENDAR_COLUMNS and math.isfinite(number) and number == int(number):
        return str(int(number))
    if column in {"n", "count", "df", "firms", "rows", "units"} or column.startswith(
        ("n_", "count")
    ):
        return f"{round(number):,}" if math.isfinite(number) else "–"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return sig(number)


@dataclass(frozen=True)
class DisplayTable:
    """A table ready for HTML: header labels, rows of cells, which columns are text."""

    name: str
    headers: list[str]
    rows: list[list[str]]
    text_columns: list[bool]
    n_rows: int
    per_unit: bool
    caption: str | None = None
    """Shown above the table (default: the table's CSV file)."""


def display_table(name: str, frame: pd.DataFrame, words: Words | None = None) -> DisplayTable:
    """Format ``frame`` for reading (see the module docstring for the conventions), the
    headers in the language of ``words`` (default English)."""
    words = words or Words()
    per_unit = is_per_unit(frame)
    if per_unit:
        return DisplayTable(name, [], [], [], len(frame), True)
    if "estimate" in frame.columns and frame["estimate"].isna().all():
        frame = frame.drop(columns=[c for c in ("estimate", "se") if c in frame.columns])
    has_estimate = "estimate" in frame.columns
    has_se = has_estimate and "se" in frame.columns
    has_ci = {"ci_low", "ci_high"} <= set(frame.columns)
    ci_of = "estimate" if has_estimate else ("share" if "share" in frame.columns else None)
    text_cols = [c for c in frame.columns if _is_text(frame[c]) and frame[c].dtype != bool]
    merged = _MERGED | ({"share"} if ci_of == "share" and has_ci else set())
    other = [c for c in frame.columns if c not in text_cols and c not in merged]
    headers = [label(c, words) for c in text_cols]
    if has_estimate:
        headers.append(label("estimate", words))
    if has_se:
        headers.append(label("se", words))
    if ci_of == "share" and has_ci:
        headers.append(label("share", words))
    if has_ci:
        headers.append(label("ci", words))
    headers += [label(c, words) for c in other]
    rows: list[list[str]] = []
    for record in frame.to_dict("records"):
        row = [cell(str(c), record[c], words) for c in text_cols]
        if has_estimate:
            estimate = record["estimate"]
            p_value = record.get("p_value")
            if p_value is None or (isinstance(p_value, float) and math.isnan(p_value)):
                p_value = normal_p_value(estimate, record["se"]) if has_se else float("nan")
            row.append(cell("estimate", estimate) + stars(float(p_value)))
        if has_se:
            row.append(f"({cell('se', record['se'])})")
        if ci_of == "share" and has_ci:
            row.append(cell("share", record["share"]))
        if has_ci:
            ci_column = "share" if ci_of == "share" else "ci"
            low, high = cell(ci_column, record["ci_low"]), cell(ci_column, record["ci_high"])
            row.append(f"[{low}, {high}]")
        row += [cell(str(c), record[c], words) for c in other]
        rows.append(row)
    text_flags = [True] * len(text_cols) + [False] * (len(headers) - len(text_cols))
    return DisplayTable(name, headers, rows, text_flags, len(frame), False)
