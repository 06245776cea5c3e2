"""Figures of the report, returned as inline SVG text (no files, no network)."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd


def _svg(fig: object) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "vaer", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    return text


def cate_histogram(cate: pd.DataFrame, ate: pd.DataFrame) -> str:
    """Histogram of per-unit effects, one panel per estimator, with the DR ATE marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(cate["estimator"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.0), squeeze=False)
    dr = ate[ate["se_type"].str.contains("DR")].set_index("estimator")
    for ax, label in zip(axes[0], labels, strict=True):
        values = cate.loc[cate["estimator"] == label, "tau_hat"].to_numpy()
        ax.hist(values, bins=40, color="#4C72B0", alpha=0.85)
        if label in dr.index:
            ax.axvline(float(dr.loc[label, "estimate"]), color="#C44E52", lw=2, label="ATE")
            ax.legend(frameon=False)
        ax.set_title(label)
        ax.set_xlabel("effect of VA on resilience (tau_hat)")
        ax.set_ylabel("firms")
        ax.grid(alpha=0.3)
        ax.set_xlim(*np.quantile(values, [0.001, 0.999]))
    fig.tight_layout()
    return _svg(fig)
