"""Defaults that travel: the package's defaults, a project's ``configs/default.yaml`` and
``data.path`` implying ``data.source: file``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import vaer
from conftest import BASE_ROLES, ROOT, write_yaml
from vaer.cli import app
from vaer.config import ConfigError, dump_config, load_experiment, validate_config
from vaer.config.loader import config_sources, package_defaults, package_defaults_location


def _minimal(**extra: object) -> dict[str, object]:
    return {"name": "outside", "roles": dict(BASE_ROLES), **extra}


def test_the_defaults_are_package_data() -> None:
    location = Path(package_defaults_location())
    assert location.parent == Path(vaer.__file__).parent / "config"
    defaults = package_defaults()
    assert [e["kind"] for e in defaults["estimators"]] == ["causal_forest_dml", "linear_dml"]
    assert defaults["robustness"]["enabled"] is True


@pytest.mark.parametrize("name", ["table_demo.yaml", "baseline.yaml", "broadband_did.yaml"])
def test_an_experiment_resolves_the_same_outside_the_repository(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    inside = dump_config(load_experiment(ROOT / "experiments" / name))
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    shutil.copy(ROOT / "experiments" / name, outside)
    monkeypatch.chdir(outside.parent)
    assert dump_config(load_experiment(outside)) == inside
    # where the file lives does not matter either, only the folder vaer runs from
    monkeypatch.chdir(ROOT)
    assert dump_config(load_experiment(outside)) == inside


def test_an_experiment_without_estimators_or_robustness_gets_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_experiment(write_yaml(tmp_path / "e.yaml", _minimal()))
    assert [e.kind for e in config.estimators] == ["causal_forest_dml", "linear_dml"]
    assert config.robustness.enabled
    assert not config.robustness.leave_one_group_out.enabled
    given = _minimal(estimators=[{"kind": "linear_dml"}])
    config = load_experiment(write_yaml(tmp_path / "e2.yaml", given))
    assert [e.kind for e in config.estimators] == ["linear_dml"]
    assert config.robustness.enabled


def test_a_project_configs_default_overrides_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "study"
    (project / "configs").mkdir(parents=True)
    write_yaml(
        project / "configs" / "default.yaml",
        {"seed": 7, "report": {"formats": ["csv"]}, "robustness": {"enabled": False}},
    )
    experiment = write_yaml(tmp_path / "e.yaml", _minimal(seed=9))
    monkeypatch.chdir(project)
    config = load_experiment(experiment)
    assert config.seed == 9  # the experiment wins over both defaults
    assert config.report.formats == ["csv"]
    assert not config.robustness.enabled
    assert [e.kind for e in config.estimators] == ["causal_forest_dml", "linear_dml"]
    roles = [s.role for s in config_sources(experiment, ["seed=1"])]
    assert roles == ["package defaults", "project defaults", "experiment", "--set"]
    # run from another folder, the project's file does not apply
    monkeypatch.chdir(tmp_path)
    assert load_experiment(experiment).report.formats == ["html", "csv", "latex", "xlsx"]
    assert load_experiment(experiment, project=project).report.formats == ["csv"]


def test_validate_prints_the_files_it_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "configs").mkdir()
    write_yaml(tmp_path / "configs" / "default.yaml", {"seed": 2})
    raw = _minimal(data={"synthetic": {"n_units": 300, "n_clusters": 20}})
    experiment = write_yaml(tmp_path / "e.yaml", raw)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["validate", str(experiment), "--set", "seed=5"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "config merged from (later overrides earlier):"
    assert lines[1].split() == ["package", "defaults", package_defaults_location()]
    assert lines[2].split() == ["project", "defaults", str(tmp_path / "configs" / "default.yaml")]
    assert lines[3].split() == ["experiment", str(experiment)]
    assert lines[4].split() == ["--set", "seed=5"]
    assert "(seed 5, 300 firms)" in done.output


def test_data_path_implies_source_file(tmp_path: Path) -> None:
    config = validate_config(
        _minimal(estimators=[{"kind": "linear_dml"}], data={"path": "firms.csv"})
    )
    assert config.data.source == "file"
    assert config.data.path == Path("firms.csv")
    assert validate_config(_minimal(estimators=[{"kind": "linear_dml"}])).data.source == (
        "synthetic"
    )
    # the resolved config states the source, so it reloads to the same thing
    reloaded = validate_config(yaml.safe_load(dump_config(config)))
    assert reloaded == config


def test_data_path_with_a_synthetic_source_is_an_error(tmp_path: Path) -> None:
    raw = _minimal(
        estimators=[{"kind": "linear_dml"}], data={"source": "synthetic", "path": "firms.csv"}
    )
    with pytest.raises(
        ConfigError,
        match=r"data: `data\.path` \(firms\.csv\) is given but `data\.source` is 'synthetic', "
        r"which would ignore it: set `data\.source: file`",
    ):
        validate_config(raw)


def test_a_data_path_without_source_is_read_by_vaer_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaer.config.models import SyntheticTableConfig
    from vaer.data.synthetic_table import make_synthetic_table

    table = make_synthetic_table(SyntheticTableConfig(n_units=300, n_clusters=20), random_state=0)
    table.frame.iloc[:250].to_csv(tmp_path / "firms.csv", index=False)
    raw = _minimal(data={"path": "firms.csv"}, estimators=[{"kind": "linear_dml"}])
    experiment = write_yaml(tmp_path / "e.yaml", raw)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(
        app, ["validate", str(experiment), "--set", "data.min_firms_per_type=1"]
    )
    assert done.exit_code == 0, done.output
    assert "ok: outside: 250 rows" in done.output
    assert "(firms.csv)" in done.output
