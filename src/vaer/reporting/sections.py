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
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], _labels: ReportLabels
) -> str | None:
    parts = []
    if "shap_channels" in tables:
        parts.append(figures.channel_shares(tables["shap_channels"]))
    by_type = tables.get("shap_by_type")
    if by_type is not None and {"dimension", "level", "channel", "mean_abs_shap"} <= set(by_type):
        parts.append(figures.channel_heatmap(by_type))
    return "\n".join(parts) or None


def _did_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], _labels: ReportLabels
) -> str | None:
    parts = []
    if "did_aggregates" in tables:
        parts.append(figures.event_study(tables["did_aggregates"]))
    if "att_gt" in tables:
        parts.append(figures.att_gt_heatmap(tables["att_gt"]))
    if "bacon" in tables:
        parts.append(figures.bacon_scatter(tables["bacon"], tables.get("did_aggregates")))
    return "\n".join(p for p in parts if p) or None


def _did_channel_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], _labels: ReportLabels
) -> str | None:
    if "did_channels" not in tables or tables["did_channels"].empty:
        return None
    return figures.channel_shares(tables["did_channels"])


def _honest_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], _labels: ReportLabels
) -> str | None:
    if "honest_did" not in tables:
        return None
    return figures.honest_did(tables["honest_did"], tables.get("honest_did_breakdown"))


def _did_types_figure(
    tables: dict[str, pd.DataFrame], _s: dict[str, Any], _labels: ReportLabels
) -> str | None:
    if "did_types" not in tables:
        return None
    return figures.type_event_study(tables["did_types"], tables.get("did_type_tests"))


def _did_type_overall(tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Each level's overall simple and event-study ATT, rows of ``did_types``."""
    types = tables.get("did_types")
    if types is None or types.empty:
        return None
    rows = types[types["overall"].astype(bool) & types["aggregation"].isin(["simple", "dynamic"])]
    columns = ["dimension", "level", "aggregation", "estimate", "se", "ci_low", "ci_high",
               "p_adj", "n"]  # fmt: skip
    return rows[columns].sort_values(["dimension", "aggregation", "level"], kind="stable")


def _did_type_equality(tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The equality tests of the levels' overall ATTs, rows of ``did_type_tests``."""
    tests = tables.get("did_type_tests")
    if tests is None or tests.empty:
        return None
    rows = tests[(tests["test"] == "equality") & tests["key"].isna()]
    return rows[["dimension", "aggregation", "contrast", "statistic", "df", "df_den", "p_value"]]


def _twfe_beside_cs(tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
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
                "cs_did": "Callaway-Sant'Anna (simple ATT)",
                "twfe": "TWFE (firm + year FE)",
            }
        }
    )


View = Callable[[dict[str, pd.DataFrame]], pd.DataFrame | None]


@dataclass(frozen=True)
class Section:
    """One section: its anchor id, heading, the tables it owns, a figure and a note."""

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
    """Small tables shown before the section's tables: (name, caption, rows of bundle
    tables selected for reading; None when absent)."""


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
        "Treatment distribution and overlap",
        ("treatment",),
        _treatment_figure,
        caption="Left: the treatment across firms. Right: the treatment against its "
        "cross-fitted prediction from the controls and modifiers (log counts); a wide cloud "
        "around the dashed line means the treatment varies among comparable firms.",
    ),
    Section(
        "ate",
        "Average effect per estimator",
        ("ate", "intervals", "cate"),
        _cate_figure,
        caption="Each firm's effect estimated by models that never saw its cluster "
        "(cluster out-of-bag or cross-fitted); the red line is the average effect.",
        note="The average effects average doubly robust scores, with standard errors "
        "clustered by the cluster role. The intervals table says, per estimator, what the "
        "per-firm intervals of the firm-level table cover.",
        always=True,
    ),
    Section(
        "tuning",
        "Tuning on cluster-grouped splits",
        ("tuning",),
        note="Nuisance candidates are scored by cluster-grouped cross-validated MSE of the "
        "outcome and treatment regressions (each relative to its variance); forest candidates "
        "by the R-loss on held-out clusters. The chosen ones were used for the estimates above.",
    ),
    Section(
        "gates",
        "Group effects by firm type (GATEs)",
        ("gate", "gate_tests"),
        partial="sections/heterogeneity_gates.html.j2",
    ),
    Section(
        "sorted-gates",
        "Sorted GATES and CLAN",
        ("gates_sorted", "clan"),
        partial="sections/heterogeneity_sorted.html.j2",
    ),
    Section(
        "calibration",
        "Calibration and best linear projection",
        ("calibration", "blp"),
        partial="sections/heterogeneity_calibration.html.j2",
    ),
    Section(
        "rate",
        "Ranking firms by predicted effect: RATE and the TOC curve",
        ("rate", "toc"),
        drawn_only=("toc",),
        partial="sections/heterogeneity_rate.html.j2",
    ),
    Section(
        "policy-tree",
        "Policy tree over firm types",
        ("policy_tree",),
        partial="sections/heterogeneity_policy.html.j2",
    ),
    Section(
        "attribution",
        "Mechanism attribution",
        ("shap_channels", "shap_by_type", "shap_features", "shap_summary"),
        _channel_figure,
        drawn_only=("shap_by_type",),
        partial="sections/attribution.html.j2",
        context="attribution",
        caption="Share of the variation in firm-level effects attributed to each mechanism "
        "channel (SHAP values of the effect model summed over the channel's proxies), and "
        "each channel's mean absolute contribution within each firm type.",
    ),
    Section(
        "mechanisms",
        "Mechanism tests",
        ("mechanisms",),
        partial="sections/mechanisms.html.j2",
        context="attribution",
    ),
    Section(
        "did",
        "The policy as a natural experiment: staggered difference-in-differences",
        ("did_aggregates", "pretrend", "att_gt", "bacon", "did_dropped"),
        _did_figure,
        caption="Top: average effect on the treated by years since the firm's city adopted "
        "the policy; where they are printed (see the inference column), bars are pointwise "
        "intervals (did.alpha, 95% by default) and the shaded band holds for all event "
        "times at once. Before adoption (grey) the estimates should be zero if treated and "
        "untreated cities trended alike. Beside them, when run: Sun-Abraham's "
        "interaction-weighted event study (equal to Callaway-Sant'Anna's after adoption on a "
        "balanced panel; before adoption it measures from year -1, Callaway-Sant'Anna's "
        "varying base from the year before) and the plain TWFE leads and lags, which mix "
        "other event times' effects in when effects differ across cohorts. Middle: every "
        "cohort-year effect ATT(g, t). Bottom: the Goodman-Bacon decomposition of the TWFE "
        "coefficient into 2x2 comparisons; red ones use already-treated firms as controls.",
        views=(
            (
                "did_twfe_vs_cs",
                "TWFE beside Callaway-Sant'Anna (rows of tables/did_aggregates.csv)",
                _twfe_beside_cs,
            ),
        ),
        note="Callaway and Sant'Anna (2021) group-time ATTs (did.method: doubly robust "
        "(Sant'Anna and Zhao, 2020) by default, or IPW or outcome regression), against "
        "never- or not-yet-adopting cities; each ATT(g, t) compares the change from the "
        "base year in the cohort's firms with that of the comparison firms observed in both "
        "years. Standard errors cluster the influence functions by the cluster role (city). "
        "With did.inference: small_cluster (the default) they are bias-reduced for cohorts "
        "of few, unequal cities (CR2, Bell and McCaffrey 2002), intervals use Student t "
        "with Satterthwaite degrees of freedom (the df column: small when a few cities "
        "carry the estimate), bands and the pre-trend test are Bonferroni over the "
        "event times; with did.inference: asymptotic (as R did) they are normal, with "
        "multiplier-bootstrap bands and a joint Wald pre-trend test against F(q, G - 1). "
        "The aggregations weight cohorts by their size; did_dropped counts every firm-year "
        "and every cohort firm left out, by reason. An interval is printed only if it held "
        "its level on vaer's synthetic panel in the chosen mode; the inference column says "
        "why one is blank (did.unvalidated_inference prints it). TWFE: firm and year fixed "
        "effects (pyfixest), errors clustered by the cluster role with fixest's small-sample "
        "correction, t(G - 1); its event study and Sun-Abraham's (Sun and Abraham, 2021; "
        "never-treated comparisons, or the last-treated cohort before it adopts) use the "
        "same errors. TWFE's and Sun-Abraham's intervals have not been checked on the "
        "synthetic panel, so they are withheld by default. The Goodman-Bacon (2021) "
        "decomposition uses the firms observed in every year (did_dropped counts the "
        "others).",
    ),
    Section(
        "did-honest",
        "Sensitivity of the event study to parallel-trends violations (honest DiD)",
        ("honest_did_breakdown", "honest_did"),
        _honest_figure,
        caption="Robust 95% intervals (did.alpha) for the average post-adoption effect as "
        "the allowed violation of parallel trends grows (blue), beside the usual interval "
        "that assumes none (red). Relative magnitudes: the trend difference may change "
        "after adoption by up to Mbar times its largest change before; smoothness: its "
        "slope may change by up to M per year. The dashed line is the breakdown value, the "
        "smallest bound at which the interval includes zero.",
        note="Rambachan and Roth (2023), on the Callaway-Sant'Anna event study with a "
        "universal base period and its city-clustered covariance: conditional-least-"
        "favourable hybrid confidence sets (Andrews, Roth and Pakes) under relative "
        "magnitudes, optimal fixed-length intervals (Armstrong and Kolesar) under "
        "smoothness, as R HonestDiD computes them, with normal critical values (the "
        "original rows too, so they can be a little narrower than the small-cluster t "
        "intervals of did_aggregates). "
        "honest_did has every post event time and their average; honest_did_breakdown "
        "the breakdown value of each.",
    ),
    Section(
        "did-types",
        "Effects of the policy by firm type (staggered difference-in-differences)",
        ("did_types", "did_type_tests"),
        _did_types_figure,
        caption="Average effect on the treated firms of each firm type by years since their "
        "city adopted the policy (Callaway-Sant'Anna by type), one panel per type level on a "
        "common scale; bars are pointwise intervals where printed. Each row quotes the test "
        "that the levels' overall event-study effects are equal.",
        views=(
            (
                "did_type_overall",
                "Overall effect by firm type (simple and event-study aggregations; rows of "
                "tables/did_types.csv)",
                _did_type_overall,
            ),
            (
                "did_type_equality",
                "Are the effects equal across firm types? (overall aggregates; rows of "
                "tables/did_type_tests.csv)",
                _did_type_equality,
            ),
        ),
        note="For each firm-type dimension and level, ATT(g, t) of that level's firms: the "
        "level's mean of the doubly robust DiD terms, each arm normalised within the level, "
        "with the level's comparison firms reweighted by nuisance models that include the "
        "type (so a type's untreated trend is compared with its own type's); aggregated "
        "like the overall ATT with the level's own cohort sizes. Standard errors as for the "
        "overall ATT (city-clustered influence functions, CR2 by arm within the level, "
        "Satterthwaite t). p_adj is Holm over the levels of a dimension, p_romano_wolf "
        "Romano-Wolf, the band holds for all levels at once. did_type_tests: per aggregation "
        "and key, the Wald F test that the levels are equal (Hotelling scaling with "
        "small-cluster degrees of freedom) and every pairwise difference.",
    ),
    Section(
        "did-catt",
        "Which firms gain from the policy, and through which channel (CATT)",
        ("did_catt_tests", "did_channels", "did_mechanisms"),
        _did_channel_figure,
        caption="Share of the variation of the policy's effect across treated firms (CATT) "
        "carried by each mechanism channel, with 95% intervals that include the estimation "
        "error of the effect model.",
        note="Each firm's doubly robust DiD score of its average effect over the years since "
        "its city adopted (Sant'Anna-Zhao with never-treated comparison firms; their mean is "
        "the group-aggregated ATT), divided by its estimated probability of treatment, is "
        "fitted on the pre-period covariates by a weighted generalized random forest, "
        "cross-fitted over three folds of cities so that no firm's effect comes from a model "
        "that saw its city (tables/did_catt.csv, per firm). did_catt_tests: the calibration "
        "test (CR2, one-sided) and RATE (AUTOC, Qini; city bootstrap, t(G-1)) of those "
        "effects, within folds. did_channels: SHAP values of the effect model refitted on "
        "each fold, every firm explained by the two models that never saw its city, summed "
        "into the mechanism channels, shares as for the cross-sectional effect. "
        "did_mechanisms: the Callaway-Sant'Anna ATT (group aggregation) of the policy on "
        "each mediator, clustered by city.",
    ),
    Section(
        "robustness",
        "Robustness and sensitivity",
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


def _views(section: Section, tables: dict[str, pd.DataFrame]) -> list[DisplayTable]:
    """The section's views that have rows, formatted."""
    shown = []
    for name, caption, view in section.views:
        frame = view(tables)
        if frame is not None and not frame.empty:
            shown.append(dataclasses.replace(display_table(name, frame), caption=caption))
    return shown


def render_sections(
    tables: dict[str, pd.DataFrame], summary: dict[str, Any], labels: ReportLabels | None = None
) -> list[RenderedSection]:
    """The sections whose tables are present, in order, then "Other tables" if any
    (figures name the treatment and outcome by ``labels``; default: generic names)."""
    labels = labels or ReportLabels()
    rendered = []
    for section in SECTIONS:
        present = [name for name in section.tables if name in tables]
        if not present and not section.always:
            continue
        rendered.append(
            RenderedSection(
                id=section.id,
                title=section.title,
                figure=section.figure(tables, summary, labels) if section.figure else None,
                caption=section.caption,
                note=section.note,
                tables=[*_views(section, tables)]
                + [
                    display_table(name, tables[name])
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
                title="Other tables",
                figure=None,
                caption="",
                note="",
                tables=[display_table(name, tables[name]) for name in others],
            )
        )
    return rendered
