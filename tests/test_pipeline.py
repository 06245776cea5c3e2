from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import small_config
from vaer.config import validate_config
from vaer.config.models import SyntheticTableConfig
from vaer.data import DataValidationError, make_synthetic_table
from vaer.pipeline import RunResult, run_experiment

EXPECTED_ARTIFACTS = {
    "config/resolved.yaml",
    "tables/ate.csv",
    "tables/cate.csv",
    "report.html",
    "run.json",
}


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    tmp_path = tmp_path_factory.mktemp("run")
    return run_experiment(validate_config(small_config(tmp_path))), tmp_path


@pytest.mark.integration
def test_run_leaves_a_complete_finished_mlflow_run(synthetic_run: tuple[RunResult, Path]) -> None:
    result, tmp_path = synthetic_run
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert _artifacts(client, result.run_id) >= EXPECTED_ARTIFACTS
    assert run.data.tags["vaer.seed"] == "3"
    assert "vaer.git_commit" in run.data.tags
    assert "vaer.data_fingerprint" in run.data.tags
    assert run.data.params["estimators.0.params.n_estimators"] == "100"
    for label in ("causal_forest_dml", "linear_dml"):
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert f"ate.{label}.{key}" in run.data.metrics
        assert f"truth.{label}.cate_rmse" in run.data.metrics
        assert f"time.fit.{label}" in run.data.metrics


@pytest.mark.integration
def test_tables_and_report_are_written(synthetic_run: tuple[RunResult, Path]) -> None:
    result, _ = synthetic_run
    ate = pd.read_csv(result.out_dir / "tables" / "ate.csv")
    assert list(ate.columns[:7]) == [
        "estimator",
        "estimand",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert set(ate["estimator"]) == {"causal_forest_dml", "linear_dml"}
    assert (ate["ci_low"] < ate["estimate"]).all() and (ate["estimate"] < ate["ci_high"]).all()
    cate = pd.read_csv(result.out_dir / "tables" / "cate.csv")
    assert list(cate.columns) == [
        "estimator",
        "unit",
        "tau_hat",
        "se",
        "ci_low",
        "ci_high",
        "interval",
        "estimand",
    ]
    assert len(cate) == 2 * 1500
    intervals = pd.read_csv(result.out_dir / "tables" / "intervals.csv").set_index("estimator")
    # per-firm forest intervals are off by default (smoothing bias; per_firm_intervals)
    assert intervals.loc["causal_forest_dml", "interval"] == "none"
    assert "per_firm_intervals: true" in intervals.loc["causal_forest_dml", "meaning"]
    assert cate.loc[cate["estimator"] == "causal_forest_dml", "se"].isna().all()
    assert intervals.loc["linear_dml", "interval"] == "none"
    assert "best linear projection" in intervals.loc["linear_dml", "meaning"]
    html = result.report_path.read_text(encoding="utf-8") if result.report_path else ""
    assert "<svg" in html and "Average effect per estimator" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\((https?:)?//|@import""", html)


@pytest.mark.integration
def test_table_mode_from_a_csv_with_other_column_names(tmp_path: Path) -> None:
    frame = make_synthetic_table(
        SyntheticTableConfig(n_units=1200, n_clusters=30), random_state=4
    ).frame
    frame = frame.rename(
        columns={
            "firm_id": "id",
            "va_index": "digital_cluster",
            "resilience": "export_resistance",
            "city": "prefecture",
            "ownership": "owner",
        }
    )
    path = tmp_path / "firms.csv"
    frame.to_csv(path, index=False)
    raw = small_config(tmp_path)
    raw["data"] = {"source": "file", "path": str(path), "mode": "table"}
    raw["roles"] = {
        "unit": "id",
        "outcome": "export_resistance",
        "treatment": "digital_cluster",
        "cluster": "prefecture",
        "controls": ["city_dev", "productivity"],
        "modifiers": ["owner", "trade_mode", "knowledge_spillover"],
        "firm_types": ["owner"],
    }
    result = run_experiment(validate_config(raw))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert _artifacts(client, result.run_id) >= EXPECTED_ARTIFACTS
    assert result.truth is None
    assert result.data_summary["clusters"] == frame["prefecture"].nunique()
    cate = pd.read_csv(result.out_dir / "tables" / "cate.csv")
    assert set(cate["unit"]) == set(frame["id"])


@pytest.mark.integration
def test_a_run_with_bad_data_ends_failed_with_the_reason(tmp_path: Path) -> None:
    frame = make_synthetic_table(
        SyntheticTableConfig(n_units=300, n_clusters=20), random_state=4
    ).frame
    frame.loc[10, "va_index"] = np.nan
    path = tmp_path / "firms.parquet"
    frame.to_parquet(path)
    raw = small_config(tmp_path, name="broken")
    raw["data"] = {"source": "file", "path": str(path)}
    with pytest.raises(DataValidationError, match="'va_index' has 1 missing values"):
        run_experiment(validate_config(raw))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("broken")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.params["seed"] == "3"  # the config is logged before the data stage
    assert "'va_index' has 1 missing values" in run.data.tags["error"]
    assert run.data.tags["error_type"] == "DataValidationError"


@pytest.mark.slow
def test_same_seed_gives_the_same_numbers(tmp_path: Path) -> None:
    raw = small_config(tmp_path)
    raw["tracking"] = {"enabled": False}
    first = run_experiment(validate_config(raw))
    second = run_experiment(validate_config(raw))
    pd.testing.assert_frame_equal(first.estimation.to_frame(), second.estimation.to_frame())
    pd.testing.assert_frame_equal(first.estimation.cate_frame(), second.estimation.cate_frame())
