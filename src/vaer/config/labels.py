"""The ``labels:`` block: display labels of columns and labels of their values.

For a CSV or Parquet file it does what a Stata file's variable and value labels do (a
``.dta`` file's own labels are read with it; the block overrides them)::

    labels:
      va_index: Virtual agglomeration index     # column -> display label
      ownership:                                # column -> display label and value labels
        label: Ownership
        values: {1: state-owned, 2: private, 3: foreign}

A display label names the column in the report's titles, axes and tables (the CSV
tables and the logged model keep the column names). Value labels replace the column's
values by their labels, which makes the column categorical (a firm type reported by its
labels, like a Stata variable with value labels); every value present in the data needs
a label. A column without a label is shown by its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, RootModel, field_validator, model_validator

from vaer.config.section import Section


def value_key(value: Any) -> str:
    """The form a value and a ``values:`` key are matched in: integral numbers as
    integers (``1``, ``1.0`` and ``"1"`` match), anything else as its text."""
    if isinstance(value, bool):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)


class ColumnLabels(Section):
    """Display label and value labels of one column.

    Attributes
    ----------
    label : str, optional
        The column's display label (default: the column's name).
    values : dict
        Value -> its label; the column's values become these labels (a categorical
        column). Keys may be numbers or text (``1``, ``1.0`` and ``"1"`` are the same
        value); they are kept in the form of :func:`value_key`.
    """

    label: str | None = None
    values: dict[str, str] = {}

    @field_validator("label")
    @classmethod
    def _non_empty(cls, label: str | None) -> str | None:
        if label is not None and not label.strip():
            raise ValueError("`label` must be non-empty text; remove it to show the column name")
        return label

    @field_validator("values", mode="before")
    @classmethod
    def _keys(cls, values: Any) -> Any:
        """Keys in :func:`value_key` form; of two keys for the same value (``1`` in the
        file, ``"1"`` from ``--set``) the later one wins, as in YAML."""
        if not isinstance(values, Mapping):
            return values
        return {value_key(k): v for k, v in values.items()}

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: dict[str, str]) -> dict[str, str]:
        empty = [k for k, v in values.items() if not v.strip()]
        if empty:
            raise ValueError(f"`values`: the labels of {empty} are empty; give each a label")
        seen: dict[str, str] = {}
        for key, label in values.items():
            if label in seen:
                raise ValueError(
                    f"`values`: {seen[label]} and {key} have the same label '{label}', "
                    "which would merge two levels; give each value its own label"
                )
            seen[label] = key
        return values


class LabelsConfig(RootModel[dict[str, ColumnLabels]]):
    """Column -> display label (text) or :class:`ColumnLabels`; see the module docstring.

    Written as a plain mapping under ``labels:`` (a text entry is short for
    ``{label: text}``); validated against the roles by :meth:`check_roles` (every labelled
    column must have a role; value labels only on the columns that may be categorical).
    """

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, LabelsConfig):
            return data.root
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(
                "`labels` must map column names to a display label or to "
                f"{{label: ..., values: {{value: label}}}}; got {type(data).__name__}"
            )
        columns = {}
        for column, entry in data.items():
            if isinstance(entry, str):
                entry = {"label": entry}
            elif not isinstance(entry, Mapping | ColumnLabels):
                raise ValueError(
                    f"`labels.{column}` must be a display label (text) or "
                    f"{{label: ..., values: {{value: label}}}}; got {entry!r}"
                )
            columns[str(column)] = entry
        return columns

    @property
    def columns(self) -> dict[str, ColumnLabels]:
        """Column -> its labels."""
        return self.root

    def check_roles(self, columns: Mapping[str, str], categorical: set[str]) -> None:
        """Check the labelled columns against the study's roles.

        Parameters
        ----------
        columns : mapping
            Every column a role names -> that role.
        categorical : set of str
            The columns that may hold categories (controls, modifiers, firm types,
            cluster, industry).

        Raises
        ------
        ValueError
            Naming the first column that has no role, or has value labels but a role that
            must be numeric.
        """
        for column, entry in self.columns.items():
            if column not in columns:
                raise ValueError(
                    f"`labels.{column}`: '{column}' is not a column of any role; check the "
                    "spelling or remove the label"
                )
            if entry.values and column not in categorical:
                raise ValueError(
                    f"`labels.{column}.values`: value labels make a column categorical, but "
                    f"'{column}' is the {columns[column]}, which must stay numeric; remove "
                    "its `values`"
                )

    def display(self) -> dict[str, str]:
        """Column -> display label, for the columns given one."""
        return {c: e.label for c, e in self.columns.items() if e.label is not None}

    def value_labels(self) -> dict[str, dict[str, str]]:
        """Column -> (value key -> label), for the columns given value labels."""
        return {c: dict(e.values) for c, e in self.columns.items() if e.values}
