"""The store under stress: concurrent processes, interrupted and failing runs, the UI command."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import vaer
from conftest import small_config, write_yaml
from vaer.cli import app
from vaer.config.models import SyntheticTableConfig
from vaer.data import make_synthetic_table
from vaer.tracking.store import prepare_store

pytestmark = pytest.mark.integration

VAER = Path(sys.executable).parent / "vaer"
COMPLETE = {
    "config/resolved.yaml",
    "config/study.yaml",
    "tables/ate.csv",
    "tables/cate.csv",
    "tables/ate.json",
    "report.html",
    "run.json",
}


def artifacts_of(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts_of(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def tiny(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 600, "n_clusters": 20}},
        estimators=[
            {"kind": "causal_forest_dml", "params": {"n_estimators": 40, "cv": 2}},
            {"kind": "linear_dml", "params": {"cv": 2}},
        ],
    )
    raw["heterogeneity"] = {"enabled": False}  # not what these tests are about
    raw.update(changes)
    return raw


def environment() -> dict[str, str]:
    """This process's environment for a ``vaer`` child, with vaer's own source first. Not
    this process's ``sys.path``: loading a logged model puts the model's copy of vaer's
    modules (its ``code_paths``, without package data) in front of it."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(Path(vaer.__file__).resolve().parents[1])
    return env


def test_four_concurrent_runs_on_one_sqlite_store_all_finish(tmp_path: Path) -> None:
    # the store does not exist yet: the four processes race to create it
    path = write_yaml(tmp_path / "study.yaml", tiny(tmp_path, name="concurrent"))
    processes = [
        subprocess.Popen(
            [str(VAER), "run", str(path), "--set", f"seed={seed}"],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2, 3, 4)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("concurrent")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    assert sorted(r.data.params["seed"] for r in runs) == ["1", "2", "3", "4"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert artifacts_of(client, run.info.run_id) >= COMPLETE
        assert "ate.causal_forest_dml.estimate" in run.data.metrics
        assert "truth.linear_dml.cate_rmse" in run.data.metrics
        model = client.get_logged_model(run.data.tags["vaer.model_uri"].removeprefix("models:/"))
        assert model.source_run_id == run.info.run_id
        assert str(model.status) in ("READY", "LoggedModelStatus.READY")
        files = {f.path for f in client.list_logged_model_artifacts(model.model_id)}
        assert {"MLmodel", "python_model.pkl", "artifacts"} <= files
    estimates = {r.data.metrics["ate.linear_dml.estimate"] for r in runs}
    assert len(estimates) == 4  # four different seeds, four different data sets


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signal.SIGINT, "interrupted (SIGINT / Ctrl-C)"),
        (signal.SIGTERM, "terminated by signal SIGTERM"),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_an_interrupted_run_ends_killed_with_the_reason(
    tmp_path: Path, sig: signal.Signals, reason: str
) -> None:
    raw = tiny(tmp_path, name="interrupted")
    # slow enough to still be estimating when the signal arrives
    raw["data"]["synthetic"] = {"n_units": 4000, "n_clusters": 40}
    raw["estimators"] = [{"kind": "causal_forest_dml", "params": {"n_estimators": 2000, "cv": 2}}]
    path = write_yaml(tmp_path / "study.yaml", raw)
    process = subprocess.Popen(
        [str(VAER), "run", str(path)],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    prepare_store(uri)  # this poller opens the store under the same lock as `vaer run`
    client = MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + 300
    run_id = None
    while run_id is None:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the estimation stage"
        time.sleep(0.3)
        experiment = client.get_experiment_by_name("interrupted")
        if experiment is None:
            continue
        started = [
            r
            for r in client.search_runs([experiment.experiment_id])
            if "data.rows" in r.data.metrics
        ]
        run_id = started[0].info.run_id if started else None
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, (stdout[-3000:], stderr[-3000:])
    run = client.get_run(run_id)
    assert run.info.status == "KILLED", stderr
    assert run.data.tags["error"] == reason
    assert run.data.tags["error_type"] == "KeyboardInterrupt"
    assert "error.txt" in artifacts_of(client, run_id)


def test_a_run_on_bad_data_ends_failed_with_the_reason(tmp_path: Path) -> None:
    frame = make_synthetic_table(
        SyntheticTableConfig(n_units=300, n_clusters=20), random_state=4
    ).frame
    frame.loc[[3, 7], "productivity"] = np.inf
    data = tmp_path / "firms.csv"
    frame.to_csv(data, index=False)
    raw = tiny(tmp_path, name="bad-data")
    raw["data"] = {"source": "file", "path": str(data)}
    path = write_yaml(tmp_path / "study.yaml", raw)
    done = CliRunner().invoke(app, ["run", str(path)])
    assert done.exit_code == 2
    assert "productivity" in done.output
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("bad-data").experiment_id])
    assert run.info.status == "FAILED"
    assert "productivity" in run.data.tags["error"]
    assert run.data.tags["error_type"] == "DataValidationError"


def test_vaer_ui_serves_the_project_store(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**environment(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(
        [str(VAER), "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "vaer ui did not come up"
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5",
                    timeout=2,
                ) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert "Default" in body
        assert (tmp_path / "mlruns" / "mlflow.db").is_file()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert f"http://127.0.0.1:{port}" in stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # on purpose
def test_an_interrupt_dropped_inside_a_finalizer_is_raised_at_the_next_report() -> None:
    """Python drops exceptions raised in finalizers; the CLI raises the signal again."""
    from vaer.interrupts import Interrupts

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler runs here; its KeyboardInterrupt is dropped

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    with Interrupts().installed() as interrupts:
        Finalized()  # collected at once: the signal arrives inside __del__
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert signal.getsignal(signal.SIGINT) is before  # restored
