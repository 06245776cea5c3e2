"""Attribution against the known truth of the synthetic firm panel at about 20,000 firms.

The data are the synthetic firm panel (:func:`vaer.data.synthetic.make_synthetic_panel`,
the project's ground truth) turned into an analysis table exactly as panel mode does
(:func:`vaer.measures.study.load_study_data`, default measures: COVID resistance, log
growth, national expected growth, LQ VA index, for which the truth is exact);
``n_firms=33_000`` leaves about 20,000 analysed firms in the covid2020 window.

The mediators ``d_<proxy>`` (change of a proxy from the pre-shock year to the last trough
year) are missing where a proxy is missing (``market_response`` and ``smart_green`` have
gaps), which data validation rightly refuses for a mediator; the test keeps the firms with
complete mediators. The truth's mediator effects are structural (each proxy moves by
``theta_m VA`` plus terms independent of the missingness), so they hold on that subset.

Truth: tau(x) is additive over the modifiers, so the true SHAP value of modifier j is
f_j(x_j) - mean(f_j) (``Truth.shap_for``), channel shares follow from it
(``Truth.channel_shares``), and the mediators d_* move with VA by
``Truth.mediator_effects`` (d_smart_green not at all).
"""

from __future__ import annotations

import numpy as np
import pytest

from vaer.attribution import AttributionResult, run_attribution
from vaer.attribution.truth_check import shap_correlations
from vaer.config.attribution import AttributionConfig, MechanismTestConfig
from vaer.config.models import (
    CausalForestDMLSpec,
    DataConfig,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
)
from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic import MECHANISMS, PANEL_ROLES
from vaer.data.truth import Truth
from vaer.estimators.fit import fit_estimators
from vaer.measures.study import load_study_data

MEDIATORS = {channel: [f"d_{proxies[0]}"] for channel, proxies in MECHANISMS.items()}


@pytest.fixture(scope="module")
def attributed() -> tuple[AttributionResult, Truth]:
    loaded = load_study_data(
        DataConfig(mode="panel", panel=SyntheticPanelConfig(n_firms=33_000)),
        Roles(**PANEL_ROLES),  # type: ignore[arg-type]
        MeasuresConfig(),
        seed=11,
    )
    truth = loaded.truth
    assert truth is not None and loaded.summary(Roles(**PANEL_ROLES))["truth_exact"]  # type: ignore[arg-type]
    columns = [c for cols in MEDIATORS.values() for c in cols]
    frame = loaded.frame.dropna(subset=columns).reset_index(drop=True)
    assert len(frame) >= 15_000, len(frame)
    roles = Roles(**{**PANEL_ROLES, "mediators": MEDIATORS})  # type: ignore[arg-type]
    data = build_analysis_data(frame, roles)
    specs = [
        CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": 100, "cv": 3}),
        LinearDMLSpec(kind="linear_dml", params={"cv": 3}),
    ]
    estimation = fit_estimators(data, specs, NuisanceConfig(), random_state=11)
    config = AttributionConfig(n_units=3000, n_bootstrap=100, mechanisms=MechanismTestConfig(cv=3))
    result = run_attribution(
        data, estimation, config, roles, NuisanceConfig(), frame, random_state=11
    )
    return result, truth


def _top_true_features(truth: Truth, units: np.ndarray, k: int = 5) -> list[str]:
    return list(truth.shap_for(units).var().sort_values(ascending=False).index[:k])


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ["causal_forest_dml", "linear_dml"])
def test_shap_values_track_the_true_shap_values(
    attributed: tuple[AttributionResult, Truth], label: str
) -> None:
    result, truth = attributed
    explanation = next(e for e in result.explanations if e.estimator == label)
    true = truth.shap_for(explanation.units)
    top = _top_true_features(truth, explanation.units)
    assert len(top) == 5
    correlations = {
        f: shap_correlations(explanation.values[f].to_numpy(), true[f].to_numpy()) for f in top
    }
    assert all(c >= 0.8 for c in correlations.values()), correlations


@pytest.mark.statistical
@pytest.mark.slow
def test_forest_channel_ranking_gets_the_top_two_channels(
    attributed: tuple[AttributionResult, Truth],
) -> None:
    result, truth = attributed
    explanation = next(e for e in result.explanations if e.estimator == "causal_forest_dml")
    true_rank = list(truth.channel_shares(explanation.units).sort_values(ascending=False).index)
    rows = result.channels[result.channels["estimator"] == "causal_forest_dml"]
    estimated_rank = list(rows.sort_values("share", ascending=False)["channel"])
    assert estimated_rank[:2] == true_rank[:2], (estimated_rank, true_rank)
    # channels with no true heterogeneity get a small share
    null = [c for c, s in truth.channel_shares(explanation.units).items() if s == 0]
    assert rows.set_index("channel").loc[null, "share"].max() < 0.05


@pytest.mark.statistical
@pytest.mark.slow
def test_mechanism_estimates_cover_the_true_effects(
    attributed: tuple[AttributionResult, Truth],
) -> None:
    result, truth = attributed
    overall = [e for e in result.mechanisms if e.dimension == "all"]
    assert len(overall) == len(truth.mediator_effects)
    errors = {e.mediator: (e.estimate - truth.mediator_effects[e.mediator]) / e.se for e in overall}
    # each within 3 SE (familywise false-failure rate ~1.6% for 6 mediators) ...
    assert all(abs(z) < 3 for z in errors.values()), errors
    # ... and at most one of six 95% CIs misses (P(>= 2 misses) ~3% when coverage is 95%)
    assert sum(not e.covers(truth.mediator_effects[e.mediator]) for e in overall) <= 1, errors
    assert np.all([e.se > 0 for e in overall])
