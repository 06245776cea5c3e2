"""The self-contained HTML report (CSS inline, figures as inline SVG, no network)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from scipy import stats

from vaer.reporting.attribution_figures import attribution_context
from vaer.reporting.bundle import ReportBundle
from vaer.reporting.figures import cate_histogram
from vaer.reporting.format import sig, stars
from vaer.reporting.heterogeneity import heterogeneity_context
from vaer.reporting.robustness import robustness_context


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vaer.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sig"] = sig
    return env


def _ate_rows(ate: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for raw in ate.to_dict("records"):
        record = {str(k): v for k, v in raw.items()}
        se = float(record["se"])
        if not math.isfinite(se):  # e.g. econml offers no analytic interval (DMLIV)
            p_value = float("nan")
        else:
            p_value = 2 * stats.norm.sf(abs(record["estimate"] / se)) if se > 0 else 0.0
        rows.append({**record, "stars": stars(p_value), "p_value": p_value})
    return rows


def headline(ate: pd.DataFrame) -> dict[str, Any] | None:
    """The sentence-level headline: the first estimator's cluster-robust DR ATE."""
    dr = ate[ate["se_type"].str.contains("DR")]
    if dr.empty:
        return None
    first = {str(k): v for k, v in dr.iloc[0].to_dict().items()}
    first["significant"] = not (first["ci_low"] <= 0 <= first["ci_high"])
    return first


def render_html(bundle: ReportBundle) -> str:
    """Render the report of one run from its bundle."""
    ate = bundle.tables["ate"]
    cate = bundle.tables["cate"]
    template = _environment().get_template("report.html.j2")
    return template.render(
        meta=bundle.meta,
        tables=bundle.tables,
        headline=headline(ate),
        ate_rows=_ate_rows(ate),
        cate_figure=cate_histogram(cate, ate),
        cate_summary=cate.groupby("estimator", sort=False)["tau_hat"]
        .describe()
        .reset_index()
        .to_dict("records"),
        het=heterogeneity_context(bundle.tables),
        robustness=robustness_context(bundle.tables),
        attribution=attribution_context(bundle.tables),
    )


def write_html(bundle: ReportBundle, folder: Path) -> Path:
    """Render and write ``report.html`` into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    path.write_text(render_html(bundle), encoding="utf-8")
    return path
