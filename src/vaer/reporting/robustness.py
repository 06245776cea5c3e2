"""The robustness section of the report: rows of the refutation and sensitivity tables and
a forest plot of the refits (inline SVG)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vaer.reporting.figures import _svg


def refutation_plot(table: pd.DataFrame) -> str:
    """Forest plot: each refit's estimate and 95% CI, with the value its rule compares with."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table.reset_index(drop=True)
    height = 0.8 + 0.28 * len(rows)
    fig, ax = plt.subplots(figsize=(7.5, height))
    y = np.arange(len(rows))[::-1]
    colours = ["#4C72B0" if ok else "#C44E52" for ok in rows["passed"].astype(bool)]
    ax.hlines(y, rows["ci_low"], rows["ci_high"], colors=colours, lw=2)
    ax.scatter(rows["estimate"], y, c=colours, zorder=3, s=18)
    ax.scatter(rows["reference"], y, marker="|", c="#333333", s=80, zorder=4, label="reference")
    ax.axvline(0.0, color="#999999", lw=1, ls=":")
    ax.set_yticks(y, [f"{c}: {v}" for c, v in zip(rows["check"], rows["variant"], strict=True)])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("re-estimated effect of VA (95% CI); red = failed")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def robustness_context(tables: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    """What the robustness partial needs, or None if the run has no robustness table."""
    table = tables.get("robustness")
    if table is None:
        return None
    sensitivity = tables.get("sensitivity")
    summary = None
    if sensitivity is not None and not sensitivity.empty:
        summary = (
            sensitivity.groupby("estimator", sort=False)[["estimate", "rv", "rv_ci", "rv_econml"]]
            .first()
            .reset_index()
            .to_dict("records")
        )
    return {
        "rows": table.to_dict("records"),
        "n_passed": int(table["passed"].astype(bool).sum()),
        "n_rows": len(table),
        "figure": refutation_plot(table) if len(table) else "",
        "sensitivity_rows": [] if sensitivity is None else sensitivity.to_dict("records"),
        "sensitivity_summary": summary,
    }
