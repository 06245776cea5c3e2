"""Attribution checked against a synthetic data set's known truth.

Per estimator and modifier: the correlation of estimated and true per-unit SHAP values;
per channel: estimated and true shares (:meth:`vaer.data.truth.Truth.channel_shares`, the
same estimand as :mod:`vaer.attribution.importance`) and whether a printed interval covers
what it names (:mod:`vaer.attribution.share_intervals`: the true share, or for a linear
final stage the share of the best linear projection,
:meth:`vaer.data.truth.Truth.linear_projection_shares`); per mediator: whether the CI
covers the true effect. Truth comes through :class:`vaer.data.truth.Truth` whatever the
generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaer.attribution.share_intervals import LINEAR_PROJECTION
from vaer.attribution.stage import AttributionResult
from vaer.data.design import AnalysisData
from vaer.data.truth import Truth


def shap_correlations(values: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation of two vectors; NaN if either is constant."""
    values = np.asarray(values, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if values.std() == 0 or truth.std() == 0:
        return float("nan")
    return float(np.corrcoef(values, truth)[0, 1])


def attribution_truth_metrics(
    result: AttributionResult, truth: Truth, data: AnalysisData
) -> dict[str, float]:
    """Accuracy of the attribution against ``truth``.

    Parameters
    ----------
    result : AttributionResult
    truth : Truth
    data : AnalysisData
        The run's encoded modifiers (for the best linear projection's shares).

    Returns
    -------
    dict
        ``shap.<estimator>.corr.<feature>`` for modifiers with non-constant true SHAP,
        ``shap.<estimator>.share_error.<channel>`` (estimated minus true share),
        ``shap.<estimator>.share_covered.<channel>`` (1 if a printed interval holds the
        share it names), ``shap.true_share.<channel>`` (over all units of the truth),
        ``shap.linear_projection_share.<channel>`` (over the run's firms), and for
        whole-sample mechanism tests
        ``mechanism.<mediator>.bias`` and ``.covered`` (1 or 0). SHAP metrics are left
        out when the explained units are not all among ``truth.units``.
    """
    metrics: dict[str, float] = {}
    for explanation in result.explanations:
        if not np.isin(explanation.units, truth.units).all():
            continue  # rows that are not the truth's units (e.g. firm x shock rows)
        true = truth.shap_for(explanation.units)
        for feature in explanation.values.columns:
            if feature in true.columns and true[feature].std() > 0:
                metrics[f"shap.{explanation.estimator}.corr.{feature}"] = shap_correlations(
                    explanation.values[feature].to_numpy(), true[feature].to_numpy()
                )
        if truth.mechanisms and not result.channels.empty:
            true_shares = truth.channel_shares()
            projected = truth.linear_projection_shares(
                data.x.set_axis(data.units), data.feature_groups
            )
            rows = result.channels[result.channels["estimator"] == explanation.estimator]
            for row in rows.to_dict("records"):
                channel = str(row["channel"])
                if channel not in true_shares.index:
                    continue
                true_share = float(true_shares.loc[channel])
                name = f"shap.{explanation.estimator}"
                metrics[f"shap.true_share.{channel}"] = true_share
                metrics[f"shap.linear_projection_share.{channel}"] = float(projected.loc[channel])
                metrics[f"{name}.share_error.{channel}"] = float(row["share"]) - true_share
                if pd.notna(row["ci_low"]):
                    named = projected if row["interval"] == LINEAR_PROJECTION else true_shares
                    value = float(named.loc[channel])
                    metrics[f"{name}.share_covered.{channel}"] = float(
                        row["ci_low"] <= value <= row["ci_high"]
                    )
    for estimate in result.mechanisms:
        if estimate.dimension == "all" and estimate.mediator in truth.mediator_effects:
            effect = truth.mediator_effects[estimate.mediator]
            metrics[f"mechanism.{estimate.mediator}.bias"] = estimate.estimate - effect
            metrics[f"mechanism.{estimate.mediator}.covered"] = float(estimate.covers(effect))
    return metrics
