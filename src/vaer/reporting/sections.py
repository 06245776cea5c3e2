"""The report's sections in their fixed order, each shown when its tables are in the bundle.

A section lists the bundle tables it owns; it appears when at least one of them is
present and renders each present table through :func:`vaer.reporting.tables.display_table`
(plus a figure where one helps). Tables no section claims go to a last "Other tables"
section, so a new stage's table is readable before anyone writes a section for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vaer.reporting import figures
from vaer.reporting.labels import ReportLabels
from vaer.reporting.tables import DisplayTable, display_table
from vaer.reporting.words import Words

Figure = Callable[[dict[str, pd.DataFrame], dict[str, Any], ReportLabels], str | None]
"""A section's figure from the tables, the summary and the display labels."""


def _treatment_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    return figures.treatment_overlap(tables["treatment"], labels) if "treatment" in tables else None


def _cate_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    if "cate" in tables and "ate" in tables:
        return figures.cate_histogram(tables["cate"], tables["ate"], labels)
    return None


def _channel_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    parts = []
    if "shap_channels" in tables:
        parts.append(figures.channel_shares(tables["shap_channels"], labels))
    by_type = tables.get("shap_by_type")
    if by_type is not None and {"dimension", "level", "channel", "mean_abs_shap"} <= set(by_type):
        parts.append(figures.channel_heatmap(by_type, labels=labels))
    return "\n".join(parts) or None


def _did_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    parts = []
    if "did_aggregates" in tables:
        parts.append(figures.event_study(tables["did_aggregates"], labels))
    if "att_gt" in tables:
        parts.append(figures.att_gt_heatmap(tables["att_gt"], labels))
    if "bacon" in tables:
        parts.append(figures.bacon_scatter(tables["bacon"], tables.get("did_aggregates"), labels))
    return "\n".join(p for p in parts if p) or None


def _did_channel_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    if "did_channels" not in tables or tables["did_channels"].empty:
        return None
    return figures.channel_shares(tables["did_channels"], labels)


def _honest_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    if "honest_did" not in tables:
        return None
    return figures.honest_did(tables["honest_did"], tables.get("honest_did_breakdown"), labels)


def _did_types_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], labels: ReportLabels
) -> str | None:
    if "did_types" not in tables:
        return None
    types, tests = tables["did_types"], tables.get("did_type_tests")
    if "estimator" in types:  # the figure draws Callaway-Sant'Anna's; the tables have all
        types = types[types["estimator"] == "cs_did"]
        tests = None if tests is None else tests[tests["estimator"] == "cs_did"]
    return figures.type_event_study(types, tests, labels)


def _did_type_overall(tables: dict[str, pd.DataFrame], _w: Words) -> pd.DataFrame | None:
    """Each level's overall simple and event-study ATT, rows of ``did_types``."""
    types = tables.get("did_types")
    if types is None or types.empty:
        return None
    rows = types[types["overall"].astype(bool) & types["aggregation"].isin(["simple", "dynamic"])]
    columns = ["dimension", "level", "aggregation", "estimate", "se", "ci_low", "ci_high",
               "p_adj", "n"]  # fmt: skip
    order = ["dimension", "aggregation", "level"]
    if "estimator" in rows and rows["estimator"].nunique() > 1:
        columns, order = ["estimator", *columns], ["estimator", *order]
    return rows[columns].sort_values(order, kind="stable")


def _did_type_equality(tables: dict[str, pd.DataFrame], _w: Words) -> pd.DataFrame | None:
    """The equality tests of the levels' overall ATTs, rows of ``did_type_tests``."""
    tests = tables.get("did_type_tests")
    if tests is None or tests.empty:
        return None
    rows = tests[(tests["test"] == "equality") & tests["key"].isna()]
    columns = ["dimension", "aggregation", "contrast", "statistic", "df", "df_den", "p_value"]
    if "estimator" in rows and rows["estimator"].nunique() > 1:
        columns = ["estimator", *columns]
    return rows[columns]


def _twfe_beside_cs(tables: dict[str, pd.DataFrame], words: Words) -> pd.DataFrame | None:
    """The overall ATT of Callaway-Sant'Anna (simple aggregation) and the TWFE coefficient,
    rows of ``did_aggregates``."""
    aggregates = tables.get("did_aggregates")
    if aggregates is None or "estimator" not in aggregates:
        return None
    rows = aggregates[
        aggregates["estimator"].isin(["cs_did", "twfe"])
        & (aggregates["aggregation"] == "simple")
        & aggregates["overall"].astype(bool)
    ]
    if (rows["estimator"] != "twfe").all():
        return None
    return rows[["estimator", "estimate", "se", "ci_low", "ci_high"]].replace(
        {
            "estimator": {
                "cs_did": words("did.cs_simple"),
                "twfe": words("did.twfe_fe"),
            }
        }
    )


View = Callable[[dict[str, pd.DataFrame], Words], pd.DataFrame | None]


@dataclass(frozen=True)
class Section:
    """One section: its anchor id, heading, the tables it owns, a figure and a note.

    ``title``, ``caption``, ``note`` and the views' captions are keys of the report's
    words (:mod:`vaer.reporting.words`), rendered in the report's language."""

    id: str
    title: str
    tables: tuple[str, ...]
    figure: Figure | None = None
    caption: str = ""
    note: str = ""
    always: bool = False
    drawn_only: tuple[str, ...] = ()
    """Tables shown by the figure alone (curves), not printed."""
    partial: str | None = None
    """A bespoke template for the section, given the stage's own context."""
    context: str = "het"
    """Name of that context (``het``, ``robustness``); the generic tables render without it."""
    views: tuple[tuple[str, str, View], ...] = ()
    """Small tables shown before the section's tables: (name, caption key, rows of
    bundle tables selected for reading; None when absent)."""


@dataclass(frozen=True)
class RenderedSection:
    """A section with its figure and formatted tables, ready for the template."""

    id: str
    title: str
    figure: str | None
    caption: str
    note: str
    tables: list[DisplayTable] = field(default_factory=list)
    partial: str | None = None
    context: str = "het"


SECTIONS: tuple[Section, ...] = (
    Section(
        "treatment",
        "treatment.title",
        ("treatment",),
        _treatment_figure,
        caption="treatment.caption",
    ),
    Section(
        "ate",
        "ate.title",
        ("ate", "intervals", "cate"),
        _cate_figure,
        caption="ate.caption",
        note="ate.note",
        always=True,
    ),
    Section("tuning", "tuning.title", ("tuning",), note="tuning.note"),
    Section(
        "gates",
        "gates.title",
        ("gate", "gate_tests"),
        partial="sections/heterogeneity_gates.html.j2",
    ),
    Section(
        "sorted-gates",
        "sorted.title",
        ("gates_sorted", "clan"),
        partial="sections/heterogeneity_sorted.html.j2",
    ),
    Section(
        "calibration",
        "calibration.title",
        ("calibration", "blp"),
        partial="sections/heterogeneity_calibration.html.j2",
    ),
    Section(
        "rate",
        "rate.title",
        ("rate", "toc"),
        drawn_only=("toc",),
        partial="sections/heterogeneity_rate.html.j2",
    ),
    Section(
        "policy-tree",
        "policy.title",
        ("policy_tree",),
        partial="sections/heterogeneity_policy.html.j2",
    ),
    Section(
        "attribution",
        "attribution.title",
        ("shap_channels", "shap_by_type", "shap_features", "shap_summary"),
        _channel_figure,
        drawn_only=("shap_by_type",),
        partial="sections/attribution.html.j2",
        context="attribution",
        caption="attribution.caption",
    ),
    Section(
        "mechanisms",
        "mechanisms.title",
        ("mechanisms",),
        partial="sections/mechanisms.html.j2",
        context="attribution",
    ),
    Section(
        "did",
        "did.title",
        ("did_aggregates", "pretrend", "att_gt", "bacon", "did_dropped"),
        _did_figure,
        caption="did.caption",
        views=(("did_twfe_vs_cs", "did.twfe_view", _twfe_beside_cs),),
        note="did.note",
    ),
    Section(
        "did-honest",
        "honest.title",
        ("honest_did_breakdown", "honest_did"),
        _honest_figure,
        caption="honest.caption",
        note="honest.note",
    ),
    Section(
        "did-types",
        "did_types.title",
        ("did_types", "did_type_tests"),
        _did_types_figure,
        caption="did_types.caption",
        views=(
            ("did_type_overall", "did_types.overall_view", _did_type_overall),
            ("did_type_equality", "did_types.equality_view", _did_type_equality),
        ),
        note="did_types.note",
    ),
    Section(
        "did-catt",
        "did_catt.title",
        ("did_catt_tests", "did_channels", "did_mechanisms"),
        _did_channel_figure,
        caption="did_catt.caption",
        note="did_catt.note",
    ),
    Section(
        "robustness",
        "robustness.title",
        ("robustness", "sensitivity"),
        partial="sections/robustness.html.j2",
        context="robustness",
    ),
)
"""Sections after the summary and data pages, in reading order."""

SPECIAL_TABLES = frozenset({"sample", "shap_values", "shap_data", "did_catt"})
"""Tables rendered elsewhere (``sample`` on the data page) or only used by figures."""


def claimed_tables() -> set[str]:
    """Every table name some section renders."""
    return {name for section in SECTIONS for name in section.tables} | set(SPECIAL_TABLES)


def _views(section: Section, tables: dict[str, pd.DataFrame], words: Words) -> list[DisplayTable]:
    """The section's views that have rows, formatted."""
    shown = []
    for name, caption, view in section.views:
        frame = view(tables, words)
        if frame is not None and not frame.empty:
            table = display_table(name, frame, words)
            shown.append(dataclasses.replace(table, caption=words(caption)))
    return shown


def render_sections(
    tables: dict[str, pd.DataFrame], summary: dict[str, Any], labels: ReportLabels | None = None
) -> list[RenderedSection]:
    """The sections whose tables are present, in order, then "Other tables" if any
    (figures name the treatment and outcome by ``labels``; default: generic names)."""
    labels = labels or ReportLabels()
    words = labels.words
    rendered = []
    for section in SECTIONS:
        present = [name for name in section.tables if name in tables]
        if not present and not section.always:
            continue
        rendered.append(
            RenderedSection(
                id=section.id,
                title=words(section.title),
                figure=section.figure(tables, summary, labels) if section.figure else None,
                caption=words(section.caption) if section.caption else "",
                note=words(section.note) if section.note else "",
                tables=[*_views(section, tables, words)]
                + [
                    display_table(name, tables[name], words)
                    for name in present
                    if name not in section.drawn_only
                ],
                partial=section.partial,
                context=section.context,
            )
        )
    others = sorted(set(tables) - claimed_tables())
    if others:
        rendered.append(
            RenderedSection(
                id="other-tables",
                title=words("other.title"),
                figure=None,
                caption="",
                note="",
                tables=[display_table(name, tables[name], words) for name in others],
            )
        )
    return rendered
