"""Checks against the known truth of the demo's synthetic firm panel (DESIGN.md 9.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from vaer.config import load_experiment
from vaer.estimators.inference import MeanEstimate, cluster_robust_mean
from vaer.measures.study import load_study_data
from vaer.pipeline import RunResult, run_experiment


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("demo")
    # the demo's data and estimators; the stages these tests do not read are left out
    off = ["tracking", "heterogeneity", "attribution", "robustness"]
    config = load_experiment(
        ROOT / "experiments" / "baseline.yaml",
        [f"{stage}.enabled=false" for stage in off] + [f"report.out={out}/{{run_id}}"],
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


def _naive_ols(y: np.ndarray, t: np.ndarray, clusters: np.ndarray) -> MeanEstimate:
    """Slope of y on t alone, with a cluster-robust SE from its influence function."""
    tc = t - t.mean()
    slope = float(tc @ (y - y.mean()) / (tc @ tc))
    influence = slope + len(t) * tc * (y - y.mean() - slope * tc) / (tc @ tc)
    return cluster_robust_mean(influence, clusters)


@pytest.mark.statistical
def test_naive_ols_on_the_demo_panel_misses_the_true_ate() -> None:
    """The demo panel has no unobserved confounder, so DML covers the truth (tests above);
    VA is confounded through the observed controls, so OLS of the outcome on VA does not."""
    config = load_experiment(ROOT / "experiments" / "baseline.yaml")
    assert config.data.mode == "panel" and config.data.panel.unobserved_confounding == 0.0
    loaded = load_study_data(config.data, config.roles, config.measures, seed=config.seed)
    assert loaded.truth is not None
    frame = loaded.frame
    naive = _naive_ols(
        frame[config.roles.outcome].to_numpy(),
        frame[config.roles.treatment].to_numpy(),
        pd.factorize(frame["city"])[0],
    )
    # the 95% CI excludes the truth, by more than 3 SE, and the bias is upwards
    assert naive.estimate - loaded.truth.ate > 3 * naive.se, (naive, loaded.truth.ate)
