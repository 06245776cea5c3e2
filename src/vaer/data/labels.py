"""Display labels of columns and labels of their values, from a Stata file or the config.

A Stata ``.dta`` file carries both: pandas turns a variable with value labels into a
``category`` column of the labels (so a firm type is reported by its labels in every
stage), and :func:`vaer.data.readers.read_frame` keeps the variable labels in
``frame.attrs["variable_labels"]``. The config's ``labels:`` block
(:class:`vaer.config.labels.LabelsConfig`) does the same for any file and overrides the
file's labels: :func:`apply_value_labels` replaces a column's values by their labels,
:func:`display_labels` merges the display labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from vaer.config.labels import value_key

VARIABLE_LABELS = "variable_labels"
"""Key of ``DataFrame.attrs`` holding a file's variable labels (column -> label)."""


def apply_value_labels(
    frame: pd.DataFrame, value_labels: Mapping[str, Mapping[str, str]]
) -> tuple[pd.DataFrame, list[str]]:
    """Replace the values of labelled columns by their labels (as ``category`` columns).

    Parameters
    ----------
    frame : DataFrame
    value_labels : mapping
        Column -> (value key, as :func:`vaer.config.labels.value_key` writes it -> label).

    Returns
    -------
    frame : DataFrame
        A copy with each labelled column a ``category`` of its labels (in the order of
        the mapping); missing values stay missing. ``attrs`` are kept.
    problems : list of str
        One message per labelled column absent from ``frame`` or holding values without
        a label, naming the column, the values and the fix.
    """
    if not value_labels:
        return frame, []
    out = frame.copy()
    problems = []
    for column, labels in value_labels.items():
        if column not in frame.columns:
            problems.append(
                f"labels.{column}.values: column '{column}' is not in the data; check the spelling"
            )
            continue
        series = frame[column]
        present = series.notna()
        keys = series[present].map(value_key)
        unlabelled = sorted(set(keys) - set(labels))
        if unlabelled:
            shown = ", ".join(unlabelled[:8]) + (" ..." if len(unlabelled) > 8 else "")
            problems.append(
                f"labels.{column}.values: column '{column}' holds values without a label "
                f"({shown}; {int((~keys.isin(list(labels))).sum())} rows); add a label for "
                "each value or remove `values` to keep the column as it is"
            )
            continue
        mapped = pd.Series(pd.NA, index=series.index, dtype=object)
        mapped[present] = keys.map(labels)
        out[column] = pd.Categorical(mapped, categories=list(dict.fromkeys(labels.values())))
    return out, problems


def display_labels(
    columns: Iterable[str],
    file_labels: Mapping[str, str] | None = None,
    config_labels: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Column -> its display label: the config's, else the file's, else the column name.

    Parameters
    ----------
    columns : iterable of str
        The columns to label (e.g. every column a role names).
    file_labels : mapping, optional
        A Stata file's variable labels (empty labels are ignored).
    config_labels : mapping, optional
        The ``labels:`` block's display labels.

    Returns
    -------
    dict
    """
    found = {}
    for column in columns:
        label = (config_labels or {}).get(column) or (file_labels or {}).get(column) or ""
        found[column] = label.strip() or column
    return found
