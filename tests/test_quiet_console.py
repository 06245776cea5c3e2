"""A quiet console: ``vaer run`` prints progress and results; library log lines and
warnings (MLflow's integer-schema hint, dataset-source guesses, store creation) go to the
run's ``run.log``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from conftest import BASE_ROLES, write_yaml
from vaer.runlog import RunLog

NOISE = (
    "Warning",
    "warnings.warn",
    "Inferred schema",
    "dataset source",
    "INFO mlflow",
    "alembic",
    "Creating initial MLflow database tables",
    "cli.py:",
    "pipeline.py:",
)


def test_run_log_captures_library_records_and_warnings(tmp_path: Path) -> None:
    log = RunLog()
    mlflow_like = logging.getLogger("vaer_test_library")
    console = logging.StreamHandler(sys.stderr)
    mlflow_like.addHandler(console)
    mlflow_like.propagate = False
    try:
        with log.capturing():
            mlflow_like.warning("before the folder is known")
            warnings.warn("a library hint", UserWarning, stacklevel=1)
            log.write_to(tmp_path / "run" / "run.log")
            mlflow_like.warning("after the folder is known")
            assert mlflow_like.handlers[-1] is not console
        # handlers and propagation are restored
        assert mlflow_like.handlers == [console]
    finally:
        mlflow_like.removeHandler(console)
    text = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
    assert "before the folder is known" in text
    assert "UserWarning: a library hint" in text
    assert "after the folder is known" in text
    assert log.text() == text


def _tiny_experiment(tmp_path: Path, **extra: object) -> Path:
    """A small table experiment on a CSV file with an integer modifier (MLflow's
    integer-schema hint) read through `data.path` (its dataset-source guess)."""
    from vaer.config.models import SyntheticTableConfig
    from vaer.data.synthetic_table import make_synthetic_table

    frame = make_synthetic_table(
        SyntheticTableConfig(n_units=600, n_clusters=30), random_state=2
    ).frame
    frame["firm_age"] = frame["firm_age"].round().astype("int64")
    frame.to_csv(tmp_path / "firms.csv", index=False)
    roles = {**BASE_ROLES, "modifiers": ["ownership", "trade_mode", "firm_age"]}
    roles["firm_types"] = ["ownership", "trade_mode"]
    return write_yaml(
        tmp_path / "tiny.yaml",
        {
            "name": "tiny",
            "data": {"path": "firms.csv"},
            "roles": roles,
            "estimators": [{"kind": "linear_dml", "params": {"cv": 2}}],
            "robustness": {"enabled": False},
            "attribution": {"enabled": False},
            "report": {"formats": ["csv"]},
            **extra,
        },
    )


def _vaer(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    vaer = Path(sys.executable).parent / "vaer"
    return subprocess.run(
        [str(vaer), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # a fresh store: MLflow creates its tables (INFO lines)
        timeout=600,
        # without MLFLOW_* variables: mlflow.set_tracking_uri in an earlier test of this
        # process exports MLFLOW_TRACKING_URI, which would send the run to that test's store
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
            "COLUMNS": "200",
        },
    )


def _assert_quiet(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    for noise in NOISE:
        assert noise not in done.stderr, (noise, done.stderr)
        assert noise not in done.stdout, (noise, done.stdout)


@pytest.mark.integration
def test_vaer_run_prints_progress_and_results_only(tmp_path: Path) -> None:
    done = _vaer(tmp_path, "run", str(_tiny_experiment(tmp_path)))
    _assert_quiet(done)
    assert "loading and validating data" in done.stderr
    assert "estimating effects" in done.stderr
    assert "Average effect of va_index on resilience" in done.stdout
    log_path = Path(done.stdout.split("log: ")[1].split()[0])
    log = (tmp_path / log_path).read_text(encoding="utf-8")
    assert "Creating initial MLflow database tables" in log
    assert "Inferred schema contains integer column(s)" in log
    assert "The specified dataset source can be interpreted in multiple ways" in log
    assert "INFO vaer.run: estimating effects" in log
    # the log travels with the run's artifacts
    run_id = done.stdout.split("MLflow run id: ")[1].split()[0]
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert "run.log" in [a.path for a in client.list_artifacts(run_id)]


@pytest.mark.integration
def test_vaer_sweep_is_quiet_too(tmp_path: Path) -> None:
    done = _vaer(tmp_path, "sweep", str(_tiny_experiment(tmp_path, sweep={"seeds": [1, 2]})))
    _assert_quiet(done)
    assert "v01 ok seed=1" in done.stderr and "v02 ok seed=2" in done.stderr
    log = (tmp_path / done.stdout.split("log: ")[1].split()[0]).read_text(encoding="utf-8")
    assert log.count("Inferred schema contains integer column(s)") >= 2
