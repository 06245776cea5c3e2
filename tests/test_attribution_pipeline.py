"""The attribution stage inside a run: cluster-honest SHAP from refits on folds of the
cities, channel shares with intervals, and the fast SHAP routes against slow exact ones."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import small_config
from vaer.attribution.explain import explain_effect
from vaer.attribution.groups import modifier_groups, sum_groups
from vaer.attribution.share_intervals import LINEAR_PROJECTION, WITHHELD
from vaer.attribution.stage import CHANNEL_COLUMNS, FEATURE_COLUMNS, HONEST_NOTE, sample_rows
from vaer.config import validate_config
from vaer.data.synthetic_table import MECHANISMS
from vaer.pipeline import RunResult, run_experiment

MEDIATORS = {channel: [f"d_{proxies[0]}"] for channel, proxies in MECHANISMS.items()}


@pytest.fixture(scope="module")
def attributed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    tmp_path = tmp_path_factory.mktemp("attribution")
    raw = small_config(tmp_path)
    raw["roles"]["mechanisms"] = MECHANISMS
    raw["roles"]["mediators"] = MEDIATORS
    raw["attribution"] = {
        "n_units": 600,
        "mechanisms": {"cv": 3, "by_firm_type": True},
    }
    return run_experiment(validate_config(raw)), tmp_path


@pytest.mark.slow
def test_run_writes_attribution_tables_and_report(
    attributed_run: tuple[RunResult, Path],
) -> None:
    result, _ = attributed_run
    tables = result.out_dir / "tables"
    channels = pd.read_csv(tables / "shap_channels.csv")
    assert list(channels.columns) == CHANNEL_COLUMNS
    assert set(channels["estimator"]) == {"causal_forest_dml", "linear_dml"}
    assert channels.groupby("estimator")["share"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    # linear DML's intervals are for the best linear projection; the forest's are withheld
    linear = channels[channels["estimator"] == "linear_dml"]
    forest = channels[channels["estimator"] == "causal_forest_dml"]
    assert (linear["interval"] == LINEAR_PROJECTION).all()
    assert ((linear["ci_low"] >= 0) & (linear["ci_low"] <= linear["ci_high"])).all()
    assert (linear["ci_high"] <= 1).all() and channels["p_value"].between(0, 1).all()
    assert (forest["interval"] == WITHHELD).all()
    assert forest[["ci_low", "ci_high", "share_se"]].isna().all().all()
    assert forest["share"].notna().all()
    summary = pd.read_csv(tables / "shap_summary.csv")
    assert (summary["note"] == HONEST_NOTE).all()
    # the three fold models together were refitted on every firm (no cap at this size)
    assert (summary["n_refit"] == result.estimation.units.size).all()
    features = pd.read_csv(tables / "shap_features.csv")
    assert list(features.columns) == FEATURE_COLUMNS
    by_type = pd.read_csv(tables / "shap_by_type.csv")
    assert {"dimension", "level", "n_clusters", "channel", "share", "ci_low"} <= set(by_type)
    values = pd.read_parquet(tables / "shap_values.parquet")
    assert list(values.columns[:2]) == ["estimator", "unit"]
    # one column per firm-type dimension (one-hot levels summed), none per level
    assert "ownership" in values.columns and not any("=" in c for c in values.columns)
    assert len(values) == 2 * 600
    mechanisms = pd.read_csv(tables / "mechanisms.csv")
    overall = mechanisms[mechanisms["dimension"] == "all"]
    assert list(overall["mediator"]) == [m[0] for m in MEDIATORS.values()]
    assert (mechanisms["dimension"] != "all").any()
    html = result.report_path.read_text(encoding="utf-8") if result.report_path else ""
    assert "Mechanism attribution" in html and "Mechanism tests" in html
    assert html.count("<svg") >= 6


@pytest.mark.slow
def test_run_logs_attribution_metrics(attributed_run: tuple[RunResult, Path]) -> None:
    result, tmp_path = attributed_run
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert "shap.causal_forest_dml.share.knowledge_spillover" in metrics
    assert "shap.causal_forest_dml.share.knowledge_spillover.ci_low" not in metrics  # withheld
    assert "shap.linear_dml.share.knowledge_spillover.ci_low" in metrics
    assert "truth.shap.causal_forest_dml.share_covered.knowledge_spillover" not in metrics
    assert "truth.shap.linear_dml.share_covered.knowledge_spillover" in metrics
    assert "truth.shap.linear_projection_share.knowledge_spillover" in metrics
    assert "mechanism.d_smart_green.estimate" in metrics
    assert "mechanism.d_smart_green.se" in metrics
    assert "time.stage.attribution" in metrics
    assert "truth.shap.linear_dml.corr.knowledge_spillover" in metrics
    assert metrics["shap.causal_forest_dml.fidelity_r2"] > 0.8


@pytest.mark.slow
def test_fast_forest_route_agrees_with_permutation_shap_values(
    attributed_run: tuple[RunResult, Path],
) -> None:
    """The distilled TreeSHAP route against shap's (slow) permutation explainer of the
    forest's own effect function (what econml's ``CausalForestDML.shap_values`` runs)."""
    from vaer.data.design import build_analysis_data
    from vaer.data.loading import load_data

    result, _ = attributed_run
    config = result.config
    loaded = load_data(config.data, config.roles, seed=config.seed)
    data = build_analysis_data(loaded.frame, config.roles)
    model = result.estimation.get("causal_forest_dml").model
    rows, background = sample_rows(data.n, 40, 0), sample_rows(data.n, 100, 1)
    common = ("cf", "causal_forest_dml", model, data.x, rows, background, data.units)
    fast = explain_effect(*common, data.feature_groups, method="tree_surrogate")
    slow = explain_effect(*common, data.feature_groups, method="permutation")
    top = slow.values.std().sort_values(ascending=False).index[:3]
    for feature in top:
        corr = np.corrcoef(fast.values[feature], slow.values[feature])[0, 1]
        assert corr > 0.9, (feature, corr)


@pytest.mark.slow
def test_linear_route_equals_econml_linear_shap_values(
    attributed_run: tuple[RunResult, Path],
) -> None:
    """Exact linear SHAP against econml's LinearDML.shap_values (shap's linear explainer)."""
    from vaer.data.design import build_analysis_data
    from vaer.data.loading import load_data

    result, _ = attributed_run
    config = result.config
    loaded = load_data(config.data, config.roles, seed=config.seed)
    data = build_analysis_data(loaded.frame, config.roles)
    model = result.estimation.get("linear_dml").model
    rows = sample_rows(data.n, 40, 2)
    # econml uses the explained units themselves as the background (all of them when <= 100)
    ours = explain_effect(
        "ldml", "linear_dml", model, data.x, rows, rows, data.units, data.feature_groups
    )
    assert ours.method == "linear"
    slow = model.shap_values(data.x.to_numpy(dtype=np.float64)[rows], background_samples=100)
    explanation = next(iter(next(iter(slow.values())).values()))
    groups = modifier_groups(list(data.x.columns), data.feature_groups)
    theirs = sum_groups(np.asarray(explanation.values), list(data.x.columns), groups)
    np.testing.assert_allclose(ours.values.to_numpy(), theirs.to_numpy(), atol=1e-8)
