"""Every estimator family against the synthetic data's known truth.

Tolerances come from theory: an ATE is accepted when it is within 3 cluster-robust SEs
of the truth (a 0.27% false-alarm rate per check), and the SE has to be small enough
for the check to mean something.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from conftest import BASE_ROLES
from vaer.config.models import ExperimentConfig, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import SyntheticTable, make_synthetic_table
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import EstimationResult

pytestmark = [pytest.mark.statistical, pytest.mark.slow]

SMALL_FOREST = {"n_estimators": 200}


def _fit(
    table: SyntheticTable, estimators: list[dict[str, Any]], seed: int = 0
) -> EstimationResult:
    config = ExperimentConfig.model_validate(
        {
            "name": "stat",
            "roles": {**BASE_ROLES, "instrument": "pilot"},
            "estimators": estimators,
        }
    )
    data = build_analysis_data(table.frame, config.roles)
    return fit_estimators(data, config.estimators, config.nuisance, random_state=seed)


def binarised_truth(table: SyntheticTable, cfg: SyntheticTableConfig, quantile: float) -> float:
    """True ``E[E[Y | D=1, X, W] - E[Y | D=0, X, W]]`` for ``D = 1{VA > q}``.

    From the generator's formulas (:mod:`vaer.data.synthetic_table`): given the
    features, ``VA = m(W) + r`` with ``m = kappa (0.6 D_c + 0.4 P + 0.3 A)`` and
    ``r = pi Z + v + e`` independent of (X, W): a two-component normal mixture with
    weights 0.7 / 0.3 (pilot share), means 0 / pi and variance 0.5^2 + 1 (+ gamma^2).
    The outcome is ``g(W) + tau(X) VA + noise`` with noise independent of VA, so the
    contrast is ``tau(X) (E[r | r > c - m] - E[r | r <= c - m])``.
    """
    frame = table.frame
    cut = float(np.quantile(frame["va_index"], quantile))
    m = (
        cfg.confounding
        * (
            0.6 * frame["city_dev"] + 0.4 * frame["productivity"] + 0.3 * frame["geo_agglom"]
        ).to_numpy()
    )
    sd = np.sqrt(0.25 + 1.0 + cfg.unobserved_confounding**2)
    b = cut - m
    above_p = np.zeros_like(b)
    above_mean = np.zeros_like(b)
    below_mean = np.zeros_like(b)
    for weight, mean in ((0.7, 0.0), (0.3, cfg.instrument_strength)):
        z = (b - mean) / sd
        above_p += weight * stats.norm.sf(z)
        above_mean += weight * (mean * stats.norm.sf(z) + sd * stats.norm.pdf(z))
        below_mean += weight * (mean * stats.norm.cdf(z) - sd * stats.norm.pdf(z))
    contrast = above_mean / above_p - below_mean / (1 - above_p)
    return float(np.mean(table.truth.tau * contrast))


# --------------------------------------------- 20k firms: causal forest accuracy


@pytest.fixture(scope="module")
def large() -> tuple[SyntheticTable, EstimationResult]:
    table = make_synthetic_table(
        SyntheticTableConfig(n_units=20000, n_clusters=200), random_state=11
    )
    result = _fit(
        table,
        [{"kind": "causal_forest_dml"}, {"kind": "linear_dml"}, {"kind": "sparse_linear_dml"}],
    )
    return table, result


def test_causal_forest_cate_rmse_below_035_sd_of_true_tau_at_20k_firms(
    large: tuple[SyntheticTable, EstimationResult],
) -> None:
    table, result = large
    tau = table.truth.tau_for(result.units)
    tau_hat = result.get("causal_forest_dml").tau_hat  # out-of-bag
    rmse = float(np.sqrt(np.mean((tau_hat - tau) ** 2)))
    assert rmse < 0.35 * float(np.std(tau)), (rmse, np.std(tau))


@pytest.mark.parametrize("label", ["causal_forest_dml", "linear_dml", "sparse_linear_dml"])
def test_dml_ate_within_3_cluster_robust_se_at_20k_firms(
    large: tuple[SyntheticTable, EstimationResult], label: str
) -> None:
    table, result = large
    ate = result.get(label).ate
    assert abs(ate.estimate - table.truth.ate) < 3 * ate.se, (ate, table.truth.ate)
    assert ate.se < 0.1 * abs(table.truth.ate)


# ------------------------------------------ binarised-treatment estimators (DR learners)


UNCONFOUNDED = SyntheticTableConfig(n_units=8000, n_clusters=150)


@pytest.fixture(scope="module")
def unconfounded() -> tuple[SyntheticTable, EstimationResult]:
    table = make_synthetic_table(UNCONFOUNDED, random_state=12)
    result = _fit(
        table,
        [
            {"kind": "dr_learner"},
            {"kind": "forest_dr_learner", "params": SMALL_FOREST},
            {"kind": "dr_learner", "name": "dr_top", "params": {"binarise": "top_tercile"}},
        ],
    )
    return table, result


@pytest.mark.parametrize(
    ("label", "quantile"),
    [("dr_learner", 0.5), ("forest_dr_learner", 0.5), ("dr_top", 2 / 3)],
)
def test_binarised_ate_within_3_cluster_robust_se(
    unconfounded: tuple[SyntheticTable, EstimationResult], label: str, quantile: float
) -> None:
    table, result = unconfounded
    truth = binarised_truth(table, UNCONFOUNDED, quantile)
    ate = result.get(label).ate
    assert "high vs low VA" in ate.estimand
    assert abs(ate.estimate - truth) < 3 * ate.se, (ate, truth)
    assert ate.se < 0.2 * abs(truth)


# ------------------------------------------- an unobserved confounder: only IV works


CONFOUNDED = SyntheticTableConfig(n_units=8000, n_clusters=150, unobserved_confounding=1.0)


@pytest.fixture(scope="module")
def confounded() -> tuple[SyntheticTable, EstimationResult]:
    table = make_synthetic_table(CONFOUNDED, random_state=13)
    result = _fit(
        table,
        [
            {"kind": "linear_dml"},
            {"kind": "causal_forest_dml", "params": SMALL_FOREST},
            {"kind": "orthoiv"},
            {"kind": "dmliv"},
            {"kind": "causal_iv_forest", "params": SMALL_FOREST},
        ],
    )
    return table, result


@pytest.mark.parametrize("label", ["linear_dml", "causal_forest_dml"])
def test_dml_misses_the_true_ate_under_unobserved_confounding(
    confounded: tuple[SyntheticTable, EstimationResult], label: str
) -> None:
    table, result = confounded
    ate = result.get(label).ate
    assert abs(ate.estimate - table.truth.ate) > 3 * ate.se, (ate, table.truth.ate)


@pytest.mark.parametrize("label", ["orthoiv", "dmliv", "causal_iv_forest"])
def test_iv_ate_within_3_cluster_robust_se_under_unobserved_confounding(
    confounded: tuple[SyntheticTable, EstimationResult], label: str
) -> None:
    table, result = confounded
    ate = result.get(label).ate
    dml_bias = abs(result.get("linear_dml").ate.estimate - table.truth.ate)
    assert abs(ate.estimate - table.truth.ate) < 3 * ate.se, (ate, table.truth.ate)
    # informative: the IV interval is narrow compared with the bias it removes
    assert ate.se < 0.5 * dml_bias, (ate.se, dml_bias)
