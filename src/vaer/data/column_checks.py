"""Checks of what a role column holds, shared by tables and firm-year panels.

Each function returns messages (an empty list when the column is fine), each naming the
role and column, what is wrong, and the fix; :func:`vaer.data.validation.validate_table`
and :func:`vaer.data.panel_validation.validate_panel` collect them with their own checks.

- numbers stored as text among the controls and modifiers (``"12y"``, ``"1,234"``),
  which would otherwise be one-hot encoded as a category with a level per value;
- text columns with too many levels (``data.max_levels``): one-hot encoding would make a
  column per level, a firm-type column would make a GATE per level;
- a firm-type column with a single level (its GATE is the ATE);
- a role column with no observed value at all;
- a cluster column that puts most firms in a cluster of their own, or all in one;
- a treatment that hardly varies: one value in more than 99% of the rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
"""A plain number as text."""

DIRTY_NUMBER = re.compile(
    r"^\s*[-+]?[¥$€£]?\s*(\d{1,3}([,，]\d{3})+|\d+)(\.\d+)?\s*([A-Za-z%‰]+|[\u4e00-\u9fff]+)?\s*$"
)
"""A number with thousands separators, a currency sign or a unit (``1,234``, ``12y``,
``30%``, ``5万``): numbers a spreadsheet stored as text."""

MIN_TREATMENT_VARIATION = 0.01
"""Least share of rows whose treatment differs from its most common value."""

MAX_SINGLETON_CLUSTER_SHARE = 0.5
"""Largest share of clusters that may hold a single firm."""


def is_text(series: pd.Series) -> bool:
    """Whether a column holds text (or categories) rather than numbers or booleans."""
    return not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _plain(value: object) -> str:
    """A value as the user wrote it (numbers without numpy's type name)."""
    return str(value.item()) if hasattr(value, "item") else repr(value)


def _examples(values: Iterable[object], limit: int = 3) -> str:
    return ", ".join(repr(v) for v in list(values)[:limit])


def numbers_as_text_problems(frame: pd.DataFrame, role: str, column: str) -> list[str]:
    """A text column of a numeric-looking role most of whose values are numbers.

    Half or more of the non-missing values must look like numbers, and either some carry
    separators or units (``"1,234"``, ``"12y"``) or the plain numbers have more distinct
    values than a category would (more than 20).
    """
    series = frame[column]
    if not is_text(series):
        return []
    values = series.dropna().astype(str)
    if values.empty:
        return []
    plain = values.str.match(NUMBER)
    dirty = ~plain & values.str.match(DIRTY_NUMBER)
    numeric = plain | dirty
    if numeric.mean() < 0.5 or not (dirty.any() or values[plain].nunique() > 20):
        return []
    start = (
        f"roles.{role}: column '{column}' holds numbers stored as text "
        f"({int(numeric.sum())} of {len(values)} values are numbers"
    )
    encoded = f"it would be one-hot encoded as a category with {values.nunique()} levels"
    if dirty.any():
        odd = values[dirty]
        units = sorted({u for u in odd.str.replace(r"[\d\s.,，+-]", "", regex=True).unique() if u})
        marks = ["thousands separators"] if odd.str.contains(r"\d[,，]\d").any() else []
        marks += [f"units/signs {', '.join(repr(u) for u in units[:4])}"] if units else []
        return [
            f"{start}, but written with {' and '.join(marks)}, e.g. {_examples(odd.unique())} "
            f"in rows {', '.join(map(str, odd.index[:3]))}), so {encoded}; clean it into "
            f"plain numbers before the run (e.g. remove the separators and units, then "
            f"pd.to_numeric(df['{column}'], errors='coerce'))"
        ]
    words = values[~numeric]
    return [
        f"{start}, the others words, e.g. {_examples(words.unique())} in rows "
        f"{', '.join(map(str, words.index[:3]))}), so {encoded}; recode the words to numbers "
        "or leave them empty (missing), then drop or impute those rows"
    ]


def level_count_problems(frame: pd.DataFrame, role: str, column: str, max_levels: int) -> list[str]:
    """A text column with more than ``max_levels`` levels (or a firm type with one level)."""
    series = frame[column]
    levels = int(series.nunique(dropna=True))
    if role == "firm_types" and levels == 1:
        return [
            f"roles.firm_types: column '{column}' has a single level "
            f"({series.dropna().iloc[0]!r}), so its effects by type are the average effect; "
            f"remove '{column}' from `roles.firm_types` (and from `roles.modifiers`), or "
            "check that the column was read correctly"
        ]
    if not is_text(series) or levels <= max_levels:
        return []
    examples = _examples(series.dropna().astype(str).value_counts().index)
    if role == "firm_types":
        effect = f"a GATE and a test per level ({levels} of them)"
    else:
        effect = f"{levels - 1} one-hot columns"
    return [
        f"roles.{role}: column '{column}' is text with {levels} levels (e.g. {examples}), "
        f"more than `data.max_levels` ({max_levels}); it would make {effect}. Group its "
        "levels into a few (e.g. 2-digit industries, regions), or, if it is an identifier, "
        "give it its role (`roles.unit`, `roles.cluster`) and drop it here; raise "
        "`data.max_levels` only if you mean it"
    ]


def empty_column_problems(frame: pd.DataFrame, role: str, column: str) -> list[str]:
    """A role column with no observed value."""
    series = frame[column]
    if len(series) == 0 or series.notna().any():
        return []
    return [
        f"roles.{role}: column '{column}' is empty: all {len(series)} values are missing; "
        f"fill it, or remove '{column}' from `roles.{role}`"
    ]


def cluster_problems(frame: pd.DataFrame, unit: str, cluster: str) -> list[str]:
    """A cluster column that leaves most firms alone in their cluster, or all in one."""
    firms = frame[[unit, cluster]].dropna().drop_duplicates(subset=[unit])
    if len(firms) < 2:
        return []
    sizes = firms[cluster].value_counts()
    if len(sizes) == 1:
        return [
            f"roles.cluster: column '{cluster}' has a single value ({sizes.index[0]!r}) for "
            f"all {len(firms)} firms; cross-fitting folds and standard errors need many "
            "clusters: name the column that groups firms into many clusters (e.g. city)"
        ]
    singles = sizes[sizes == 1]
    share = len(singles) / len(sizes)
    if share <= MAX_SINGLETON_CLUSTER_SHARE:
        return []
    return [
        f"roles.cluster: column '{cluster}' puts a single firm in {len(singles)} of its "
        f"{len(sizes)} clusters (e.g. {_examples(singles.index)}), so clustering by it is "
        "almost no clustering; name a coarser column that groups firms (e.g. city rather "
        "than firm or district), or leave `roles.cluster` unset for firm-level inference"
    ]


def treatment_variation_problems(frame: pd.DataFrame, column: str) -> list[str]:
    """A treatment that is constant, or takes one value in more than 99% of the rows."""
    series = frame[column].dropna()
    if series.empty or is_text(series):
        return []
    counts = series.value_counts()
    if len(counts) <= 1:
        return [
            f"roles.treatment: column '{column}' is constant; an effect cannot be estimated "
            "without variation in the treatment"
        ]
    differ = len(series) - int(counts.iloc[0])
    if differ / len(series) >= MIN_TREATMENT_VARIATION:
        return []
    return [
        f"roles.treatment: column '{column}' has the value {_plain(counts.index[0])} in "
        f"{counts.iloc[0] / len(series):.1%} of the rows (only {differ} of {len(series)} "
        f"differ, less than {MIN_TREATMENT_VARIATION:.0%}); an effect cannot be estimated "
        "from so little variation: check the column (e.g. a 0/1 treatment needs at least "
        "1% of firms on each side) or choose another treatment"
    ]
