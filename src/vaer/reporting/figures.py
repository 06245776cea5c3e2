"""Figures of the report, returned as inline SVG text (no files, no network)."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pandas as pd

from vaer.reporting.fonts import cjk_figure
from vaer.reporting.labels import ReportLabels
from vaer.reporting.words import Words


def _svg(fig: object) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "vaer", "svg.fonttype": "none"}):
        fig.savefig(  # type: ignore[attr-defined]
            buffer, format="svg", bbox_inches="tight", metadata={"Date": None}, dpi=150
        )
    plt.close(fig)  # type: ignore[arg-type]
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    return _FONT_FAMILY.sub(_plain_families, text)


_FONT_FAMILY = re.compile(r"font-family: ([^;\"]+)")


def _plain_families(found: re.Match[str]) -> str:
    """``font-family: 'DejaVu Sans', 'Vaer CJK SC'`` as ``font-family: DejaVu Sans,Vaer CJK
    SC``: WeasyPrint splits an SVG's font list at commas without trimming the spaces, so
    it would look for " 'Vaer CJK SC" and draw Chinese labels with another font (or
    none) in the PDF. Browsers read both forms alike."""
    names = (name.strip().strip("'\"") for name in found.group(1).split(","))
    return "font-family: " + ",".join(names)


@cjk_figure
def cate_histogram(
    cate: pd.DataFrame, ate: pd.DataFrame, labels: ReportLabels | None = None
) -> str:
    """Histogram of per-unit effects, one panel per estimator, with the DR ATE marked;
    the axis names the treatment and outcome by their labels."""
    names = labels or ReportLabels()
    words = names.words
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    estimators = list(dict.fromkeys(cate["estimator"]))
    fig, axes = plt.subplots(
        1, len(estimators), figsize=(4.2 * len(estimators), 3.0), squeeze=False
    )
    dr = ate[ate["se_type"].str.contains("DR")].set_index("estimator")
    for ax, label in zip(axes[0], estimators, strict=True):
        values = cate.loc[cate["estimator"] == label, "tau_hat"].to_numpy()
        ax.hist(values, bins=40, color="#4C72B0", alpha=0.85)
        if label in dr.index:
            ax.axvline(
                float(dr.loc[label, "estimate"]), color="#C44E52", lw=2, label=words("fig.ate")
            )
            ax.legend(frameon=False)
        ax.set_title(label)
        ax.set_xlabel(words("fig.cate_x", treatment=names.treatment, outcome=names.outcome))
        ax.set_ylabel(words("fig.firms"))
        ax.grid(alpha=0.3)
        ax.set_xlim(*np.quantile(values, [0.001, 0.999]))
    fig.tight_layout()
    return _svg(fig)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@cjk_figure
def treatment_overlap(treatment: pd.DataFrame, labels: ReportLabels | None = None) -> str:
    """Treatment distribution and overlap: histogram of T, and T against its prediction.

    The left panel is the distribution of the treatment (named by its label); the right
    panel shows the
    cross-fitted prediction E[T | X, W] against T (a 2-D histogram). Overlap for a
    continuous treatment means T still varies given the features: a cloud, not a line
    (Hirano and Imbens, 2004, on the generalised propensity score).
    """
    names = labels or ReportLabels()
    words = names.words
    name = words("fig.treatment_named", treatment=names.treatment)
    plt = _pyplot()
    t = treatment["treatment"].to_numpy(dtype=float)
    t_hat = treatment["t_hat"].to_numpy(dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.2))
    axes[0].hist(t, bins=40, color="#4C72B0", alpha=0.85)
    axes[0].set_xlabel(name)
    axes[0].set_ylabel(words("fig.firms"))
    axes[0].set_title(words("fig.treatment_title"))
    low, high = np.quantile(np.concatenate([t, t_hat]), [0.005, 0.995])
    counts, xedges, yedges = np.histogram2d(t_hat, t, bins=40, range=[[low, high], [low, high]])
    axes[1].imshow(
        np.log1p(counts.T),
        origin="lower",
        extent=(xedges[0], xedges[-1], yedges[0], yedges[-1]),
        aspect="auto",
        cmap="Blues",
        interpolation="nearest",
    )
    axes[1].plot([low, high], [low, high], color="#C44E52", lw=1, ls="--")
    axes[1].set_xlabel(words("fig.treatment_pred"))
    axes[1].set_ylabel(name)
    axes[1].set_title(words("fig.overlap_title"))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def channel_shares(channels: pd.DataFrame, labels: ReportLabels | None = None) -> str:
    """Share of the effect heterogeneity carried by each mechanism channel, with 95% CIs
    where printed (withheld for forests by default)."""
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    first = channels["estimator"].iloc[0] if "estimator" in channels else None
    rows = channels[channels["estimator"] == first] if first is not None else channels
    rows = rows.sort_values("share")
    fig, ax = plt.subplots(figsize=(6.4, 0.36 * len(rows) + 1.2))
    share = rows["share"].to_numpy(float) * 100
    ax.barh(np.arange(len(rows)), share, color="#4C72B0", alpha=0.85)
    if {"ci_low", "ci_high"} <= set(rows.columns) and rows["ci_low"].notna().all():
        err = np.vstack(
            [
                share - rows["ci_low"].to_numpy(float) * 100,
                rows["ci_high"].to_numpy(float) * 100 - share,
            ]
        )
        ax.errorbar(share, np.arange(len(rows)), xerr=np.clip(err, 0, None), fmt="none", c="k")
    ax.set_yticks(np.arange(len(rows)), rows["channel"].astype(str).tolist())
    ax.set_xlabel(words("fig.share_x") + (f" — {first}" if first else ""))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def channel_heatmap(
    by_type: pd.DataFrame, value: str = "mean_abs_shap", labels: ReportLabels | None = None
) -> str:
    """Heatmap of each channel's contribution (mean |SHAP|) within each firm type."""
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    frame = by_type.copy()
    if "estimator" in frame:
        frame = frame[frame["estimator"] == frame["estimator"].iloc[0]]
    frame["type"] = frame["dimension"].astype(str) + ": " + frame["level"].astype(str)
    grid = frame.pivot_table(index="type", columns="channel", values=value, sort=False)
    fig, ax = plt.subplots(figsize=(1.3 * grid.shape[1] + 2.6, 0.32 * grid.shape[0] + 1.4))
    image = ax.imshow(grid.to_numpy(float), aspect="auto", cmap="Blues", interpolation="nearest")
    ax.set_xticks(np.arange(grid.shape[1]), [str(c) for c in grid.columns], rotation=30, ha="right")
    ax.set_yticks(np.arange(grid.shape[0]), [str(i) for i in grid.index])
    fig.colorbar(image, ax=ax, label=value.replace("_", " "))
    ax.set_title(words("fig.heatmap_title"))
    fig.tight_layout()
    return _svg(fig)


EVENT_STUDY_PEERS = (
    ("event_study", "did.fig.sa", "s", "#4C72B0", 0.18),
    ("twfe", "did.fig.twfe", "D", "#55A868", -0.18),
    ("dml_did", "did.fig.dml", "^", "#8172B2", 0.32),
)
"""Event studies drawn beside Callaway-Sant'Anna: (estimator, key of its label in the
report's words, marker, colour, horizontal offset)."""


@cjk_figure
def event_study(aggregates: pd.DataFrame, labels: ReportLabels | None = None) -> str | None:
    """The event-study path: ATT by years since adoption with pointwise intervals (bars)
    and the uniform band over all event times (shaded), from ``did_aggregates``; the
    Sun-Abraham and plain TWFE event studies beside it when present (shifted sideways)."""
    dynamic = aggregates[(aggregates["aggregation"] == "dynamic") & ~aggregates["overall"]]
    estimator = (
        dynamic["estimator"].astype(str)
        if "estimator" in dynamic
        else pd.Series("cs_did", index=dynamic.index)
    )
    rows = dynamic[estimator == "cs_did"]
    if rows.empty:
        return None
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    rows = rows.sort_values("key")
    e = rows["key"].to_numpy(float)
    estimate = rows["estimate"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    banded = rows["band_low"].notna().to_numpy()  # a universal base's reference year has none
    if banded.any():
        ax.fill_between(
            e, rows["band_low"].to_numpy(float), rows["band_high"].to_numpy(float),
            where=banded, color="#4C72B0", alpha=0.15, step="mid", label=words("did.fig.band"),
        )  # fmt: skip
    intervals = bool(rows["ci_low"].notna().any())
    pre = e < 0
    err = np.vstack(
        [estimate - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - estimate]
    )
    peers = [p for p in EVENT_STUDY_PEERS if (estimator == p[0]).any()]
    name = "Callaway-Sant'Anna, " if peers else ""
    pointwise = words("did.fig.pointwise")
    phases = ((pre, "#8C8C8C", words("did.fig.before")), (~pre, "#C44E52", words("did.fig.after")))
    for mask, colour, label in phases:
        ax.errorbar(
            e[mask], estimate[mask], yerr=err[:, mask], fmt="o", color=colour, capsize=3,
            label=f"{name}{label}" + (pointwise if intervals else ""),
        )  # fmt: skip
    for key, label_key, marker, colour, offset in peers:
        label = words(label_key)
        peer = dynamic[estimator == key].sort_values("key")
        x = peer["key"].to_numpy(float) + offset
        y = peer["estimate"].to_numpy(float)
        shown = bool(peer["ci_low"].notna().any())
        yerr = (
            np.vstack([y - peer["ci_low"].to_numpy(float), peer["ci_high"].to_numpy(float) - y])
            if shown
            else None
        )
        ax.errorbar(
            x, y, yerr=yerr, fmt=marker, color=colour, mfc="white", ms=4.5, capsize=2, lw=0.8,
            label=label + (pointwise if shown else ""),
        )  # fmt: skip
    ax.axhline(0.0, color="k", lw=0.8)
    ax.axvline(-0.5, color="k", lw=0.8, ls="--")
    outcome = str(rows["outcome"].iloc[0]) if "outcome" in rows else "outcome"
    ax.set_xlabel(words("did.fig.event_time"))
    ax.set_ylabel(words("did.fig.att_on", outcome=outcome))
    ax.set_title(
        words("did.fig.event_study" if peers else "did.fig.event_study_cs")
        + ("" if intervals else words("did.fig.withheld"))
    )
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


BACON_COLOURS = {
    "treated_vs_never": ("#4C72B0", "did.fig.bacon_never"),
    "earlier_vs_later": ("#55A868", "did.fig.bacon_earlier"),
    "later_vs_earlier": ("#C44E52", "did.fig.bacon_later"),
}
"""Goodman-Bacon comparison type -> (colour, key of its label in the report's words)."""


@cjk_figure
def bacon_scatter(
    bacon: pd.DataFrame, aggregates: pd.DataFrame | None = None, labels: ReportLabels | None = None
) -> str | None:
    """The Goodman-Bacon decomposition (``bacon``): each 2x2 comparison's estimate against
    its weight, coloured by comparison type, with the TWFE coefficient (``did_aggregates``,
    estimator ``twfe``) as a horizontal line and, where it differs (an unbalanced panel),
    the weighted mean of the 2x2s (the balanced subpanel's TWFE) dotted."""
    if bacon.empty:
        return None
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    for kind, (colour, label) in BACON_COLOURS.items():
        rows = bacon[bacon["comparison_type"] == kind]
        if len(rows):
            ax.scatter(rows["weight"], rows["estimate"], s=40, color=colour, label=words(label),
                       edgecolor="white", linewidth=0.5, zorder=3)  # fmt: skip
    weighted = float((bacon["weight"] * bacon["estimate"]).sum() / bacon["weight"].sum())
    twfe = None
    if aggregates is not None and "estimator" in aggregates:
        row = aggregates[
            (aggregates["estimator"] == "twfe") & (aggregates["aggregation"] == "simple")
        ]
        twfe = float(row["estimate"].iloc[0]) if len(row) else None
    if twfe is not None:
        ax.axhline(twfe, color="k", lw=1.0, label=words("did.fig.twfe_coef", value=f"{twfe:.3g}"))
    if twfe is None or abs(weighted - twfe) > 1e-9 * max(1.0, abs(twfe)):
        label = words("did.fig.bacon_mean", value=f"{weighted:.3g}")
        ax.axhline(weighted, color="k", lw=1.0, ls=":", label=label)
    ax.axhline(0.0, color="#8C8C8C", lw=0.6)
    ax.set_xlabel(words("did.fig.bacon_x"))
    ax.set_ylabel(words("did.fig.bacon_y"))
    ax.set_title(words("did.fig.bacon_title"))
    ax.legend(frameon=False, fontsize=7.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def att_gt_heatmap(att_gt: pd.DataFrame, labels: ReportLabels | None = None) -> str | None:
    """ATT(g, t) as a cohort x year heat map (``att_gt``): each cell's estimate, starred
    where its pointwise interval excludes zero; the reference cells of a universal base
    period and the cells not estimated are blank. Callaway-Sant'Anna's cells only (the
    ``estimator`` column, when present)."""
    if "estimator" in att_gt:
        att_gt = att_gt[att_gt["estimator"] == "cs_did"]
    if att_gt.empty:
        return None
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    grid, low, high = (
        att_gt.pivot(index="group", columns="time", values=column)
        .sort_index(axis=0)
        .sort_index(axis=1)
        for column in ("estimate", "ci_low", "ci_high")
    )
    values = grid.to_numpy(float)
    limit = float(np.nanmax(np.abs(values))) or 1.0
    fig, ax = plt.subplots(figsize=(0.75 * grid.shape[1] + 2.4, 0.5 * grid.shape[0] + 1.4))
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(values[i, j]):
                lo, hi = low.to_numpy(float)[i, j], high.to_numpy(float)[i, j]
                significant = bool(np.isfinite(lo) and np.isfinite(hi) and not lo <= 0 <= hi)
                colour = "white" if abs(values[i, j]) > 0.6 * limit else "black"
                ax.text(j, i, f"{values[i, j]:.2f}{'*' if significant else ''}", ha="center",
                        va="center", fontsize=7, color=colour)  # fmt: skip
    ax.set_xticks(np.arange(grid.shape[1]), [str(int(t)) for t in grid.columns])
    ax.set_yticks(np.arange(grid.shape[0]), [str(int(g)) for g in grid.index])
    ax.set_xlabel(words("did.fig.year"))
    ax.set_ylabel(words("did.fig.cohort"))
    shown = bool(np.isfinite(low.to_numpy(float)).any())
    ax.set_title(words("did.fig.att_gt_starred") if shown else "ATT(g, t)")
    fig.colorbar(image, ax=ax, label="ATT")
    fig.tight_layout()
    return _svg(fig)


HONEST_TITLES = {
    "relative_magnitude": ("honest.fig.rm", "honest.fig.rm_x"),
    "smoothness": ("honest.fig.sd", "honest.fig.sd_x"),
}
"""Honest-DiD method -> keys of its panel title and axis label in the report's words."""


@cjk_figure
def honest_did(
    table: pd.DataFrame, breakdown: pd.DataFrame | None = None, labels: ReportLabels | None = None
) -> str | None:
    """Rambachan-Roth robust intervals against the bound (``honest_did``), one panel per
    method, for the average post-period effect (or the first post event time): the usual
    interval (exact parallel trends) at the left, the robust ones at each bound, and the
    breakdown value (``honest_did_breakdown``) dashed."""
    if table.empty:
        return None
    target = "average" if (table["target"] == "average").any() else str(table["target"].iloc[0])
    rows = table[table["target"] == target]
    methods = [m for m in HONEST_TITLES if (rows["method"] == m).any()]
    if not methods:
        return None
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(methods), figsize=(4.4 * len(methods), 3.4), squeeze=False)
    original = rows[rows["method"] == "original"]
    for ax, method in zip(axes[0], methods, strict=True):
        robust = rows[rows["method"] == method].sort_values("bound")
        bound = robust["bound"].to_numpy(float)
        step = float(np.min(np.diff(bound))) if len(bound) > 1 else max(float(bound[0]), 1.0)
        low, high = robust["ci_low"].to_numpy(float), robust["ci_high"].to_numpy(float)
        finite = np.concatenate([low[np.isfinite(low)], high[np.isfinite(high)], [0.0]])
        span = float(np.ptp(finite)) or 1.0
        floor, ceiling = finite.min() - 0.1 * span, finite.max() + 0.1 * span
        low, high = np.clip(low, floor, ceiling), np.clip(high, floor, ceiling)
        ax.vlines(bound, low, high, color="#4C72B0", lw=2.5, label=words("honest.fig.robust"))
        if len(original) and original["ci_low"].notna().all():  # withheld by default
            x0 = float(bound.min()) - 0.6 * step
            ax.vlines(x0, original["ci_low"], original["ci_high"], color="#C44E52", lw=2.5,
                      label=words("honest.fig.original"))  # fmt: skip
        if breakdown is not None and not breakdown.empty:
            hit = breakdown[(breakdown["method"] == method) & (breakdown["target"] == target)]
            if len(hit) and np.isfinite(float(hit["breakdown"].iloc[0])):
                value = float(hit["breakdown"].iloc[0])
                label = words("honest.fig.breakdown", value=f"{value:.3g}")
                ax.axvline(value, color="k", ls="--", lw=0.9, label=label)
        ax.axhline(0.0, color="#8C8C8C", lw=0.8)
        title, xlabel = HONEST_TITLES[method]
        shown = target.replace("e=", words("honest.fig.event_time") + " ")
        ax.set_title(f"{words(title)}: {shown}")
        ax.set_xlabel(words(xlabel))
        ax.set_ylabel(words("honest.fig.effect"))
        ax.legend(frameon=False, fontsize=7.5)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def type_event_study(
    types: pd.DataFrame, tests: pd.DataFrame | None = None, labels: ReportLabels | None = None
) -> str | None:
    """The event study by firm type (``did_types``): one row of small multiples per
    dimension, one panel per level, each with the level's ATT by years since adoption and
    its pointwise intervals (where printed), drawn as :func:`event_study` draws the overall
    path, on a common y axis; each row's first panel quotes the equality test of the levels'
    overall event-study ATTs (``did_type_tests``) when given."""
    dynamic = types[(types["aggregation"] == "dynamic") & ~types["overall"].astype(bool)]
    if dynamic.empty:
        return None
    words = (labels or ReportLabels()).words
    plt = _pyplot()
    dimensions = list(dict.fromkeys(dynamic["dimension"].astype(str)))
    levels = {d: sorted(set(dynamic.loc[dynamic["dimension"] == d, "level"].astype(str)))
              for d in dimensions}  # fmt: skip
    n_cols = max(len(v) for v in levels.values())
    fig, axes = plt.subplots(
        len(dimensions), n_cols, figsize=(2.6 * n_cols + 0.6, 2.1 * len(dimensions) + 0.4),
        squeeze=False, sharex=True, sharey=True,
    )  # fmt: skip
    intervals = bool(dynamic["ci_low"].notna().any())
    for row, dimension in enumerate(dimensions):
        for col in range(n_cols):
            ax = axes[row, col]
            if col >= len(levels[dimension]):
                ax.set_visible(False)
                if row > 0:  # the panel above carries the x axis of this column
                    axes[row - 1, col].tick_params(labelbottom=True)
                    axes[row - 1, col].set_xlabel(words("did.fig.since"), fontsize=8)
                continue
            level = levels[dimension][col]
            rows = dynamic[
                (dynamic["dimension"] == dimension) & (dynamic["level"].astype(str) == level)
            ].sort_values("key")
            e = rows["key"].to_numpy(float)
            estimate = rows["estimate"].to_numpy(float)
            err = np.vstack(
                [estimate - rows["ci_low"].to_numpy(float),
                 rows["ci_high"].to_numpy(float) - estimate]
            )  # fmt: skip
            for mask, colour in ((e < 0, "#8C8C8C"), (e >= 0, "#C44E52")):
                ax.errorbar(e[mask], estimate[mask], yerr=err[:, mask] if intervals else None,
                            fmt="o", ms=3.5, color=colour, capsize=2, lw=0.9)  # fmt: skip
            ax.axhline(0.0, color="k", lw=0.7)
            ax.axvline(-0.5, color="k", lw=0.7, ls="--")
            n = rows["n"].iloc[0] if "n" in rows and len(rows) else None
            firms = words("did.fig.firms", n=f"{int(n):,}") if n else ""
            ax.set_title(f"{dimension} = {level}{firms}",
                         fontsize=8)  # fmt: skip
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel("ATT", fontsize=8)
                quoted = _equality_quote(tests, dimension, words)
                if quoted:
                    ax.text(0.02, 0.97, quoted, transform=ax.transAxes, fontsize=6.5,
                            va="top", ha="left")  # fmt: skip
            if row == len(dimensions) - 1:
                ax.set_xlabel(words("did.fig.since"), fontsize=8)
    outcome = str(dynamic["outcome"].iloc[0]) if "outcome" in dynamic else "outcome"
    fig.suptitle(
        words("did.fig.by_type", outcome=outcome)
        + ("" if intervals else words("did.fig.withheld")),
        fontsize=9,
    )
    fig.tight_layout()
    return _svg(fig)


def _equality_quote(tests: pd.DataFrame | None, dimension: str, words: Words) -> str | None:
    """``equal by type: p = 0.012`` for the dynamic overall equality test of a dimension."""
    if tests is None or tests.empty or "key" not in tests:
        return None
    rows = tests[
        (tests["dimension"] == dimension) & (tests["test"] == "equality")
        & (tests["aggregation"] == "dynamic") & tests["key"].isna()
    ]  # fmt: skip
    if rows.empty or not np.isfinite(float(rows["p_value"].iloc[0])):
        return None
    return words("did.fig.levels_equal", p=f"{float(rows['p_value'].iloc[0]):.3g}")
