from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import small_config, write_yaml
from vaer.cli import app

runner = CliRunner()


def test_validate_accepts_a_good_experiment(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok: small: 1500 rows" in result.output


def test_bad_config_exits_2_with_the_message(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    result = runner.invoke(app, ["validate", str(path), "--set", "estimators.0.params.cv=1"])
    assert result.exit_code == 2
    assert "estimators.0.params.cv: must be an int >= 2; got 1" in result.output


def test_bad_data_exits_2_before_fitting(tmp_path: Path) -> None:
    raw = small_config(tmp_path)
    raw["data"] = {"source": "file", "path": str(tmp_path / "absent.csv")}
    path = write_yaml(tmp_path / "e.yaml", raw)
    for command in ("validate", "run"):
        result = runner.invoke(app, [command, str(path)])
        assert result.exit_code == 2
        assert "data file not found" in result.output


@pytest.mark.integration
def test_vaer_run_command_end_to_end(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    vaer = Path(sys.executable).parent / "vaer"
    done = subprocess.run(
        [str(vaer), "run", str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "MLflow run id:" in done.stdout
    assert "Heterogeneity across firms" in done.stdout
    report = done.stdout.split("report:")[1].split()[0]
    assert Path(report).is_file()
