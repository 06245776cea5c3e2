"""Report context of the heterogeneity tables: rows for the templates and inline SVG
figures (GATE forest plot, TOC curve). Formats only; computes no estimates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vaer.heterogeneity.withhold import RANKING_WITHHELD
from vaer.reporting.figures import _svg
from vaer.reporting.fonts import cjk_figure
from vaer.reporting.format import stars
from vaer.reporting.labels import ReportLabels

COLORS = ["#4C72B0", "#C44E52", "#55A868", "#8172B2", "#CCB974", "#64B5CD"]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _with_stars(frame: pd.DataFrame, column: str = "p_value") -> list[dict[str, Any]]:
    rows = _records(frame)
    for row in rows:
        p = row.get(column)
        row["stars"] = stars(float(p)) if p is not None and np.isfinite(float(p)) else ""
    return rows


@cjk_figure
def gate_forest_plot(
    gate: pd.DataFrame, ate: pd.DataFrame | None = None, labels: ReportLabels | None = None
) -> str:
    """Forest plot of the GATEs: one row per dimension and level, one colour per
    estimator, 95% CIs as bars, the cluster-robust ATE of each estimator dashed; the axis
    names the treatment and outcome by their labels."""
    names = labels or ReportLabels()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    estimators = list(dict.fromkeys(gate["estimator"]))
    keys = list(dict.fromkeys(zip(gate["dimension"], gate["level"].astype(str), strict=True)))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(keys) + 1.2))
    offsets = np.linspace(-0.2, 0.2, len(estimators)) if len(estimators) > 1 else [0.0]
    position = {key: len(keys) - 1 - k for k, key in enumerate(keys)}
    for e, (label, offset) in enumerate(zip(estimators, offsets, strict=True)):
        part = gate[gate["estimator"] == label]
        ys = [
            position[(d, str(lvl))] + offset
            for d, lvl in zip(part["dimension"], part["level"], strict=True)
        ]
        color = COLORS[e % len(COLORS)]
        ax.errorbar(
            part["estimate"],
            ys,
            xerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]],
            fmt="o",
            ms=4,
            color=color,
            capsize=2,
            label=label,
        )
        if ate is not None:
            dr = ate[(ate["estimator"] == label) & ate["se_type"].str.contains("DR")]
            if not dr.empty:
                ax.axvline(float(dr["estimate"].iloc[0]), color=color, ls="--", lw=1, alpha=0.6)
    ax.set_yticks([position[k] for k in keys])
    ax.set_yticklabels([f"{d}: {lvl}" for d, lvl in keys], fontsize=8)
    dims = [d for d, _ in keys]
    for k in range(1, len(keys)):
        if dims[k] != dims[k - 1]:
            ax.axhline(len(keys) - k - 0.5, color="#999999", lw=0.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(names.words("fig.gate_x", treatment=names.treatment, outcome=names.outcome))
    ax.grid(axis="x", alpha=0.3)
    if len(estimators) > 1:
        ax.legend(frameon=False, fontsize=8, loc="best")
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def toc_plot(toc: pd.DataFrame, labels: ReportLabels | None = None) -> str:
    """The TOC curve of each estimator's ranking with its pointwise 95% band."""
    words = (labels or ReportLabels()).words
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    for e, label in enumerate(dict.fromkeys(toc["estimator"])):
        part = toc[toc["estimator"] == label].sort_values("q")
        color = COLORS[e % len(COLORS)]
        ax.plot(part["q"], part["toc"], color=color, label=label)
        if part["ci_low"].notna().any():
            ax.fill_between(part["q"], part["ci_low"], part["ci_high"], color=color, alpha=0.2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel(words("fig.toc_x"))
    ax.set_ylabel(words("fig.toc_y"))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _svg(fig)


def heterogeneity_context(
    tables: dict[str, pd.DataFrame], labels: ReportLabels | None = None
) -> dict[str, Any] | None:
    """What the heterogeneity partials render, or ``None`` without a ``gate`` table.

    Parameters
    ----------
    tables : dict
        The bundle's tables (``gate``, ``gate_tests``, ``gates_sorted``, ``clan``,
        ``calibration``, ``blp``, ``rate``, ``toc``, ``policy_tree``; any may be missing).
    labels : ReportLabels, optional
        Names the treatment and outcome in the figure.
    """
    gate = tables.get("gate")
    if gate is None:
        return None
    context: dict[str, Any] = {
        "gate_rows": _records(gate) if not gate.empty else [],
        "gate_figure": gate_forest_plot(gate, tables.get("ate"), labels) if not gate.empty else "",
    }
    tests = tables.get("gate_tests")
    if tests is not None and not tests.empty:
        context["equality_rows"] = _with_stars(tests[tests["test"] == "equality"])
        context["pairwise_rows"] = _with_stars(tests[tests["test"] == "difference"], "p_holm")
    sorted_gates = tables.get("gates_sorted")
    if sorted_gates is not None:
        context["sorted_rows"] = _with_stars(sorted_gates.astype({"group": str}))
    clan = tables.get("clan")
    if clan is not None:
        context["clan_groups"] = [c for c in clan.columns if c.startswith("mean_g")]
        context["clan_rows"] = _with_stars(clan)
    for name in ("calibration", "blp", "rate", "policy_tree"):
        frame = tables.get(name)
        if frame is not None:
            context[f"{name}_rows"] = _with_stars(frame) if "p_value" in frame else _records(frame)
    toc = tables.get("toc")
    if toc is not None and not toc.empty:
        context["toc_figure"] = toc_plot(toc, labels)
    context["ranking_withheld"] = (
        (labels or ReportLabels()).words("withheld.ranking")
        if any(
            "inference" in frame and (frame["inference"] == RANKING_WITHHELD).any()
            for frame in (tables.get(name) for name in ("calibration", "gates_sorted", "rate"))
            if frame is not None
        )
        else ""
    )
    return context
