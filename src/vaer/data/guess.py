"""Guessing a study's column roles from a data file's columns (for ``vaer init``).

Every guess carries the reason it was made, so the experiment file written from it can
ask the user to confirm each one. The rules, in order:

- **time** (panel only): an integer column whose values are all years (1900-2100), named
  like a year (``year``, ``年份``, ...) or, failing that, the only such column;
- **unit**: a column named like an id (``firm_id``, ``code``, ``stkcd``, ``企业代码``,
  ...) that is unique per row (table) or per (unit, time) pair (panel), else the first
  column that is; one row per unit means a table, several a firm-year panel;
- **cluster**: a column with many firms per value and at least 10 values, preferring
  names like ``city``/``城市``/``province``;
- **firm types**: text columns (or integer codes) with 2 to 10 levels, each level held by
  at least ``min_firms_per_type`` firms;
- **numeric vs categorical**: numeric columns become modifiers; text columns with more
  levels than a firm type, numbers stored as text, empty or id-like columns are left out
  with the reason;
- table mode: **outcome** and **treatment** by name (``resilience``, ``va_index``, ...),
  an **instrument** named like ``pilot``, and ``d_x`` next to ``x`` as the mediator of the
  mechanism proxy ``x``; panel mode: **exports**, **industry**, the city-year **VA
  components** and the firm's **platform** participation by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from vaer.data.column_checks import is_text, numbers_as_text_problems

MAX_TYPE_LEVELS = 10
"""Most levels of a column guessed to be a firm type."""

MIN_CLUSTERS = 10
"""Fewest distinct values of a column guessed to be the cluster."""

ID_NAME = re.compile(r"(^|_)(id|code|firm|stkcd|company|symbol)($|_)|代码|编码|企业id", re.I)
YEAR_NAME = re.compile(r"^(year|yr|fyear|t|time|年份|年度|年)$", re.I)
CLUSTER_NAME = re.compile(r"city|城市|county|district|prefecture|province|省|地区|市", re.I)
OUTCOME_NAME = re.compile(r"resilien|outcome|resist|recover|韧性|^y$", re.I)
TREATMENT_NAME = re.compile(r"(^|_)(va|treat|treatment)(_|$)|virtual|虚拟集聚|^d$", re.I)
INSTRUMENT_NAME = re.compile(r"pilot|instrument|(^|_)iv($|_)|试点", re.I)
EXPORTS_NAME = re.compile(r"export|出口", re.I)
INDUSTRY_NAME = re.compile(r"industry|sector|(^|_)(ind|sic|cic)($|_)|行业", re.I)
VA_NAME = re.compile(r"ict|broadband|e_?commerce|internet|digital|宽带|电商|互联网|数字", re.I)
PLATFORM_NAME = re.compile(r"platform|平台", re.I)
POLICY_YEAR_NAME = re.compile(r"_year$|year_", re.I)


@dataclass(frozen=True)
class Guess:
    """One guessed role value and why."""

    value: str
    reason: str


@dataclass
class RoleGuesses:
    """Every guess for a data file (see the module docstring for the rules).

    Attributes
    ----------
    mode : {'table', 'panel'}
    mode_reason : str
    singles : dict
        Role -> :class:`Guess` for single-column roles (unit, time, cluster, ...).
    firm_types, modifiers : list of Guess
    mechanisms : dict
        Channel -> its proxy column (a :class:`Guess`), table mode.
    mediators : dict
        Channel -> its mediator column, table mode.
    va_components : list of Guess
        Panel mode.
    left_out : list of Guess
        Columns given no role, each with the reason.
    n_rows, n_units : int
    """

    mode: Literal["table", "panel"]
    mode_reason: str
    singles: dict[str, Guess] = field(default_factory=dict)
    firm_types: list[Guess] = field(default_factory=list)
    modifiers: list[Guess] = field(default_factory=list)
    mechanisms: dict[str, Guess] = field(default_factory=dict)
    mediators: dict[str, Guess] = field(default_factory=dict)
    va_components: list[Guess] = field(default_factory=list)
    left_out: list[Guess] = field(default_factory=list)
    n_rows: int = 0
    n_units: int = 0


def _is_year_column(series: pd.Series) -> bool:
    values = series.dropna()
    if values.empty or is_text(values) or pd.api.types.is_bool_dtype(values):
        return False
    numbers = values.astype(float)
    return bool(((numbers % 1 == 0) & (numbers >= 1900) & (numbers <= 2100)).all())


def _first(columns: list[str], pattern: re.Pattern[str]) -> str | None:
    return next((c for c in columns if pattern.search(c)), None)


def _find_time(frame: pd.DataFrame) -> Guess | None:
    years = [str(c) for c in frame.columns if _is_year_column(frame[c])]
    named = [c for c in years if YEAR_NAME.search(c)]
    if named:
        column = named[0]
        reason = "named like a year and holds integer years"
    elif len(years) == 1:
        column = years[0]
        reason = "the only column holding integer years"
    else:
        return None
    values = frame[column].dropna().astype(int)
    return Guess(column, f"{reason} ({values.min()}-{values.max()})")


def _find_unit(frame: pd.DataFrame, time: str | None) -> tuple[Guess, bool] | None:
    """The unit column and whether the data are a panel (several rows per unit)."""
    columns = [str(c) for c in frame.columns if c != time]
    ordered = [c for c in columns if ID_NAME.search(c)] + [
        c for c in columns if not ID_NAME.search(c)
    ]
    for column in ordered:
        series = frame[column]
        if series.isna().any() or pd.api.types.is_float_dtype(series):
            continue
        named = "named like an id" if ID_NAME.search(column) else "not named like an id"
        if series.is_unique:
            return Guess(column, f"{named}, a distinct value in every row"), False
        if time is not None and not frame.duplicated([column, time]).any():
            per = len(frame) / series.nunique()
            return (
                Guess(column, f"{named}, one row per ({column}, {time}), {per:.1f} rows each"),
                True,
            )
    return None


def _firms_per_value(frame: pd.DataFrame, unit: str, column: str) -> pd.Series:
    return frame[[unit, column]].dropna().drop_duplicates(subset=[unit])[column].value_counts()


def guess_roles(frame: pd.DataFrame, *, min_firms_per_type: int = 20) -> RoleGuesses:
    """Guess the roles of ``frame``'s columns (module docstring).

    Parameters
    ----------
    frame : DataFrame
        The data as read (a one-row-per-firm table or a firm-year panel).
    min_firms_per_type : int
        Fewest firms a level of a guessed firm-type column must have.

    Returns
    -------
    RoleGuesses

    Raises
    ------
    ValueError
        If no column can identify the firms (no column is unique per row, nor per
        (column, year) pair).
    """
    time = _find_time(frame)
    found = _find_unit(frame, time.value if time else None)
    if found is None:
        raise ValueError(
            "no column identifies the firms: none is unique per row (a table) or per "
            "(column, year) pair (a panel); add a firm id column"
        )
    unit, panel = found
    guesses = RoleGuesses(
        mode="panel" if panel else "table",
        mode_reason=(
            f"several rows per {unit.value}, one per {time.value}: a firm-year panel"
            if panel and time
            else f"one row per {unit.value}: a table with outcome and treatment built"
        ),
        n_rows=len(frame),
        n_units=int(frame[unit.value].nunique()),
    )
    guesses.singles["unit"] = unit
    if panel and time is not None:
        guesses.singles["time"] = time
    taken = {unit.value, *(g.value for g in guesses.singles.values())}
    columns = [str(c) for c in frame.columns]

    def free(column: str | None) -> str | None:
        return column if column is not None and column not in taken else None

    def take(role: str, column: str, reason: str) -> None:
        guesses.singles[role] = Guess(column, reason)
        taken.add(column)

    # cluster: many firms per value
    candidates = []
    for column in columns:
        if column in taken:
            continue
        counts = _firms_per_value(frame, unit.value, column)
        if len(counts) >= MIN_CLUSTERS and counts.mean() >= 5 and not frame[column].isna().any():
            named = bool(CLUSTER_NAME.search(column))
            candidates.append((not named, -len(counts), column, counts))
    if candidates:
        _, _, column, counts = sorted(candidates)[0]
        take(
            "cluster",
            column,
            f"{len(counts)} values with {counts.mean():.0f} firms each on average"
            + (" (named like a place)" if CLUSTER_NAME.search(column) else ""),
        )

    if panel:
        exports = free(_first(columns, EXPORTS_NAME))
        if exports is not None and not is_text(frame[exports]):
            take("exports", exports, "named like exports")
        industry = free(_first(columns, INDUSTRY_NAME))
        if industry is not None:
            take("industry", industry, "named like an industry code")
        platform = free(_first(columns, PLATFORM_NAME))
        if platform is not None and not is_text(frame[platform]):
            take("va_firm", platform, "named like platform participation")
        components = [
            c for c in columns if c not in taken and VA_NAME.search(c) and not is_text(frame[c])
        ]
        components.sort(key=lambda c: 0 if re.search("ict", c, re.I) else 1)
        for column in components:
            guesses.va_components.append(Guess(column, "named like a digital-economy measure"))
            taken.add(column)
    else:
        for role, pattern in (("outcome", OUTCOME_NAME), ("treatment", TREATMENT_NAME)):
            hits = [c for c in columns if c not in taken and pattern.search(c)]
            numeric = [c for c in hits if not is_text(frame[c])]
            if numeric:
                take(role, numeric[0], f"named like the {role}")
        for role in ("outcome", "treatment"):
            if role not in guesses.singles:
                rest = [c for c in columns if c not in taken and not is_text(frame[c])]
                if rest:
                    take(role, rest[0], f"no column is named like the {role}: the first numeric")
    instrument = free(_first(columns, INSTRUMENT_NAME))
    if (
        instrument is not None
        and not is_text(frame[instrument])
        and frame[instrument].nunique() <= 2
    ):
        take("instrument", instrument, "named like a pilot/instrument, two values")

    # mechanism proxies and their changes (table): x and d_x
    if not panel:
        for column in columns:
            change = f"d_{column}"
            if column not in taken and change in frame.columns and change not in taken:
                guesses.mechanisms[column] = Guess(column, f"'{change}' looks like its change")
                guesses.mediators[column] = Guess(change, f"the change of '{column}'")
                taken.add(change)

    # what is left: firm types, numeric modifiers, or left out
    for column in columns:
        if column in taken:
            continue
        series = frame[column]
        levels = int(series.nunique(dropna=True))
        if series.isna().all():
            guesses.left_out.append(Guess(column, "empty"))
        elif levels <= 1:
            guesses.left_out.append(Guess(column, "a single value"))
        elif is_text(series) and numbers_as_text_problems(frame, "modifiers", column):
            guesses.left_out.append(
                Guess(column, "numbers stored as text: clean it, then add it to modifiers")
            )
        elif panel and POLICY_YEAR_NAME.search(column) and not is_text(series):
            guesses.left_out.append(
                Guess(column, "looks like a policy's adoption year (`roles.policy`, did stage)")
            )
        elif levels <= MAX_TYPE_LEVELS and (is_text(series) or levels <= 5):
            smallest = int(_firms_per_value(frame, unit.value, column).min())
            if smallest >= min_firms_per_type:
                guesses.firm_types.append(
                    Guess(column, f"categorical, {levels} levels, >= {smallest} firms each")
                )
            else:
                guesses.modifiers.append(
                    Guess(
                        column,
                        f"categorical, {levels} levels; not a firm type: a level has only "
                        f"{smallest} firms",
                    )
                )
        elif is_text(series):
            guesses.left_out.append(
                Guess(column, f"text with {levels} levels: too many for a category")
            )
        else:
            guesses.modifiers.append(Guess(column, "numeric"))
    return guesses
