"""The robustness section of the report: rows of the refutation and sensitivity tables,
a verdict per check worded as a test at its level, and a forest plot of the refits (inline
SVG)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from vaer.reporting.figures import _svg
from vaer.reporting.fonts import cjk_figure
from vaer.reporting.labels import ReportLabels

TEST_COLUMNS = ("reference_se", "test_p", "level", "false_alarm")


def passed_flags(column: pd.Series) -> np.ndarray:
    """Whether each row passed, from booleans or their text as read back from a CSV."""
    return column.astype(str).str.lower().isin({"true", "1", "1.0", "yes"}).to_numpy()


@cjk_figure
def refutation_plot(table: pd.DataFrame, labels: ReportLabels | None = None) -> str:
    """Forest plot: each refit's estimate and 95% CI, with the value its rule compares with;
    rows flagged by their test are red. The axis names the treatment by its label."""
    names = labels or ReportLabels()
    treatment, words = names.treatment, names.words
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table.reset_index(drop=True)
    height = 0.8 + 0.28 * len(rows)
    fig, ax = plt.subplots(figsize=(7.5, height))
    y = np.arange(len(rows))[::-1]
    colours = ["#4C72B0" if ok else "#C44E52" for ok in passed_flags(rows["passed"])]
    ax.hlines(y, rows["ci_low"], rows["ci_high"], colors=colours, lw=2)
    ax.scatter(rows["estimate"], y, c=colours, zorder=3, s=18)
    reference = words("fig.reference")
    ax.scatter(rows["reference"], y, marker="|", c="#333333", s=80, zorder=4, label=reference)
    ax.axvline(0.0, color="#999999", lw=1, ls=":")
    ax.set_yticks(y, [f"{c}: {v}" for c, v in zip(rows["check"], rows["variant"], strict=True)])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel(words("fig.refit_x", treatment=treatment))
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def check_verdicts(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per check, in table order: its false-alarm rate (``alpha``, NaN for a
    table written before checks had one), whether any row is flagged, and the flagged
    variants."""
    passed = passed_flags(table["passed"])
    out = []
    for check in dict.fromkeys(table["check"]):
        mask = (table["check"] == check).to_numpy()
        rows = table[mask]
        alpha = float(rows["false_alarm"].iloc[0]) if "false_alarm" in rows else math.nan
        flagged = [str(v) for v, ok in zip(rows["variant"], passed[mask], strict=True) if not ok]
        out.append({"check": check, "alpha": alpha, "flagged": flagged})
    return out


def family_verdict(table: pd.DataFrame, alpha: float | None) -> dict[str, Any] | None:
    """The checks taken together (``family_p``: Holm across the run's checks), or None for
    a table written without it or checks without one common false-alarm rate.

    ``flagged`` are the checks whose Holm p-value is at most ``alpha``; ``alone`` those
    with a row flagged at its own level but not flagged together."""
    if alpha is None or "family_p" not in table.columns or not len(table):
        return None
    checks = table.assign(ok=passed_flags(table["passed"])).groupby("check", sort=False)
    family = checks.agg(p=("family_p", "first"), ok=("ok", "all"))
    if family["p"].isna().all():
        return None
    together = (family["p"] <= alpha).to_numpy()
    return {
        "n_checks": len(family),
        "alpha": alpha,
        "flagged": [str(c) for c in family.index[together]],
        "alone": [str(c) for c in family.index[~together & ~family["ok"].to_numpy()]],
    }


def common_false_alarm(checks: list[dict[str, Any]]) -> float | None:
    """The false-alarm rate shared by every check (:func:`check_verdicts`), or None."""
    alphas = {c["alpha"] for c in checks if np.isfinite(c["alpha"])}
    return alphas.pop() if len(alphas) == 1 else None


def robustness_context(
    tables: dict[str, pd.DataFrame], labels: ReportLabels | None = None
) -> dict[str, Any] | None:
    """What the robustness partial needs, or None if the run has no robustness table
    (``labels`` name the treatment in the figure)."""
    table = tables.get("robustness")
    if table is None:
        return None
    # tables written before the checks had stated levels lack these columns
    table = table.assign(**{c: np.nan for c in TEST_COLUMNS if c not in table.columns})
    sensitivity = tables.get("sensitivity")
    summary = None
    if sensitivity is not None and not sensitivity.empty:
        summary = (
            sensitivity.groupby("estimator", sort=False)[["estimate", "rv", "rv_ci", "rv_econml"]]
            .first()
            .reset_index()
            .to_dict("records")
        )
    checks = check_verdicts(table) if len(table) else []
    alpha = common_false_alarm(checks)
    return {
        "rows": table.to_dict("records"),
        "checks": checks,
        "n_checks": len(checks),
        "n_flagged": sum(bool(c["flagged"]) for c in checks),
        "alpha": alpha,
        "family": family_verdict(table, alpha),
        "figure": refutation_plot(table, labels) if len(table) else "",
        "sensitivity_rows": [] if sensitivity is None else sensitivity.to_dict("records"),
        "sensitivity_summary": summary,
    }
