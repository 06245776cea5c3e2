"""Tracking pieces on a local SQLite store: keys, retries, runs and parents, comparison."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import small_config
from vaer.config import expand_sweep
from vaer.data import FeatureEncoder, encode_features
from vaer.sweep import SweepFailed, run_sweep
from vaer.tracking import (
    ensure_experiment,
    finite_metrics,
    flatten,
    metric_key,
    parent_run,
    peak_rss_mb,
    retry_busy,
    tracked_run,
)
from vaer.tracking.compare import comparison_table, runs_frame, varied_params
from vaer.tracking.store import prepare_store, server_command


def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module (creating a SQLite store runs every MLflow migration)."""
    uri = store(tmp_path_factory.mktemp("shared"))
    prepare_store(uri)
    return uri


# ------------------------------------------------------------------ feature encoder


@pytest.fixture()
def firms() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "owner": ["soe", "private", "foreign", "private"],
            "export_cost": [1.0, 2.5, -1.0, 0.0],
            "flag": [True, False, True, True],
        }
    )


def test_encoder_matches_encode_features_and_reuses_levels(firms: pd.DataFrame) -> None:
    encoded, groups = encode_features(firms, ["owner", "export_cost", "flag"])
    assert list(encoded.columns) == ["owner=private", "owner=soe", "export_cost", "flag=True"]
    assert groups == {
        "owner": ["owner=private", "owner=soe"],
        "export_cost": ["export_cost"],
        "flag": ["flag=True"],
    }
    np.testing.assert_array_equal(encoded["owner=soe"], [1.0, 0.0, 0.0, 0.0])
    assert (encoded.dtypes == np.float64).all()
    encoder = FeatureEncoder.fit(firms, ["owner", "export_cost", "flag"])
    pd.testing.assert_frame_equal(encoder.transform(firms), encoded)
    # two new firms, with only some of the levels, get the same columns
    new = encoder.transform(
        pd.DataFrame({"owner": ["soe", "soe"], "export_cost": [3, 4], "flag": [False, True]})
    )
    assert list(new.columns) == encoder.feature_names
    np.testing.assert_array_equal(new.to_numpy(), [[0, 1, 3, 0], [0, 1, 4, 1]])


def test_encoder_errors(firms: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"columns \['size'\] are not in the table"):
        FeatureEncoder.fit(firms, ["owner", "size"])
    encoder = FeatureEncoder.fit(firms, ["owner", "export_cost"])
    with pytest.raises(ValueError, match=r"columns \['export_cost'\] are missing"):
        encoder.transform(firms[["owner"]])
    with pytest.raises(ValueError, match=r"column 'owner' has levels \['collective'\] not seen"):
        encoder.transform(pd.DataFrame({"owner": ["collective"], "export_cost": [1.0]}))
    with pytest.raises(ValueError, match="column 'export_cost' must be numeric"):
        encoder.transform(pd.DataFrame({"owner": ["soe"], "export_cost": ["high"]}))


# ------------------------------------------------------------------ keys and values


def test_metric_keys_are_made_valid() -> None:
    assert metric_key("gate.size_class=large") == "gate.size_class_large"
    assert metric_key("sorted.(0.2, 0.4]") == "sorted._0.2_ 0.4_"
    assert metric_key("a/b") == "a_b"
    assert len(metric_key("x" * 300)) == 250


def test_finite_metrics_keep_finite_numbers_only() -> None:
    kept = finite_metrics(
        {"a": 1, "b": np.float32(2.5), "c": None, "d": float("nan"), "e": np.inf, "f": "x"}
    )
    assert kept == {"a": 1.0, "b": 2.5}


def test_flatten_nested_config() -> None:
    flat = flatten({"a": {"b": 1, "c": [1, 2]}, "est": [{"kind": "x", "p": {"cv": 2}}]})
    assert flat == {"a.b": "1", "a.c": "[1, 2]", "est.0.kind": "x", "est.0.p.cv": "2"}


def test_peak_memory_is_positive() -> None:
    assert peak_rss_mb() > 10


# ------------------------------------------------------------------ busy retries


def test_retry_busy_retries_locked_errors_only() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert retry_busy(flaky, base_delay=0.001) == "done"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("disk full")

    calls.clear()
    with pytest.raises(RuntimeError, match="disk full"):
        retry_busy(broken, base_delay=0.001)
    assert len(calls) == 1

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retry_busy(always_locked, attempts=3, base_delay=0.001)
    with pytest.raises(ValueError, match="`attempts` must be an int >= 1; got 0"):
        retry_busy(always_locked, attempts=0)


@pytest.mark.slow
def test_logging_waits_out_a_writer_holding_the_database(shared: str) -> None:
    uri = shared
    ensure_experiment(uri, "busy")
    db = Path(uri.removeprefix("sqlite:///"))
    held = threading.Event()

    def hold_lock() -> None:
        connection = sqlite3.connect(db, timeout=30, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(6.5)  # longer than SQLite's 5 s busy timeout in MLflow's engine
        connection.execute("COMMIT")
        connection.close()

    with tracked_run("busy", "waits", uri=uri) as run:
        thread = threading.Thread(target=hold_lock)
        thread.start()
        held.wait(10)
        started = time.monotonic()
        run.log_metrics({"x": 1.0})
        waited = time.monotonic() - started
        thread.join()
    assert waited > 5
    client = MlflowClient(tracking_uri=uri)
    finished = client.get_run(run.run_id)
    assert finished.data.metrics["x"] == 1.0
    assert finished.info.status == "FINISHED"


# ------------------------------------------------------------------ runs and parents


def test_parent_and_child_runs_and_how_they_end(shared: str) -> None:
    uri = shared
    client = MlflowClient(tracking_uri=uri)
    with parent_run("family", "parent", uri=uri) as parent:
        with tracked_run("family", "child", uri=uri, parent_run_id=parent.run_id) as child:
            child.log_metrics({"ate.x.estimate": 0.5})
        with (
            pytest.raises(RuntimeError, match="boom"),
            tracked_run("family", "broken", uri=uri, parent_run_id=parent.run_id) as broken,
        ):
            raise RuntimeError("boom")
    assert client.get_run(parent.run_id).info.status == "FINISHED"
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent.run_id
    failed = client.get_run(broken.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["error"] == "boom"
    assert failed.data.tags["mlflow.parentRunId"] == parent.run_id

    with pytest.raises(KeyboardInterrupt), parent_run("family", "stopped", uri=uri) as stopped:
        raise KeyboardInterrupt
    killed = client.get_run(stopped.run_id)
    assert killed.info.status == "KILLED"
    assert killed.data.tags["error"] == "interrupted (SIGINT / Ctrl-C)"


def test_a_deleted_experiment_is_reported(shared: str) -> None:
    uri = shared
    experiment_id = ensure_experiment(uri, "gone")
    MlflowClient(tracking_uri=uri).delete_experiment(experiment_id)
    with pytest.raises(ValueError, match="experiment 'gone' is deleted"):
        ensure_experiment(uri, "gone")


def test_server_command_serves_the_sqlite_store(tmp_path: Path) -> None:
    uri = store(tmp_path)
    command = server_command(uri, port=5123)
    assert command[command.index("--backend-store-uri") + 1] == uri
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--artifacts-destination") + 1] == str(
        tmp_path / "mlruns" / "artifacts"
    )
    with pytest.raises(ValueError, match="serves a local SQLite store"):
        server_command("http://127.0.0.1:5000")
    with pytest.raises(ValueError, match=r"`port` must be an int in \[1, 65535\]; got 0"):
        server_command(uri, port=0)
    with pytest.raises(ValueError, match="`workers` must be an int >= 1; got 0"):
        server_command(uri, workers=0)


# ------------------------------------------------------------------ comparison


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = store(tmp_path_factory.mktemp("compared"))
    for seed, estimate in ((1, 0.4), (2, 0.6), (3, 0.5)):
        with tracked_run("cmp", f"run-{seed}", uri=uri) as run:
            run.log_params({"seed": seed, "estimators.0.kind": "linear_dml"})
            run.log_metrics({"ate.linear_dml.estimate": estimate, "time.total": 1.0 + seed})
    prepare_store(uri)
    return uri


def test_runs_frame_and_comparison_table(compared: str) -> None:
    frame = runs_frame(compared, experiments=["cmp"])
    assert list(frame["run_name"]) == ["run-3", "run-2", "run-1"]  # newest first
    table = comparison_table(frame)
    assert "ate.linear_dml.estimate" in table.columns
    assert "param:seed" in table.columns  # varied
    assert "param:estimators.0.kind" not in table.columns  # constant
    assert "variant" not in table.columns  # empty for plain runs
    everything = comparison_table(frame, ["time.*"], all_params=True)
    assert "param:estimators.0.kind" in everything.columns
    assert "ate.linear_dml.estimate" not in everything.columns
    filtered = runs_frame(compared, filter_string='metrics."ate.linear_dml.estimate" > 0.45')
    assert sorted(filtered["run_name"]) == ["run-2", "run-3"]
    assert varied_params(filtered.head(1)) == []


def test_comparison_errors(compared: str) -> None:
    with pytest.raises(ValueError, match=r"no experiment named \['nope'\]"):
        runs_frame(compared, experiments=["nope"])
    with pytest.raises(ValueError, match=r"invalid --filter 'metrics\.x >>> 1'"):
        runs_frame(compared, filter_string="metrics.x >>> 1")
    with pytest.raises(ValueError, match="`max_results` must be an int >= 1; got 0"):
        runs_frame(compared, max_results=0)
    frame = runs_frame(compared, experiments=["cmp"])
    with pytest.raises(ValueError, match=r"no metric matches \['gate.\*'\]"):
        comparison_table(frame, ["gate.*"])
    assert runs_frame(compared, filter_string="metrics.time.total > 100").empty


# ------------------------------------------------------------------ sweeps that fail


def tiny_sweep(tmp_path: Path, sweep: dict[str, Any]) -> dict[str, Any]:
    raw = small_config(
        tmp_path,
        name="failing",
        data={"source": "synthetic", "synthetic": {"n_units": 600, "n_clusters": 20}},
        estimators=[{"kind": "linear_dml", "params": {"cv": 2}}],
    )
    raw["heterogeneity"] = {"enabled": False}
    raw["sweep"] = sweep
    return raw


@pytest.mark.integration
def test_a_failing_variant_fails_the_sweep_but_not_the_others(tmp_path: Path) -> None:
    # a firm type cannot have 100000 firms: variant 2 fails validation of its data
    raw = tiny_sweep(tmp_path, {"grid": {"data.min_firms_per_type": [1, 100000]}})
    with pytest.raises(SweepFailed, match=r"1 of 2 variants failed: variant 2") as caught:
        run_sweep(expand_sweep(raw))
    result = caught.value.result
    assert [o.status for o in result.outcomes] == ["FINISHED", "FAILED"]
    assert "DataValidationError" in (result.outcomes[1].error or "")
    assert sorted(result.summary["status"]) == ["FAILED", "FINISHED"]
    client = MlflowClient(tracking_uri=store(tmp_path))
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FAILED"
    assert "variant 2 (data.min_firms_per_type=100000)" in parent.data.tags["error"]
    assert parent.data.metrics["sweep.failed"] == 1
    assert parent.data.metrics["sweep.finished"] == 1


@pytest.mark.integration
def test_on_error_stop_skips_the_remaining_variants(tmp_path: Path) -> None:
    raw = tiny_sweep(
        tmp_path, {"grid": {"data.min_firms_per_type": [100000, 1]}, "on_error": "stop"}
    )
    with pytest.raises(SweepFailed, match="1 of 2 variants failed") as caught:
        run_sweep(expand_sweep(raw))
    result = caught.value.result
    assert [o.index for o in result.outcomes] == [1]
    parent = MlflowClient(tracking_uri=store(tmp_path)).get_run(result.parent_run_id)
    assert parent.data.metrics["sweep.skipped"] == 1
