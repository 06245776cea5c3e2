"""A run's headline in the MLflow UI: its description and metrics under fixed names.

The MLflow runs table shows a run's description (the ``mlflow.note.content`` tag,
Markdown) on the run's page and lets the user add any metric as a column. So each run
carries, from the same tables as the report's summary (:mod:`vaer.reporting.summary`):

- a description: the cluster-robust DR ATE with its interval for every estimator, the
  channel with the largest share of the effect's heterogeneity (or, without
  ``roles.mechanisms``, the modifier with the largest share) and the staggered DiD's
  overall ATT when the run has one;
- metrics whose names do not depend on the estimators a run used, so that runs of
  different configurations line up in one column: ``headline.ate``,
  ``headline.ate_ci_low``, ``headline.ate_ci_high`` (the first estimator's ATE, as the
  report's summary), ``headline.top_share`` and, with DiD, ``headline.did_att``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vaer.reporting.summary import did_headline, headline_ate, top_channels

NOTE_TAG = "mlflow.note.content"
HEADLINE_METRICS = (
    "headline.ate",
    "headline.ate_ci_low",
    "headline.ate_ci_high",
    "headline.top_share",
    "headline.did_att",
)
"""Every metric a headline may log (a run logs those its tables support)."""


@dataclass(frozen=True)
class Headline:
    """What a run found, in a few lines.

    Attributes
    ----------
    lines : tuple of str
        The description, one Markdown line each.
    values : dict
        Metric name (one of :data:`HEADLINE_METRICS`) -> value.
    """

    lines: tuple[str, ...]
    values: dict[str, float] = field(default_factory=dict)
    summary: str = ""

    def description(self) -> str:
        """The run's description (Markdown), for the ``mlflow.note.content`` tag: the
        one-line ``summary`` (what the runs table's Description column shows), then the
        details."""
        return "\n\n".join(part for part in (self.summary, "\n".join(self.lines)) if part)

    def metrics(self) -> dict[str, float]:
        """The headline metrics with finite values."""
        return {k: v for k, v in self.values.items() if math.isfinite(v)}


def _number(value: Any) -> str:
    return f"{float(value):.3g}" if pd.notna(value) else "n/a"


def _interval(row: Mapping[str, Any] | pd.Series) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    if pd.isna(low) or pd.isna(high):
        return ""
    return f" [{_number(low)}, {_number(high)}]"


def _ate_lines(
    ate: pd.DataFrame, first: Mapping[str, Any] | None
) -> tuple[list[str], dict[str, float]]:
    dr = ate[ate["se_type"].astype(str).str.contains("DR")]
    if dr.empty:
        return [], {}
    lines = [f"**ATE** ({dr['estimand'].iloc[0]}, cluster-robust CI):"]
    lines += [f"- {row['estimator']}: {_number(row['estimate'])}{_interval(row)}"
              for _, row in dr.iterrows()]  # fmt: skip
    shown = first or {}
    values = {
        "headline.ate": float(shown.get("estimate", math.nan)),
        "headline.ate_ci_low": float(shown.get("ci_low", math.nan)),
        "headline.ate_ci_high": float(shown.get("ci_high", math.nan)),
    }
    return lines, values


def _top_line(tables: Mapping[str, pd.DataFrame]) -> tuple[list[str], dict[str, float], str]:
    for name, kind, column in (("shap_channels", "channel", "channel"),
                               ("shap_features", "modifier", "feature")):  # fmt: skip
        table = tables.get(name)
        if table is None or table.empty or "share" not in table.columns:
            continue
        top = top_channels(table.dropna(subset=["share"]), k=1)
        if not top:
            continue
        row = top[0]
        line = (
            f"**Top {kind}**: {row[column]}, share {_number(row['share'])}{_interval(row)} "
            f"of the effect's heterogeneity ({row.get('estimator', '')})"
        )
        return [line], {"headline.top_share": float(row["share"])}, f"top {kind} {row[column]}"
    return [], {}, ""


def run_headline(tables: Mapping[str, pd.DataFrame]) -> Headline:
    """The headline of a run from its report tables.

    Parameters
    ----------
    tables : mapping
        Report table name -> table (``ate``; optionally ``shap_channels``,
        ``shap_features``, ``did_aggregates`` and ``pretrend``).

    Returns
    -------
    Headline
        Empty lines and values for tables that are missing.
    """
    lines: list[str] = []
    values: dict[str, float] = {}
    short: list[str] = []
    if "ate" in tables:
        first = headline_ate(tables["ate"])
        more_lines, more_values = _ate_lines(tables["ate"], first)
        lines += more_lines
        values.update(more_values)
        if first is not None:
            ate = f"ATE {_number(first['estimate'])}{_interval(first)}"
            short.append(f"{ate} ({first['estimator']})")
    more_lines, more_values, top = _top_line(tables)
    lines += more_lines
    values.update(more_values)
    short += [top] if top else []
    if "did_aggregates" in tables:
        did = did_headline(tables["did_aggregates"], tables.get("pretrend"))
        if did is not None:
            lines.append(f"**DiD overall ATT**: {_number(did['estimate'])}{_interval(did)}")
            values["headline.did_att"] = float(did["estimate"])
            short.append(f"DiD ATT {_number(did['estimate'])}")
    return Headline(lines=tuple(lines), values=values, summary="; ".join(short))


def sweep_description(variants: int, failed: int, aggregates: Mapping[str, float]) -> str:
    """The description of a sweep's parent run: its variants and the ATE across them.

    Parameters
    ----------
    variants : int
        Variants planned.
    failed : int
        Variants that did not finish.
    aggregates : mapping
        ``sweep.ate.<estimator>.estimate.mean`` and ``.sd`` across finished variants.

    Returns
    -------
    str
        Markdown.
    """
    lines = [
        f"**Sweep** of {variants} variants ({failed} failed); each variant is a child run "
        "listed under this one."
    ]
    for key, mean in aggregates.items():
        if key.startswith("sweep.ate.") and key.endswith(".estimate.mean"):
            label = key.removeprefix("sweep.ate.").removesuffix(".estimate.mean")
            sd = aggregates.get(f"sweep.ate.{label}.estimate.sd")
            spread = f" (SD {_number(sd)} across variants)" if sd is not None else ""
            lines.append(f"- ATE {label}: mean {_number(mean)}{spread}")
    return "\n".join(lines)
