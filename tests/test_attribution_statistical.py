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
(``Truth.channel_shares``: shares of the variance of the channels' contributions), and the
mediators d_* move with VA by ``Truth.mediator_effects`` (d_smart_green not at all).

The fast statistical test (``test_share_intervals_cover_and_reach_zero_over_seeds``) checks
the channel-share intervals over 200 seeds of a small residual-level design with city
shocks and a no-effect proxy that tracks a city-level variable, through the same
cross-fold explanation and share estimator as the stage, with linear final stages.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from vaer.attribution import (
    AttributionResult,
    FinalStage,
    channel_shares,
    cluster_folds,
    explain_across_folds,
    final_stages,
    run_attribution,
)
from vaer.attribution.refits import Refitter, refit_rows
from vaer.attribution.share_intervals import share_interval_label
from vaer.attribution.truth_check import shap_correlations
from vaer.config.attribution import AttributionConfig, MechanismTestConfig
from vaer.config.estimators import estimator_label
from vaer.config.models import (
    CausalForestDMLSpec,
    DataConfig,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
)
from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.synthetic import MECHANISMS, PANEL_ROLES
from vaer.data.truth import Truth
from vaer.estimators import fit as fit_module
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import EstimationResult
from vaer.measures.study import load_study_data

MEDIATORS = {channel: [f"d_{proxies[0]}"] for channel, proxies in MECHANISMS.items()}


def fit_with_refitters(
    data: AnalysisData, specs: list[Any], nuisance: NuisanceConfig, seed: int
) -> tuple[EstimationResult, dict[str, Refitter]]:
    """Fit the estimators and return their refittable final stages: from the estimation
    result when it keeps the run's nuisances, else from the nuisance cache that
    ``fit_estimators`` builds (captured, the same fitted cache)."""
    captured: list[Any] = []
    original = fit_module.NuisanceCache

    class Capturing(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            captured.append(self)

    with mock.patch.object(fit_module, "NuisanceCache", Capturing):
        estimation = fit_estimators(data, specs, nuisance, random_state=seed)
    stages: dict[str, Refitter] = dict(final_stages(estimation))
    if not stages:
        stages = {estimator_label(s): FinalStage(s.kind, s.params, captured[0]) for s in specs}
    return estimation, stages


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
    estimation, refitters = fit_with_refitters(data, specs, NuisanceConfig(), 11)
    # the forest's share intervals are withheld by default; printed here to check them
    config = AttributionConfig(
        n_units=3000,
        # one cross-fitting split: the median over splits is tested in test_attribution.py
        mechanisms=MechanismTestConfig(cv=3, n_rep=1),
        smoothed_share_intervals=True,
    )
    result = run_attribution(
        data,
        estimation,
        config,
        roles,
        NuisanceConfig(),
        frame,
        random_state=11,
        refitters=refitters,
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
@pytest.mark.parametrize("label", ["causal_forest_dml", "linear_dml"])
def test_channel_shares_cover_the_truth_and_reach_zero_without_effect(
    attributed: tuple[AttributionResult, Truth], label: str
) -> None:
    result, truth = attributed
    true = truth.channel_shares()
    rows = result.channels[result.channels["estimator"] == label].set_index("channel")
    estimated_rank = list(rows.sort_values("share", ascending=False).index)
    assert estimated_rank[:2] == list(true.sort_values(ascending=False).index[:2])
    method = "linear" if label == "linear_dml" else "forest"
    assert set(rows["interval"]) == {share_interval_label(method, print_smoothed=True)}
    covered = (rows["ci_low"] <= true[rows.index]) & (true[rows.index] <= rows["ci_high"])
    null = [c for c, s in true.items() if s == 0]
    effect = [c for c in rows.index if c not in null]
    assert len(null) == 3 and len(effect) == 3
    # 95% intervals: P(two or more of three miss) ~ 0.7%; a no-effect channel's interval
    # reaches 0 unless its one-sided test rejects at 2.5%: P(two of three reject) ~ 0.2%
    assert (~covered[effect]).sum() <= 1, rows
    assert (rows.loc[null, "ci_low"] > 0).sum() <= 1, rows
    assert rows.loc[null, "share"].abs().max() < 0.05


class _OLSStage:
    """The linear R-learner (LinearDML's final stage: OLS of the outcome residual on the
    treatment residual times ``[1, x]``) refitted on any rows of residual-level data."""

    def __init__(self, x: np.ndarray, y_res: np.ndarray, t_res: np.ndarray) -> None:
        self.x, self.y_res, self.t_res = x, y_res, t_res

    def fit(self, rows: np.ndarray, *, max_trees: int | None = None, random_state: int = 0) -> Any:
        design = self.t_res[rows, None] * np.hstack([np.ones((len(rows), 1)), self.x[rows]])
        beta = np.linalg.lstsq(design, self.y_res[rows], rcond=None)[0]
        coef, intercept = beta[1:], beta[0]
        return mock.Mock(
            coef_=coef, featurizer=None, effect=lambda a: np.asarray(a) @ coef + intercept
        )


CHANNELS = {"strong": ["k1"], "weak": ["k2"], "city_null": ["c"], "null": ["z"]}


def _share_table(seed: int, n: int = 1500, n_cities: int = 60) -> pd.DataFrame:
    """One draw: tau = 0.5 + 0.3 k1 + 0.2 k2; proxy c = 0.9 D_c + noise tracks a city-level
    variable and has no effect; city shocks in the treatment and the outcome residuals."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, n_cities, n)
    level = rng.normal(size=n_cities)
    k1, k2, z = rng.normal(size=(3, n))
    c = 0.9 * level[city] + np.sqrt(0.19) * rng.normal(size=n)
    x = pd.DataFrame({"k1": k1, "k2": k2, "c": c, "z": z})
    tau = 0.5 + 0.3 * k1 + 0.2 * k2
    t_res = 0.5 * rng.normal(size=n_cities)[city] + rng.normal(size=n)
    y_res = tau * t_res + 0.4 * rng.normal(size=n_cities)[city] + 0.5 * rng.normal(size=n)
    start = float(np.sum(y_res * t_res) / np.sum(t_res**2))
    scores = start + t_res * (y_res - start * t_res) / 1.25  # E[t_res^2 | x] = 1.25
    folds = cluster_folds(city, seed)
    stage = _OLSStage(x.to_numpy(), y_res, t_res)
    models = [stage.fit(rows) for rows in refit_rows(folds, city, None, seed)]
    rows = np.arange(n)
    groups = {column: [column] for column in x.columns}
    explained = explain_across_folds(
        "ols", "linear_dml", models, folds, x, rows, rows[:200], rows, groups
    )
    table = channel_shares(explained, CHANNELS, scores, city).table.set_index("channel")
    true = pd.Series({"strong": 0.09 * k1.var(), "weak": 0.04 * k2.var(), "city_null": 0.0})
    table["truth"] = (true / true.sum()).reindex(table.index).fillna(0.0)
    return table


@pytest.mark.statistical
def test_share_intervals_cover_and_reach_zero_over_seeds() -> None:
    """Over S = 200 seeds: 95% intervals of channels with an effect cover the true share
    at the nominal rate, within 3 binomial SEs (>= 0.95 - 3 sqrt(0.95 * 0.05 / S) = 0.904);
    a channel without effect, including one whose proxy tracks a city-level variable,
    reaches 0 unless the one-sided 2.5% test rejects (>= 0.975 - 3 SE = 0.942)."""
    seeds = 200
    tables = pd.concat({seed: _share_table(seed) for seed in range(seeds)})
    covered = (tables["ci_low"] <= tables["truth"]) & (tables["truth"] <= tables["ci_high"])
    rates = covered.groupby(level="channel").mean()
    for channel, nominal in (("strong", 0.95), ("weak", 0.95)):
        assert rates[channel] >= nominal - 3 * np.sqrt(nominal * (1 - nominal) / seeds), rates
    reach = (tables["ci_low"] <= 0).groupby(level="channel").mean()
    for channel in ("city_null", "null"):
        assert reach[channel] >= 0.975 - 3 * np.sqrt(0.975 * 0.025 / seeds), reach
    # the estimates are centred on the truth: mean error within 4 MC SEs
    error = (tables["share"] - tables["truth"]).groupby(level="channel")
    assert (error.mean().abs() <= 4 * error.std() / np.sqrt(seeds)).all(), error.mean()


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
