"""Against a real ``mlflow server``: a complete run, a 4-variant sweep, comparison, the model."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from conftest import BASE_ROLES, small_config, write_yaml
from processes import children_of, mlflow_server
from vaer.cli import app
from vaer.config import validate_config
from vaer.config.models import SyntheticTableConfig
from vaer.data import FeatureEncoder, make_synthetic_table
from vaer.estimators import chunks
from vaer.pipeline import RunResult, run_experiment

pytestmark = pytest.mark.integration

TINY_DATA = {"source": "synthetic", "synthetic": {"n_units": 600, "n_clusters": 20}}
TINY_ESTIMATORS = [
    {
        "kind": "causal_forest_dml",
        "params": {"n_estimators": 40, "cv": 2, "per_firm_intervals": True},
    },
    {"kind": "linear_dml", "params": {"cv": 2}},
]


def artifacts_of(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts_of(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a free 127.0.0.1 port, SQLite backend, served artifacts."""
    previous = mlflow.get_tracking_uri()
    with mlflow_server(tmp_path_factory.mktemp("server")) as url:
        yield url
    mlflow.set_tracking_uri(previous)


def tiny_config(tmp_path: Path, uri: str, **changes: Any) -> dict[str, Any]:
    raw = small_config(tmp_path, data=TINY_DATA, estimators=TINY_ESTIMATORS, **changes)
    raw["tracking"] = {"uri": uri, "experiment": changes.get("name", "server-test")}
    return raw


@pytest.fixture(scope="module")
def single_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    tmp_path = tmp_path_factory.mktemp("single")
    path = write_yaml(tmp_path / "study.yaml", tiny_config(tmp_path, server))
    raw = tiny_config(tmp_path, server)
    return run_experiment(validate_config(raw), experiment_file=path), tmp_path


def test_run_is_complete_on_the_server(server: str, single_run: tuple[RunResult, Path]) -> None:
    result, _ = single_run
    client = MlflowClient(tracking_uri=server)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["estimators.0.params.n_estimators"] == "40"
    assert params["seed"] == "3"
    assert params["data.synthetic.n_units"] == "600"
    assert len(tags["vaer.git_commit"]) in (40, len("unknown"))
    assert tags["vaer.git_dirty"] in ("true", "false", "unknown")
    assert tags["vaer.seed"] == "3"
    assert tags["vaer.version.python"].startswith("3.11")
    assert tags["vaer.version.econml"].startswith("0.17")
    assert tags["vaer.host"] == socket.gethostname()
    assert len(tags["vaer.data_fingerprint"]) == 16
    assert tags["vaer.model_uri"] == result.model_uri
    for label in ("causal_forest_dml", "linear_dml"):
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert metrics[f"ate.{label}.{key}"] == pytest.approx(
                getattr(result.estimation.get(label).ate, key)
            )
        assert f"truth.{label}.cate_rmse" in metrics
    for stage in ("data", "estimation", "report", "tracking"):
        assert metrics[f"time.stage.{stage}"] >= 0
        assert metrics[f"memory.stage.{stage}.peak_rss_mb"] > 0
    assert metrics["memory.peak_rss_mb"] >= metrics["memory.stage.data.peak_rss_mb"]
    assert metrics["data.rows"] == 600
    assert artifacts_of(client, result.run_id) >= {
        "config/resolved.yaml",
        "config/study.yaml",
        "tables/ate.csv",
        "tables/cate.csv",
        "tables/ate.json",
        "tables/cate.json",
        "report.html",
        "run.json",
        "figures/cate_histogram.svg",
    }
    # every table of the report bundle (heterogeneity's too) is also an MLflow table
    bundle_tables = {p.stem for p in (result.out_dir / "tables").glob("*.csv")}
    assert {"ate", "cate", "gate", "rate"} <= bundle_tables
    assert {f"tables/{name}.json" for name in bundle_tables} <= artifacts_of(client, result.run_id)
    assert any(k.startswith("gate.causal_forest_dml.ownership.") for k in metrics)
    ate_table = client.load_table(
        run.info.experiment_id, "tables/ate.json", run_ids=[result.run_id]
    )
    assert set(ate_table["estimator"]) == {"causal_forest_dml", "linear_dml"}
    (dataset_input,) = run.inputs.dataset_inputs
    assert '"num_rows": 600' in dataset_input.dataset.profile
    assert dataset_input.dataset.name == "synthetic_table"
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "analysis"


def test_logged_model_predicts_for_new_firms(
    server: str, single_run: tuple[RunResult, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _ = single_run
    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/cate_model")
    assert model.metadata.signature is not None
    new = make_synthetic_table(SyntheticTableConfig(n_units=250, n_clusters=20), random_state=11)
    firms = new.frame[BASE_ROLES["modifiers"]]
    monkeypatch.setattr(chunks, "ROWS", 37)  # intervals in blocks: 250 rows, 7 blocks
    predicted = model.predict(firms)
    assert list(predicted.columns) == ["tau_hat", "ci_low", "ci_high", "interval"]
    assert (predicted["interval"] == "firm").all()
    assert len(predicted) == 250
    assert (predicted["ci_low"] <= predicted["tau_hat"]).all()
    assert (predicted["tau_hat"] <= predicted["ci_high"]).all()
    # the model carries the encoding: same numbers as the in-process forest on encoded columns
    encoder = FeatureEncoder.fit(new.frame, BASE_ROLES["modifiers"])
    forest = result.estimation.get("causal_forest_dml").model
    expected = np.ravel(forest.effect(encoder.transform(firms).to_numpy()))
    np.testing.assert_allclose(predicted["tau_hat"].to_numpy(), expected, rtol=1e-10)
    low, high = forest.effect_interval(encoder.transform(firms).to_numpy())
    np.testing.assert_allclose(predicted["ci_low"].to_numpy(), np.ravel(low), rtol=1e-10)
    np.testing.assert_allclose(predicted["ci_high"].to_numpy(), np.ravel(high), rtol=1e-10)
    narrow = model.predict(firms.head(20), params={"alpha": 0.1})
    wide = model.predict(firms.head(20), params={"alpha": 0.01})
    assert ((wide["ci_high"] - wide["ci_low"]) > (narrow["ci_high"] - narrow["ci_low"])).all()
    # a linear CATE model's interval would cover a projection, not a firm's effect: none
    linear = model.predict(firms.head(20), params={"estimator": "linear_dml"})
    assert linear[["ci_low", "ci_high"]].isna().all().all()
    assert (linear["interval"] == "none").all() and linear["tau_hat"].notna().all()
    loaded_by_uri = mlflow.pyfunc.load_model(result.model_uri)
    pd.testing.assert_frame_equal(loaded_by_uri.predict(firms), predicted)


@pytest.fixture(scope="module")
def sweep_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    tmp_path = tmp_path_factory.mktemp("sweep")
    raw = tiny_config(tmp_path, server, name="server-sweep")
    raw["heterogeneity"] = {"enabled": False}  # the single run above covers it
    raw["sweep"] = {"grid": {"estimators.0.params.min_samples_leaf": [5, 20]}, "seeds": [1, 2]}
    path = write_yaml(tmp_path / "sweep.yaml", raw)
    done = CliRunner().invoke(app, ["sweep", str(path)])
    assert done.exit_code == 0, done.output
    parent_id = done.output.split("MLflow parent run id:")[1].split()[0]
    return parent_id, tmp_path, done.output


def test_sweep_has_a_parent_and_four_children(
    server: str, sweep_run: tuple[str, Path, str]
) -> None:
    parent_id, _, output = sweep_run
    client = MlflowClient(tracking_uri=server)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["vaer.sweep"] == "parent"
    assert parent.data.metrics["sweep.finished"] == 4
    assert parent.data.metrics["sweep.failed"] == 0
    children = children_of(client, parent_id)
    assert len(children) == 4
    seen = set()
    for child in children:
        assert child.info.status == "FINISHED"
        params = child.data.params
        seen.add((params["estimators.0.params.min_samples_leaf"], params["seed"]))
        assert child.data.tags["vaer.sweep.label"] == (
            f"estimators.0.params.min_samples_leaf={params['estimators.0.params.min_samples_leaf']}"
            f" seed={params['seed']}"
        )
        assert "ate.causal_forest_dml.estimate" in child.data.metrics
        assert artifacts_of(client, child.info.run_id) >= {"tables/ate.csv", "report.html"}
        assert child.data.tags["vaer.model_uri"].startswith("models:/")
    assert seen == {("5", "1"), ("5", "2"), ("20", "1"), ("20", "2")}
    assert artifacts_of(client, parent_id) >= {
        "config/resolved.yaml",
        "config/sweep.yaml",
        "tables/sweep_summary.csv",
        "tables/sweep_summary.json",
        "tables/variants.csv",
    }
    summary = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=parent_id, artifact_path="tables/sweep_summary.csv", tracking_uri=server
        )
    )
    assert sorted(summary["run_id"]) == sorted(c.info.run_id for c in children)
    by_id = {c.info.run_id: c for c in children}
    for column in ("ate.causal_forest_dml.estimate", "truth.linear_dml.cate_rmse"):
        for run_id, value in zip(summary["run_id"], summary[column], strict=True):
            assert value == pytest.approx(by_id[run_id].data.metrics[column])
    estimates = [c.data.metrics["ate.causal_forest_dml.estimate"] for c in children]
    assert parent.data.metrics["sweep.ate.causal_forest_dml.estimate.mean"] == pytest.approx(
        np.mean(estimates)
    )
    assert "4 variants of server-sweep" in output


def test_compare_lists_the_sweep(server: str, sweep_run: tuple[str, Path, str]) -> None:
    parent_id, tmp_path, _ = sweep_run
    csv = tmp_path / "compare.csv"
    done = CliRunner().invoke(
        app,
        [
            "compare",
            "--uri",
            server,
            "--experiment",
            "server-sweep",
            "--sweep",
            parent_id,
            "--metrics",
            "ate.*.estimate,truth.*.cate_rmse",
            "--csv",
            str(csv),
        ],
    )
    assert done.exit_code == 0, done.output
    print(done.output)
    table = pd.read_csv(csv)
    assert len(table) == 4
    assert {
        "ate.causal_forest_dml.estimate",
        "ate.linear_dml.estimate",
        "truth.causal_forest_dml.cate_rmse",
        "param:seed",
        "param:estimators.0.params.min_samples_leaf",
    } <= set(table.columns)
    assert "4 runs" in done.output
