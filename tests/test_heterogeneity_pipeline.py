"""The heterogeneity stage inside a run: config checks, tables, MLflow metrics, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats

from conftest import BASE_ROLES, small_config
from vaer.config import ConfigError, validate_config
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.config.models import LinearDMLSpec, NuisanceConfig, Roles, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import make_synthetic_table
from vaer.estimators.fit import fit_estimators
from vaer.heterogeneity import analyze_heterogeneity
from vaer.pipeline import RunResult, run_experiment
from vaer.reporting import ReportBundle, render_html

HET_TABLES = {
    "gate",
    "gate_tests",
    "gates_sorted",
    "clan",
    "calibration",
    "blp",
    "rate",
    "toc",
    "policy_tree",
}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"dimensions": ["sector"]}, r"heterogeneity\.dimensions.*\['sector'\].*roles\.firm_types"),
        ({"crossed": [["ownership", "ownership"]]}, r"two different columns"),
        ({"crossed": [["ownership", "city_dev"]]}, r"heterogeneity\.crossed.*city_dev"),
        ({"estimators": ["forest"]}, r"heterogeneity\.estimators.*forest.*estimator names"),
        ({"blp_covariates": ["city_dev"]}, r"heterogeneity\.blp_covariates.*roles\.modifiers"),
        ({"policy_features": ["firm_age"]}, r"heterogeneity\.policy_features.*firm_age"),
        ({"n_groups": 1}, r"heterogeneity\.n_groups"),
        ({"ci_level": 1.5}, r"heterogeneity\.ci_level"),
        ({"n_boostrap": 100}, r"heterogeneity\.n_boostrap"),
    ],
)
def test_bad_heterogeneity_config_is_one_clear_error(
    tmp_path: Path, section: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(small_config(tmp_path, heterogeneity=section))


def test_heterogeneity_config_defaults() -> None:
    config = HeterogeneityConfig()
    assert config.enabled and config.n_groups == 5 and config.dimensions is None
    assert config.policy_cost is None and config.policy_honest
    assert config.ranking_tests is False


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    tmp_path = tmp_path_factory.mktemp("het")
    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 1200, "n_clusters": 40}},
        estimators=[{"kind": "linear_dml", "params": {"cv": 3}}],
        heterogeneity={
            "crossed": [["ownership", "region"]],
            "blp_covariates": ["knowledge_spillover", "ownership"],
            "policy_features": ["knowledge_spillover"],
            "n_bootstrap": 50,
            "policy_min_leaf": 30,
        },
    )
    return run_experiment(validate_config(raw)), tmp_path


@pytest.mark.integration
def test_run_writes_heterogeneity_tables_metrics_and_report(run: tuple[RunResult, Path]) -> None:
    result, tmp_path = run
    assert result.heterogeneity is not None
    tables = {p.stem for p in (result.out_dir / "tables").glob("*.csv")}
    assert tables >= HET_TABLES
    gate = pd.read_csv(result.out_dir / "tables" / "gate.csv")
    assert list(gate.columns[:9]) == [
        "estimator",
        "dimension",
        "level",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "n",
        "p_adj",
    ]
    assert "ownership x region" in set(gate["dimension"])
    assert gate["n"][gate["dimension"] == "ownership"].sum() == 1200
    blp = pd.read_csv(result.out_dir / "tables" / "blp.csv")
    assert {"knowledge_spillover", "ownership=foreign", "ownership=private"} <= set(blp["term"])

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    metrics = client.get_run(result.run_id).data.metrics
    for key in (
        "gate.linear_dml.ownership.SOE",
        "gate.linear_dml.ownership x region.SOE x east",
        "gate_test.linear_dml.ownership.wald",
        "gate_test.linear_dml.ownership.p_value",
        "calibration.linear_dml.mean",
        "calibration.linear_dml.differential",
        "rate.linear_dml.autoc",
        "rate.linear_dml.qini",
        "gates_sorted.linear_dml.top_minus_bottom",
        "truth.linear_dml.gate_coverage",
        "time.stage.heterogeneity",
    ):
        assert key in metrics, key
    assert metrics["gate.linear_dml.ownership.SOE"] == pytest.approx(
        float(gate.query("dimension == 'ownership' and level == 'SOE'")["estimate"].iloc[0])
    )

    html = result.report_path.read_text(encoding="utf-8") if result.report_path else ""
    for heading in (
        "Effects by firm type (GATEs)",
        "Sorted GATES and CLAN",
        "Calibration test and best linear projection",
        "RATE and the TOC curve",
        "depth-2 policy tree",
    ):
        assert heading in html, heading
    assert html.count("<svg") >= 3
    # ranking-based tests: estimates shown, p-values withheld with the reason
    rate = pd.read_csv(result.out_dir / "tables" / "rate.csv")
    assert rate["p_value"].isna().all() and rate["estimate"].notna().all()
    assert rate["inference"].str.startswith("withheld").all()
    assert "Intervals and p-values are not shown" in html
    assert "do not use the predictions" in html


@pytest.mark.integration
def test_report_renders_from_the_bundle_with_and_without_heterogeneity(
    run: tuple[RunResult, Path],
) -> None:
    result, _ = run
    bundle = ReportBundle.read(result.out_dir)
    assert "Effects by firm type (GATEs)" in render_html(bundle)
    plain = ReportBundle(
        tables={k: v for k, v in bundle.tables.items() if k not in HET_TABLES}, meta=bundle.meta
    )
    html = render_html(plain)
    assert "Average effect per estimator" in html
    assert "Effects by firm type" not in html and "policy tree" not in html


def test_stage_analyses_only_the_named_estimators_and_checks_units() -> None:
    table = make_synthetic_table(SyntheticTableConfig(n_units=1000, n_clusters=30), random_state=2)
    data = build_analysis_data(table.frame, Roles(**BASE_ROLES))
    specs = [
        LinearDMLSpec(kind="linear_dml", params={"cv": 2}),
        LinearDMLSpec(kind="linear_dml", name="other", params={"cv": 2}),
    ]
    estimation = fit_estimators(data, specs, NuisanceConfig(model="ridge"), random_state=2)
    config = HeterogeneityConfig(
        estimators=["other"], dimensions=["ownership"], n_bootstrap=20, policy_min_leaf=20
    )
    result = analyze_heterogeneity(estimation, data, config, random_state=2)
    assert [e.estimator for e in result.estimators] == ["other"]
    assert set(result.to_frame()["dimension"]) == {"ownership"}
    assert all(k.split(".")[1] == "other" for k in result.metrics())
    with pytest.raises(KeyError, match="no heterogeneity results for 'linear_dml'"):
        result.get("linear_dml")
    shuffled = type(data)(**{**vars(data), "units": data.units[::-1].copy()})
    with pytest.raises(ValueError, match="same units"):
        analyze_heterogeneity(estimation, shuffled, config, random_state=2)
    with pytest.raises(ValueError, match=r"heterogeneity\.dimensions"):
        analyze_heterogeneity(
            estimation, data, HeterogeneityConfig(dimensions=["sector"]), random_state=2
        )
    with pytest.raises(ValueError, match=r"heterogeneity\.blp_covariates.*city_dev"):
        analyze_heterogeneity(
            estimation, data, HeterogeneityConfig(blp_covariates=["city_dev"]), random_state=2
        )
    assert np.isfinite(list(result.metrics().values())).all()
    # withheld by default; printed (t with G - 1 df) when heterogeneity.ranking_tests is on
    item = result.get("other")
    assert np.isnan(item.rate.target("AUTOC")["p_value"])
    assert item.calibration is not None
    differential = item.calibration.term("differential_forest_prediction")
    assert np.isnan(differential["p_value"]) and np.isfinite(differential["se"])
    assert item.sorted_gates.to_frame()["p_value"].isna().all()
    assert item.sorted_gates.clan_frame()["p_value"].notna().all()
    assert any("withheld" in note for note in result.notes)
    shown_result = analyze_heterogeneity(
        estimation, data, config.model_copy(update={"ranking_tests": True}), random_state=2
    )
    shown = shown_result.get("other")
    autoc = shown.rate.target("AUTOC")
    assert autoc["p_value"] == pytest.approx(
        stats.t.sf(autoc["estimate"] / autoc["se"], data.n_clusters - 1)
    )
    assert autoc["estimate"] == item.rate.target("AUTOC")["estimate"]
    assert "rate.other.autoc_p_value" in shown_result.metrics()
    assert "rate.other.autoc_p_value" not in result.metrics()
