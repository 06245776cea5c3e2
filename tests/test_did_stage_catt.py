"""The did stage's CATT option (``did.catt: true``): config checks, tables, MLflow metrics,
report section."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from test_did_stage import did_config
from vaer.attribution.share_intervals import WITHHELD
from vaer.config import validate_config
from vaer.config.loader import ConfigError
from vaer.did.catt_stage import balanced_firms
from vaer.pipeline import run_experiment

COVARIATES = ["productivity", "city_dev", "knowledge_spillover", "congestion", "export_cost"]


@pytest.mark.parametrize(
    ("did", "message"),
    [
        ({"catt": True}, "needs `did.covariates`"),
        (
            {"catt": True, "covariates": ["productivity"], "control_group": "notyet"},
            "never-treated",
        ),
    ],
)
def test_the_catt_option_is_checked(tmp_path: Path, did: dict, message: str) -> None:
    raw = did_config(tmp_path)
    raw["did"] = {**raw["did"], **did}
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


def test_balanced_firms_keeps_firms_observed_every_year() -> None:
    sample = pd.DataFrame({"unit": [1, 1, 2, 3, 3], "year": [1, 2, 1, 1, 2]})
    kept, left_out = balanced_firms(sample)
    assert sorted(kept["unit"].unique()) == [1, 3] and left_out == 1


@pytest.mark.integration
def test_a_did_run_writes_the_catt_tables_metrics_and_report(tmp_path: Path) -> None:
    raw = did_config(tmp_path, pilot_effect=0.2, pilot_heterogeneity=1.0, n_firms=1500)
    raw["did"] = {**raw["did"], "catt": True, "covariates": COVARIATES}
    raw["report"]["formats"] = ["html"]  # the CATT tables' own formats are the report's
    result = run_experiment(validate_config(raw))
    did = result.did
    assert did is not None and did.catt is not None
    tables = result.out_dir / "tables"
    per_firm = pd.read_csv(tables / "did_catt.csv")
    assert {"unit", "fold", "tau_hat", "score", "weight"} <= set(per_firm.columns)
    assert per_firm["score"].mul(per_firm["weight"]).mean() == pytest.approx(
        did.catt.model.pseudo.att
    )
    tests = pd.read_csv(tables / "did_catt_tests.csv")
    assert list(tests["term"]) == [
        "mean_forest_prediction", "differential_forest_prediction", "AUTOC", "QINI"
    ]  # fmt: skip
    channels = pd.read_csv(tables / "did_channels.csv")
    assert set(channels["channel"]) == {
        "knowledge_spillover", "congestion_relief", "export_cost"
    }  # fmt: skip
    # a forest's share intervals are withheld by default, as in the attribution stage
    assert channels[["ci_low", "ci_high", "share_se"]].isna().all().all()
    assert (channels["interval"] == WITHHELD).all() and channels["share"].notna().all()
    mechanisms = pd.read_csv(tables / "did_mechanisms.csv")
    assert {"knowledge_spillover", "congestion", "market_response"} <= set(mechanisms["mediator"])
    assert mechanisms[["att", "se", "ci_low", "ci_high", "p_value"]].notna().all().all()
    assert any("CATT channels" in note for note in did.notes)  # proxies not covariates
    metrics = (
        MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        .get_run(result.run_id)
        .data.metrics
    )
    assert metrics["did_catt.att"] == pytest.approx(did.catt.model.pseudo.att)
    assert "did_catt.share.knowledge_spillover" in metrics
    assert "did_catt.share.knowledge_spillover.ci_low" not in metrics
    assert "did_calibration.catt_forest.differential_p_value" in metrics
    assert "did_mechanism.congestion.att" in metrics
    assert metrics["time.did.catt"] > 0
    html = result.report_path.read_text(encoding="utf-8") if result.report_path else ""
    assert 'id="did-catt"' in html and "through which channel" in html
