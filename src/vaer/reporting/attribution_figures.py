"""Figures and table rows of the attribution sections (inline SVG, computed from tables).

Every function takes tables of the run's :class:`~vaer.reporting.bundle.ReportBundle`
(``shap_channels``, ``shap_by_type``, ``shap_values``, ``shap_data``, ``shap_features``,
``mechanisms``) and draws them; nothing is estimated here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vaer.reporting.figures import _svg
from vaer.reporting.fonts import cjk_figure
from vaer.reporting.labels import ReportLabels

COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@cjk_figure
def channel_share_bars(channels: pd.DataFrame, names: ReportLabels | None = None) -> str:
    """Horizontal bars of each channel's share of the variance of the channels'
    contributions, with the table's intervals (whiskers from the share to each bound)."""
    words = (names or ReportLabels()).words
    plt = _pyplot()
    labels = list(dict.fromkeys(channels["estimator"]))
    order = channels.groupby("channel", sort=False)["share"].mean().sort_values().index.tolist()
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(order) * max(len(labels), 1) + 1.2))
    height = 0.8 / max(len(labels), 1)
    for k, label in enumerate(labels):
        rows = channels[channels["estimator"] == label].set_index("channel").reindex(order)
        y = np.arange(len(order)) + (k - (len(labels) - 1) / 2) * height
        share = rows["share"].to_numpy(dtype=float)
        low = rows["ci_low"].to_numpy(dtype=float)
        high = rows["ci_high"].to_numpy(dtype=float)
        err = np.vstack([share - low, high - share])
        ax.barh(y, share, height=height * 0.9, color=COLORS[k % len(COLORS)], label=label)
        if np.isfinite(err).all():
            ax.errorbar(share, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="#222", lw=1)
    ax.set_yticks(np.arange(len(order)), order)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xlabel(words("fig.channel_share_x"))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return _svg(fig)


def _colour_values(values: pd.Series) -> np.ndarray:
    """Feature values scaled to [0, 1] for colouring (categories by sorted level code)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numeric = values.to_numpy(dtype=float)
    else:
        numeric = pd.factorize(values.astype(str), sort=True)[0].astype(float)
    low, high = np.nanquantile(numeric, [0.05, 0.95]) if len(numeric) else (0.0, 1.0)
    span = high - low if high > low else 1.0
    return np.asarray(np.clip((numeric - low) / span, 0, 1))


@cjk_figure
def beeswarm(
    shap_values: pd.DataFrame,
    shap_data: pd.DataFrame,
    estimator: str,
    top: int = 8,
    labels: ReportLabels | None = None,
) -> str:
    """Per-unit SHAP values of the ``top`` features (by mean |SHAP|), coloured by value;
    features named by their display labels."""
    names = labels or ReportLabels()
    plt = _pyplot()
    rows = shap_values[shap_values["estimator"] == estimator].set_index("unit")
    features = [c for c in rows.columns if c != "estimator"]
    ranked = rows[features].abs().mean().sort_values(ascending=False).index[:top][::-1]
    data = shap_data.set_index("unit").reindex(rows.index)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(ranked) + 1.3))
    scatter = None
    for k, feature in enumerate(ranked):
        values = rows[feature].to_numpy(dtype=float)
        colour = _colour_values(data[feature]) if feature in data.columns else np.zeros(len(values))
        jitter = rng.uniform(-0.3, 0.3, size=len(values))
        scatter = ax.scatter(
            values,
            k + jitter,
            c=colour,
            cmap="coolwarm",
            s=5,
            alpha=0.6,
            vmin=0,
            vmax=1,
            rasterized=True,  # thousands of points: one embedded image, not SVG paths
        )
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_yticks(np.arange(len(ranked)), [names.of(str(f)) for f in ranked])
    words = names.words
    ax.set_xlabel(words("fig.beeswarm_x", estimator=estimator))
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, ticks=[0, 1], pad=0.01)
        bar.ax.set_yticklabels([words("fig.low"), words("fig.high")])
        bar.set_label(words("fig.feature_value"))
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def dependence_plots(
    shap_values: pd.DataFrame,
    shap_data: pd.DataFrame,
    estimator: str,
    proxies: list[str],
    labels: ReportLabels | None = None,
) -> str:
    """SHAP value against the value of each proxy (one panel per proxy, named by its
    display label)."""
    names = labels or ReportLabels()
    plt = _pyplot()
    rows = shap_values[shap_values["estimator"] == estimator].set_index("unit")
    data = shap_data.set_index("unit").reindex(rows.index)
    shown = [p for p in proxies if p in rows.columns and p in data.columns]
    if not shown:
        return ""
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 2.9), squeeze=False)
    for ax, proxy in zip(axes[0], shown, strict=True):
        ax.scatter(data[proxy], rows[proxy], s=4, alpha=0.4, color="#4C72B0", rasterized=True)
        ax.axhline(0, color="#888", lw=0.8)
        ax.set_xlabel(names.of(proxy))
        ax.set_ylabel(names.words("fig.shap_value"))
        ax.grid(alpha=0.3)
    fig.suptitle(names.words("fig.dependence_title", estimator=estimator), fontsize=10)
    fig.tight_layout()
    return _svg(fig)


@cjk_figure
def type_share_heatmap(
    by_type: pd.DataFrame, estimator: str, names: ReportLabels | None = None
) -> str:
    """Heatmap of channel shares (columns) by firm-type level (rows): each channel's part of
    the mean squared contribution within the level."""
    plt = _pyplot()
    rows = by_type[by_type["estimator"] == estimator].copy()
    rows["group"] = rows["dimension"] + " = " + rows["level"].astype(str)
    matrix = rows.pivot_table(index="group", columns="channel", values="share", sort=False)
    fig, ax = plt.subplots(figsize=(1.1 * matrix.shape[1] + 3, 0.34 * matrix.shape[0] + 1.6))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="Blues", aspect="auto", vmin=0)
    ax.set_xticks(np.arange(matrix.shape[1]), list(matrix.columns), rotation=35, ha="right")
    ax.set_yticks(np.arange(matrix.shape[0]), list(matrix.index))
    shares = matrix.to_numpy(dtype=float)
    dark = 0.6 * np.nanmax(shares) if np.isfinite(shares).any() else np.inf
    for (i, j), value in np.ndenumerate(shares):
        colour = "white" if value > dark else "#1d2330"
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    words = (names or ReportLabels()).words
    fig.colorbar(image, ax=ax, pad=0.01, label=words("fig.channel_share"))
    ax.set_title(words("fig.type_share_title", estimator=estimator), fontsize=10)
    fig.tight_layout()
    return _svg(fig)


def attribution_context(
    tables: dict[str, pd.DataFrame], top: int = 8, labels: ReportLabels | None = None
) -> dict[str, Any] | None:
    """Everything the attribution and mechanism partials show, or None without SHAP tables.

    ``tables`` are the bundle's own (features by column name, to find their SHAP values);
    ``labels`` name the features in the figures and the mechanism rows.
    """
    if "shap_summary" not in tables and "mechanisms" not in tables:
        return None
    names = labels or ReportLabels()
    context: dict[str, Any] = {}
    summary = tables.get("shap_summary")
    if summary is not None:
        context["summary"] = summary.to_dict("records")
    channels = tables.get("shap_channels")
    if channels is not None and not channels.empty:
        context["channels"] = channels.to_dict("records")
        context["channel_figure"] = channel_share_bars(channels, names)
    values, data = tables.get("shap_values"), tables.get("shap_data")
    estimators = list(dict.fromkeys(values["estimator"])) if values is not None else []
    features = tables.get("shap_features")
    per_estimator = []
    for estimator in estimators:
        item: dict[str, Any] = {"estimator": estimator}
        if data is not None:
            item["beeswarm"] = beeswarm(values, data, estimator, top, names)  # type: ignore[arg-type]
            if features is not None:
                has_channel = features["channel"].fillna("").astype(str) != ""
                mine = features[(features["estimator"] == estimator) & has_channel]
                rank = "importance" if "importance" in mine.columns else "mean_abs_shap"
                proxies = mine.sort_values(rank, ascending=False)["feature"]
                item["dependence"] = dependence_plots(
                    values,  # type: ignore[arg-type]
                    data,
                    estimator,
                    [str(p) for p in proxies.head(3)],
                    names,
                )
        by_type = names.relabel_tables(tables).get("shap_by_type")
        if by_type is not None and not by_type.empty:
            item["heatmap"] = type_share_heatmap(by_type, estimator, names)
        per_estimator.append(item)
    context["estimators"] = per_estimator
    mechanisms = names.relabel_tables(tables).get("mechanisms")
    if mechanisms is not None and not mechanisms.empty:
        context["mechanisms"] = mechanisms[mechanisms["dimension"] == "all"].to_dict("records")
        context["mechanisms_by_type"] = mechanisms[mechanisms["dimension"] != "all"].to_dict(
            "records"
        )
    return context
