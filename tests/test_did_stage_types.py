"""The did stage's ATT by firm type: tables, metrics, truth check, report figure, and the
asymptotic mode's withholding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from test_did_stage import did_config
from vaer.config import validate_config
from vaer.did import CellOptions, PanelColumns
from vaer.did.simulate import HETEROGENEOUS_TYPES, simulate_staggered
from vaer.did.type_stage import TYPES_WITHHELD, DidTypesResult
from vaer.did.type_tables import TYPE_COLUMNS, TYPE_TEST_COLUMNS, type_frames
from vaer.did.types import att_gt_by_type
from vaer.pipeline import run_experiment
from vaer.reporting import figures

ROLES = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


@pytest.mark.integration
def test_a_did_run_writes_the_att_by_firm_type(tmp_path: Path) -> None:
    raw = did_config(tmp_path, pilot_effect=0.2, pilot_heterogeneity=1.0)
    raw["heterogeneity"] = {"enabled": False, "dimensions": ["ownership", "trade_mode"]}
    result = run_experiment(validate_config(raw))
    did = result.did
    assert did is not None and did.types is not None
    tables = result.out_dir / "tables"
    levels = pd.read_csv(tables / "did_types.csv")
    tests = pd.read_csv(tables / "did_type_tests.csv")
    assert list(levels.columns) == [*TYPE_COLUMNS, "inference", "outcome"]
    assert list(tests.columns) == [*TYPE_TEST_COLUMNS, "inference", "outcome"]
    assert set(levels["dimension"]) == {"ownership", "trade_mode"}
    overall = levels[levels["overall"].astype(bool)]
    assert set(overall["aggregation"]) == {"simple", "dynamic", "group", "calendar"}
    assert overall[["se", "ci_low", "ci_high", "p_adj", "df"]].notna().all().all()
    # the truth of each level (the pilot's per-firm effect, exact in 2012-2018)
    assert result.truth is not None
    assert result.truth["did.types.truth.checked"] == len(overall)
    assert result.truth["did.types.truth.coverage"] >= 0.75  # 24 intervals at 95%
    assert result.truth["did.types.truth.max_abs_t"] < 4.5
    metrics = (
        MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        .get_run(result.run_id)
        .data.metrics
    )
    equality = tests[(tests["test"] == "equality") & tests["key"].isna()].set_index(
        ["dimension", "aggregation"]
    )
    for dimension in ("ownership", "trade_mode"):
        for name in ("simple", "dynamic", "group", "calendar"):
            p = metrics[f"did.types.{dimension}.{name}.equality_p"]
            assert p == pytest.approx(equality.loc[(dimension, name), "p_value"])
    assert "truth.did.types.truth.coverage" in metrics
    html = result.report_path.read_text(encoding="utf-8") if result.report_path else ""
    assert 'id="did-types"' in html and "Event study by firm type" in html
    assert "Are the effects equal across firm types?" in html
    assert "Overall effect by firm type" in html


@pytest.fixture(scope="module")
def typed_result() -> DidTypesResult:
    frame, _ = simulate_staggered(1200, 40, type_effects=HETEROGENEOUS_TYPES, random_state=2)
    results = att_gt_by_type(
        frame, ROLES, types=["firm_type"], options=CellOptions(inference="asymptotic")
    )
    levels, tests = type_frames(results["firm_type"], n_draws=50)
    return DidTypesResult(results, levels, tests)


def test_asymptotic_intervals_and_tests_are_withheld(typed_result: DidTypesResult) -> None:
    shown = typed_result.tables("y")
    assert shown["did_types"]["se"].notna().any()
    hidden = DidTypesResult(
        typed_result.results, typed_result.levels, typed_result.tests, TYPES_WITHHELD
    )
    tables = hidden.tables("y")
    assert tables["did_types"][["se", "ci_low", "p_value", "band_low"]].isna().all().all()
    assert tables["did_types"]["estimate"].notna().all()
    assert (tables["did_types"]["inference"] == TYPES_WITHHELD).all()
    assert tables["did_type_tests"]["p_value"].isna().all()
    metrics = hidden.metrics()
    assert not any(key.endswith("equality_p") for key in metrics)
    assert metrics["did.types.firm_type.soe.simple"] == pytest.approx(
        typed_result.results["firm_type"].aggregates["soe"]["simple"].overall_estimate
    )
    assert any(key.endswith("equality_p") for key in typed_result.metrics())


def test_type_event_study_draws_one_panel_per_level(typed_result: DidTypesResult) -> None:
    tables = typed_result.tables("y")
    svg = figures.type_event_study(tables["did_types"], tables["did_type_tests"])
    assert svg is not None and svg.startswith("<svg")
    for level in ("foreign", "private", "soe"):
        assert f"firm_type = {level}" in svg
    assert "levels equal (overall): p = " in svg
    empty = tables["did_types"][tables["did_types"]["aggregation"] == "simple"]
    assert figures.type_event_study(empty) is None
    assert np.isfinite(tables["did_types"]["estimate"]).all()
