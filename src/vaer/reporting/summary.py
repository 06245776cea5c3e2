"""The summary page in plain words, computed from the same tables the sections print.

Each statement is built from one bundle table and only when that table is present:
the ATE (``ate``), the firm types that gain most and least (``gate``), the channels that
carry the heterogeneity (``shap_channels``), whether the robustness checks hold
(``robustness``) and the policy's staggered DiD effect (``did_aggregates``). One source of
truth: no number here is recomputed from anything else.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vaer.reporting.robustness import (
    check_verdicts,
    common_false_alarm,
    family_verdict,
    passed_flags,
)


def _record(row: pd.Series) -> dict[str, Any]:
    return {str(k): v for k, v in row.to_dict().items()}


def _first_estimator(frame: pd.DataFrame) -> pd.DataFrame:
    if "estimator" not in frame.columns or frame.empty:
        return frame
    return frame[frame["estimator"] == frame["estimator"].iloc[0]]


def headline_ate(ate: pd.DataFrame) -> dict[str, Any] | None:
    """The first estimator's cluster-robust DR ATE row, with ``significant`` (5% level)."""
    dr = ate[ate["se_type"].astype(str).str.contains("DR")]
    if dr.empty:
        return None
    first = _record(dr.iloc[0])
    first["significant"] = not (first["ci_low"] <= 0 <= first["ci_high"])
    return first


def gate_extremes(gate: pd.DataFrame) -> dict[str, Any] | None:
    """The firm types with the largest and smallest group effect (first estimator)."""
    rows = _first_estimator(gate).dropna(subset=["estimate"])
    if rows.empty:
        return None
    ordered = rows.sort_values("estimate", kind="stable")
    return {
        "estimator": str(rows["estimator"].iloc[0]) if "estimator" in rows else "",
        "most": _record(ordered.iloc[-1]),
        "least": _record(ordered.iloc[0]),
    }


def equality_p_values(tests: pd.DataFrame, estimator: str) -> dict[str, float]:
    """p-value of the joint test of equal GATEs, per firm-type dimension, for ``estimator``."""
    if not {"test", "dimension", "p_value"} <= set(tests.columns):
        return {}
    rows = tests[tests["test"].astype(str) == "equality"]
    if "estimator" in rows.columns and estimator:
        rows = rows[rows["estimator"].astype(str) == estimator]
    return {str(r["dimension"]): float(r["p_value"]) for _, r in rows.iterrows()}


def top_channels(channels: pd.DataFrame, k: int = 2) -> list[dict[str, Any]]:
    """The ``k`` channels with the largest share of the heterogeneity (first estimator)."""
    rows = _first_estimator(channels).sort_values("share", ascending=False, kind="stable")
    return [_record(row) for _, row in rows.head(k).iterrows()]


def robustness_verdict(robustness: pd.DataFrame) -> dict[str, Any] | None:
    """The robustness checks' verdict: taken together (``family``: the checks flagged by
    their Holm-adjusted p-value ``family_p`` at the false-alarm rate, and those flagged only
    at their own level), or, for a table written without ``family_p``, how many rows pass
    and which fail."""
    if "passed" not in robustness.columns:
        return None
    judged = robustness.dropna(subset=["passed"])
    if judged.empty:
        return None
    family = family_verdict(judged, common_false_alarm(check_verdicts(judged)))
    if family is not None:
        return {
            "family": True,
            "n": family["n_checks"],
            "alpha": family["alpha"],
            "flagged": family["flagged"],
            "alone": family["alone"],
        }
    passed = passed_flags(judged["passed"])
    failed = judged[~passed]
    names = [
        f"{r['check']}"
        + (f" ({r['variant']})" if isinstance(r.get("variant"), str) and r["variant"] else "")
        for _, r in failed.iterrows()
    ]
    return {"n": len(judged), "passed": int(passed.sum()), "failed": list(dict.fromkeys(names))}


def did_headline(aggregates: pd.DataFrame, pretrend: pd.DataFrame | None) -> dict[str, Any] | None:
    """The overall ATT of the staggered DiD (Callaway-Sant'Anna's ``simple`` aggregation) with
    ``significant`` (5% level) and the pre-trend test's p-value, if tested."""
    simple = aggregates[(aggregates["aggregation"] == "simple") & aggregates["overall"]]
    if "estimator" in simple:  # Callaway-Sant'Anna's, not TWFE's
        simple = simple[simple["estimator"] == "cs_did"]
    if simple.empty:
        return None
    row = _record(simple.iloc[0])
    row["significant"] = not (row["ci_low"] <= 0 <= row["ci_high"])
    if pretrend is not None and not pretrend.empty and pd.notna(pretrend["p_value"].iloc[0]):
        row["pretrend_p"] = float(pretrend["p_value"].iloc[0])
    return row


def summarize(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Every summary statement whose table is present (keys ``ate``, ``gates``, ...)."""
    summary: dict[str, Any] = {}
    if "ate" in tables:
        summary["ate"] = headline_ate(tables["ate"])
    if "gate" in tables:
        summary["gates"] = gate_extremes(tables["gate"])
        if summary["gates"] is not None and "gate_tests" in tables:
            summary["gates"]["equality_p"] = equality_p_values(
                tables["gate_tests"], summary["gates"]["estimator"]
            )
    if "shap_channels" in tables:
        summary["channels"] = top_channels(tables["shap_channels"])
    if "robustness" in tables:
        summary["robustness"] = robustness_verdict(tables["robustness"])
    if "did_aggregates" in tables:
        summary["did"] = did_headline(tables["did_aggregates"], tables.get("pretrend"))
    return summary
