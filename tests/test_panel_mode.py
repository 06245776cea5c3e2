"""Panel mode end to end: config, loading, the pipeline's metrics and report, the CLI."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from conftest import ROOT, write_yaml
from vaer.cli import app
from vaer.config import ConfigError, load_experiment, validate_config
from vaer.config.models import DataConfig, Roles
from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
from vaer.data.loading import load_data, load_panel
from vaer.data.synthetic import PANEL_ROLES
from vaer.data.validation import DataValidationError
from vaer.measures.study import load_study_data
from vaer.pipeline import run_experiment

runner = CliRunner()
ROLES = Roles(**PANEL_ROLES)  # type: ignore[arg-type]
SMALL = {"n_firms": 1500, "n_cities": 40, "n_industries": 20}


def panel_config(tmp_path: Path, **measures: Any) -> dict[str, Any]:
    """A fast panel-mode experiment tracked under ``tmp_path``."""
    return {
        "name": "panel",
        "seed": 5,
        "data": {"source": "synthetic", "mode": "panel", "panel": dict(SMALL)},
        "measures": measures,
        "roles": copy.deepcopy(PANEL_ROLES),
        "estimators": [{"kind": "linear_dml", "params": {"cv": 3}}],
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"},
        "report": {"out": str(tmp_path / "reports" / "{run_name}-{run_id}")},
    }


def test_baseline_experiment_is_the_synthetic_panel() -> None:
    config = load_experiment(ROOT / "experiments" / "baseline.yaml")
    assert config.data.mode == "panel" and config.data.source == "synthetic"
    assert config.measures.shock == "covid2020"
    table = load_experiment(ROOT / "experiments" / "table_demo.yaml")
    assert table.data.mode == "table"


def test_measures_and_panel_keys_are_checked(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", panel_config(tmp_path))
    config = load_experiment(path, ["measures.outcome=recovery", "data.panel.n_firms=900"])
    assert config.measures.outcome == "recovery" and config.data.panel.n_firms == 900
    with pytest.raises(ConfigError, match=r"measures\.growht: unknown key; did you mean 'growth'"):
        load_experiment(path, ["measures.growht=dhs"])
    with pytest.raises(ConfigError, match=r"data\.panel\.n_firms: must be an int >= 200"):
        load_experiment(path, ["data.panel.n_firms=10"])


def test_load_study_data_builds_the_table_with_truth_and_drop_counts() -> None:
    config = DataConfig(mode="panel", panel=SyntheticPanelConfig(**SMALL))
    loaded = load_study_data(config, ROLES, MeasuresConfig(), seed=3)
    frame = loaded.frame
    assert frame["firm_id"].is_unique and loaded.truth is not None
    np.testing.assert_array_equal(loaded.truth.units, frame["firm_id"].to_numpy())
    summary = loaded.summary(ROLES)
    assert summary["shock"] == "covid2020" and summary["truth_exact"] is True
    assert summary["panel_firms"] == 1500
    assert summary["panel_firms"] - sum(loaded.dropped.values()) == summary["rows"]
    assert loaded.dropped["no_row_in_base_year"] > 0
    # DHS growth: the truth is attached but flagged as an approximation
    dhs = load_study_data(config, ROLES, MeasuresConfig(growth="dhs"), seed=3)
    assert dhs.summary(ROLES)["truth_exact"] is False
    assert "undefined_growth" not in dhs.dropped  # exits are -2, not dropped
    # the trade war's recovery years are overwritten by COVID: recovery truth approximate
    tradewar = MeasuresConfig(shock="tradewar2019", outcome="recovery")
    assert load_study_data(config, ROLES, tradewar, seed=3).summary(ROLES)["truth_exact"] is False
    # a custom window has no truth
    custom = MeasuresConfig(shock={"pre": [2011], "trough": [2013], "recovery": [2015]})  # type: ignore[arg-type]
    assert load_study_data(config, ROLES, custom, seed=3).truth is None


def test_panel_mode_reads_a_file_and_reports_bad_panels(tmp_path: Path) -> None:
    config = DataConfig(mode="panel", panel=SyntheticPanelConfig(**SMALL))
    frame = load_panel(config, ROLES, seed=1).frame
    path = tmp_path / "panel.parquet"
    frame.to_parquet(path, index=False)
    from_file = load_study_data(DataConfig(source="file", path=path, mode="panel"), ROLES, seed=0)
    assert from_file.truth is None and len(from_file.frame) > 500
    bad = frame.copy()
    bad.loc[3, "exports"] = -1.0
    bad.to_parquet(path, index=False)
    with pytest.raises(DataValidationError, match=r"negative export values \(rows 3"):
        load_study_data(DataConfig(source="file", path=path, mode="panel"), ROLES, seed=0)


def test_table_loader_refuses_panel_mode() -> None:
    with pytest.raises(ValueError, match="builds the table with the measures"):
        load_data(DataConfig(mode="panel"), ROLES, seed=0)


@pytest.mark.integration
def test_panel_run_logs_drop_counts_and_reports_the_sample(tmp_path: Path) -> None:
    result = run_experiment(validate_config(panel_config(tmp_path)))
    assert result.truth is not None
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    metrics = client.get_run(result.run_id).data.metrics
    dropped = result.data_summary["dropped"]
    assert dropped and all(metrics[f"data.dropped.{k}"] == v for k, v in dropped.items())
    assert result.report_path is not None
    html = result.report_path.read_text(encoding="utf-8")
    assert "From the firm panel to the analysis table" in html
    assert "dropped: no_row_in_base_year" in html
    sample = pd.read_csv(result.out_dir / "tables" / "sample.csv")
    assert sample["firms"].sum() == result.data_summary["panel_firms"]


def test_vaer_simulate_writes_a_panel(tmp_path: Path) -> None:
    out = tmp_path / "p.parquet"
    result = runner.invoke(
        app,
        ["simulate", "--out", str(out), "--set", "n_firms=300", "--set", "data.panel.n_cities=20"],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["firm_id"].nunique() == 300 and frame["city"].nunique() <= 20
    assert "wrote" in result.output


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("n_firms=5", r"data\.panel\.n_firms: Input should be greater than or equal to 200"),
        ("n_firm=500", r"data\.panel\.n_firm: Extra inputs are not permitted"),
        ("n_firms", r"--set expects key\.path=value"),
    ],
)
def test_vaer_simulate_rejects_bad_settings(tmp_path: Path, setting: str, message: str) -> None:
    result = runner.invoke(
        app, ["simulate", "--out", str(tmp_path / "p.parquet"), "--set", setting]
    )
    assert result.exit_code == 2
    assert re.search(message, result.output), result.output


def test_vaer_validate_on_the_panel_demo(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", panel_config(tmp_path))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok: panel:" in result.output


@pytest.mark.integration
def test_a_panel_run_loads_the_panel_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The placebo-shock and alternative-measure rebuilds reuse the run's panel: one
    panel load (and validation) per run, one analysis table per window or measure."""
    import vaer.data.loading
    import vaer.measures.table

    calls = {"panel": 0, "table": 0}

    def counted(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        vaer.data.loading, "validate_panel", counted("panel", vaer.data.loading.validate_panel)
    )
    for module in ("vaer.measures.study", "vaer.robustness.panel"):
        monkeypatch.setattr(
            f"{module}.build_analysis_table",
            counted("table", vaer.measures.table.build_analysis_table),
        )
    raw = panel_config(tmp_path)
    raw["tracking"] = {"enabled": False}
    raw["heterogeneity"] = {"enabled": False}
    raw["attribution"] = {"enabled": False}
    raw["robustness"] = {
        "enabled": True,
        **{check: {"enabled": False} for check in (
            "placebo_treatment", "random_common_cause", "data_subsets",
            "leave_one_group_out", "sensitivity",
        )},
        "placebo_shock": {"enabled": True},
        "alternative_measures": {"enabled": True, "variants": ["growth=dhs", "va_index=pca"]},
    }  # fmt: skip
    result = run_experiment(validate_config(raw))
    assert result.robustness is not None
    assert {c.check for c in result.robustness.checks} == {"placebo_shock", "alternative_measures"}
    assert calls == {"panel": 1, "table": 4}  # the run's table, calm, two alternatives


def test_missing_mediators_are_kept_for_complete_case_tests() -> None:
    """A proxy with missing firm-years (the panel's ``smart_green``, 3% missing) gives
    missing mediator changes ``d_smart_green``: the table keeps those firms (each
    mechanism test uses the firms where its mediator is observed), where every other role
    refuses missing values."""
    roles = Roles(
        **{
            **PANEL_ROLES,
            "mediators": {c: [f"d_{p}" for p in ps] for c, ps in PANEL_ROLES["mechanisms"].items()},
        }
    )  # type: ignore[arg-type]
    config = DataConfig(mode="panel", panel=SyntheticPanelConfig(**SMALL))
    loaded = load_study_data(config, roles, MeasuresConfig(), seed=11)
    missing = loaded.frame["d_smart_green"].isna()
    assert 0 < missing.sum() < 0.1 * len(loaded.frame)
    assert loaded.frame["d_congestion"].notna().all()
