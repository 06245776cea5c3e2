"""Checks against the known truth of the demo's synthetic data (DESIGN.md section 9.5)."""

from __future__ import annotations

import pytest

from conftest import ROOT
from vaer.config import load_experiment
from vaer.pipeline import RunResult, run_experiment


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("demo")
    config = load_experiment(
        ROOT / "experiments" / "baseline.yaml",
        ["tracking.enabled=false", f"report.out={out}/{{run_id}}"],
    )
    return run_experiment(config)


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ["causal_forest_dml", "linear_dml"])
def test_ate_ci_covers_the_true_ate(demo_result: RunResult, label: str) -> None:
    assert demo_result.truth is not None
    ate = demo_result.estimation.get(label).ate
    assert ate.covers(demo_result.truth["true_ate"]), (ate, demo_result.truth["true_ate"])
    # |estimate - truth| < 3 SE is implied by coverage; the SE must also be informative
    assert ate.se < 0.25 * abs(demo_result.truth["true_ate"])


@pytest.mark.statistical
@pytest.mark.slow
def test_causal_forest_cate_rmse_is_below_half_the_sd_of_tau(demo_result: RunResult) -> None:
    assert demo_result.truth is not None
    assert demo_result.truth["causal_forest_dml.cate_rmse_ratio"] < 0.5
