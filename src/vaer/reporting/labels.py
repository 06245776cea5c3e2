"""Display labels in the report: the roles' labels in titles and axes, and the columns'
labels in the rendered tables.

A run's bundle carries ``meta["labels"]`` (every role column -> its display label: the
config's ``labels:``, else a Stata variable label, else the column name) and
``meta["roles"]``. :class:`ReportLabels` reads them; a bundle without labels (an older
run) shows column names. The CSV tables keep the column names: only what is rendered
(HTML, PDF, LaTeX, XLSX) is relabelled, by :meth:`ReportLabels.relabel_tables`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vaer.reporting.words import WORDS, Words

NAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "gate": ("dimension",),
    "gate_tests": ("dimension",),
    "clan": ("variable",),
    "blp": ("term",),
    "shap_by_type": ("dimension",),
    "shap_features": ("feature",),
    "mechanisms": ("mediator", "dimension"),
    "did_types": ("dimension",),
    "did_type_tests": ("dimension",),
    "did_mechanisms": ("mediator",),
}
"""Table -> its columns whose values are column names (shown by their labels)."""

VALUE_COLUMNS: dict[str, tuple[str, ...]] = {"ate": ("se_type",), "policy_tree": ("action",)}
"""Table -> its columns of fixed English values, shown in the report's language (the
catalogue's ``value.<text>`` entries; other values are kept)."""

CROSS = " x "
"""How a crossed firm-type dimension joins its columns (as vaer.heterogeneity.gates)."""

_ESTIMAND = re.compile(
    r"^(?:average partial effect of one more unit of (?P<treatment>.+?)"
    r"(?P<iv> \(identified by the instrument\))?"
    r"|average effect of high vs low (?P<high>.+?) \(high = .+ above its "
    r"(?P<where>median|top-tercile cut-off)\))$"
)
"""The estimands :mod:`vaer.estimators.registry` writes."""

_SPLIT = re.compile(r"^(?P<column>.+?) (?P<op>=|!=|<=|>|<|>=) (?P<value>.*)$")


@dataclass(frozen=True)
class ReportLabels:
    """Display labels of a run's columns, and its treatment and outcome columns.

    Attributes
    ----------
    columns : dict
        Column -> display label (columns absent are shown by their name).
    treatment_column, outcome_column : str
        The columns of the treatment and outcome roles (``"treatment"``/``"outcome"``
        when the bundle names none).
    words : Words
        The report's own words in its language (``meta["language"]``, English when the
        bundle names none; :mod:`vaer.reporting.words`).
    """

    columns: dict[str, str] = field(default_factory=dict)
    treatment_column: str = "treatment"
    outcome_column: str = "outcome"
    words: Words = field(default_factory=Words)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ReportLabels:
        """The labels of a bundle's metadata (``labels``, ``roles`` and ``language``).

        Raises
        ------
        ValueError
            If ``meta["language"]`` is not a report language.
        """
        roles = meta.get("roles") or {}
        labels = meta.get("labels") or {}
        return cls(
            columns={str(k): str(v) for k, v in labels.items()},
            treatment_column=str(roles.get("treatment") or "treatment"),
            outcome_column=str(roles.get("outcome") or "outcome"),
            words=Words(str(meta.get("language") or "en")),
        )

    def of(self, column: str) -> str:
        """The display label of ``column``: a crossed dimension ``a x b`` by its parts, an
        encoded level ``column=level`` (one-hot features) as ``label=level``."""
        if not isinstance(column, str):
            return str(column)
        if column in self.columns:
            return self.columns[column]
        if CROSS in column:
            return CROSS.join(self.of(part) for part in column.split(CROSS))
        name, equals, level = column.partition("=")
        if equals and name in self.columns:
            return f"{self.columns[name]}={level}"
        return column

    def full(self, column: str) -> str:
        """``label (column)`` when the label differs from the name, else the name."""
        label = self.of(column)
        return column if label == column else f"{label} ({column})"

    def join(self, columns: Any) -> str:
        """``columns`` as ``label (column)`` texts joined by commas ("" when none)."""
        return ", ".join(self.full(str(c)) for c in columns or ())

    @property
    def treatment(self) -> str:
        """The treatment's display label."""
        return self.of(self.treatment_column)

    @property
    def outcome(self) -> str:
        """The outcome's display label."""
        return self.of(self.outcome_column)

    def rule(self, text: str) -> str:
        """A policy-tree rule (``a = x & b != y``) with its columns by their labels."""
        parts = []
        for part in str(text).split(" & "):
            found = _SPLIT.match(part)
            parts.append(
                f"{self.of(found['column'])} {found['op']} {found['value']}" if found else part
            )
        return " & ".join(parts)

    def estimand(self, text: str) -> str:
        """An ATE row's estimand (:mod:`vaer.estimators.registry`'s wording) in the
        report's language; a text of another form is kept."""
        if not self.words.zh or not isinstance(text, str):
            return text
        found = _ESTIMAND.match(text)
        if found is None:
            return text
        treatment = found["treatment"] or found["high"]
        if found["high"] is not None:
            where = self.words(f"estimand.{found['where']}")
            return self.words("estimand.binary", treatment=treatment, where=where)
        key = "estimand.ape_iv" if found["iv"] else "estimand.ape"
        return self.words(key, treatment=treatment)

    def value(self, text: object) -> object:
        """A fixed value of a result table (:data:`VALUE_COLUMNS`) in the report's
        language; any other value unchanged."""
        key = f"value.{text}"
        return self.words(key) if isinstance(text, str) and key in WORDS else text

    def relabel_tables(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The tables with the values of their name columns (:data:`NAME_COLUMNS`) and the
        policy tree's rules shown by their labels, the ATE table's estimands in the
        report's language; other tables unchanged."""
        out = dict(tables)
        ate = tables.get("ate")
        if self.words.zh and ate is not None and "estimand" in ate.columns:
            out["ate"] = ate.assign(estimand=ate["estimand"].map(self.estimand))
        for name, columns in VALUE_COLUMNS.items():
            frame = out.get(name)
            shown = [c for c in columns if frame is not None and c in frame.columns]
            if self.words.zh and shown and frame is not None:
                out[name] = frame.assign(**{c: frame[c].map(self.value) for c in shown})
        if not self.columns:
            return out
        for name, frame in out.items():
            names = [c for c in NAME_COLUMNS.get(name, ()) if c in frame.columns]
            rule = name == "policy_tree" and "rule" in frame.columns
            if not names and not rule:
                continue
            frame = frame.copy()
            for column in names:
                frame[column] = frame[column].map(lambda v: self.of(v) if isinstance(v, str) else v)
            if rule:
                frame["rule"] = frame["rule"].map(self.rule)
            out[name] = frame
        return out
