"""Heterogeneity analyses against the synthetic table's known truth (20k firms).

The estimators are fitted once (module-scoped fixture): shared LightGBM nuisances, a
causal forest with 200 trees and a linear DML. The synthetic effect is
``tau = ate + f_ownership + f_trade_mode + f_factor_intensity + f(mechanism proxies)``
(see :mod:`vaer.data.synthetic_table`): ownership, trade mode and factor intensity carry
heterogeneity, size class and region do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from conftest import BASE_ROLES
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.config.models import (
    CausalForestDMLSpec,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.synthetic_table import make_synthetic_table
from vaer.data.truth import Truth
from vaer.estimators.fit import fit_estimators
from vaer.heterogeneity import HeterogeneityResult, analyze_heterogeneity, true_gates

ESTIMATORS = ("causal_forest_dml", "linear_dml")
HETEROGENEOUS = ("ownership", "trade_mode", "factor_intensity")


@dataclass(frozen=True)
class Fitted:
    data: AnalysisData
    truth: Truth
    result: HeterogeneityResult


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    table = make_synthetic_table(SyntheticTableConfig(n_units=20_000), random_state=1)
    data = build_analysis_data(table.frame, Roles(**BASE_ROLES))
    specs = [
        CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": 200, "cv": 3}),
        LinearDMLSpec(kind="linear_dml", params={"cv": 3}),
    ]
    estimation = fit_estimators(data, specs, NuisanceConfig(), random_state=1)
    config = HeterogeneityConfig(crossed=[("ownership", "trade_mode")], n_bootstrap=300)
    result = analyze_heterogeneity(estimation, data, config, random_state=1)
    return Fitted(data=data, truth=table.truth, result=result)


def _with_truth(fitted: Fitted, label: str) -> pd.DataFrame:
    gate = fitted.result.get(label).gates.to_frame()
    expected = {
        d: true_gates(fitted.truth, fitted.data.units, d) for d in gate["dimension"].unique()
    }
    gate["truth"] = [
        expected[d][lvl] for d, lvl in zip(gate["dimension"], gate["level"], strict=True)
    ]
    return gate


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ESTIMATORS)
def test_gate_cis_cover_the_true_gates(fitted: Fitted, label: str) -> None:
    gate = _with_truth(fitted, label)
    covered = (gate["ci_low"] <= gate["truth"]) & (gate["truth"] <= gate["ci_high"])
    # 15 single levels + 9 crossed; nominal coverage 95% per level, required >= 90%
    assert len(gate) == 24
    assert covered.mean() >= 0.90, gate.loc[
        ~covered, ["dimension", "level", "estimate", "se", "truth"]
    ]
    # the sup-t joint band covers every level of a dimension at once
    band = (gate["band_low"] <= gate["truth"]) & (gate["truth"] <= gate["band_high"])
    assert band.groupby(gate["dimension"]).all().mean() >= 0.8


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ESTIMATORS)
def test_equality_is_rejected_where_the_truth_is_heterogeneous(fitted: Fitted, label: str) -> None:
    gates = fitted.result.get(label).gates
    for dimension in (*HETEROGENEOUS, "ownership x trade_mode"):
        assert gates.equality(dimension)["p_value"] < 0.01, dimension
    # the largest true contrast (SOE vs private, about -0.45) is significant after
    # adjustment and within 3 SE of the sample's true difference
    tests = gates.tests_frame().set_index(["dimension", "contrast"])
    row = tests.loc[("ownership", "SOE - private")]
    assert row["p_holm"] < 0.01 and row["p_romano_wolf"] < 0.01
    truth = true_gates(fitted.truth, fitted.data.units, "ownership")
    assert abs(row["estimate"] - (truth["SOE"] - truth["private"])) < 3 * row["se"]


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ESTIMATORS)
def test_sorted_gates_increase_and_autoc_is_positive(fitted: Fitted, label: str) -> None:
    item = fitted.result.get(label)
    groups = item.sorted_gates.to_frame()
    per_group = groups[groups["group"] != "top - bottom"]["estimate"].to_numpy()
    assert np.all(np.diff(per_group) > 0)
    top = item.sorted_gates.top_minus_bottom
    assert top["ci_low"] > 0
    autoc = item.rate.target("AUTOC")
    assert autoc["estimate"] > 0 and autoc["p_value"] < 0.01
    assert item.rate.target("QINI")["ci_low"] > 0
    # the calibration test detects heterogeneity and gets the mean right
    assert item.calibration is not None
    differential = item.calibration.term("differential_forest_prediction")
    assert differential["p_value"] < 0.01
    mean = item.calibration.term("mean_forest_prediction")
    assert abs(mean["estimate"] - 1) < 3 * mean["se"]


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ESTIMATORS)
def test_blp_matches_the_projection_of_the_true_effect(fitted: Fitted, label: str) -> None:
    blp = fitted.result.get(label).blp.to_frame().set_index("term")
    covariates = [t for t in blp.index if t != "(intercept)"]
    design = np.column_stack([np.ones(fitted.data.n), fitted.data.x[covariates].to_numpy()])
    tau = fitted.truth.tau_for(fitted.data.units)
    projection = np.linalg.lstsq(design, tau, rcond=None)[0]
    within = np.abs(blp["estimate"].to_numpy() - projection) < 3 * blp["se"].to_numpy()
    assert within.all(), blp.assign(truth=projection)


@pytest.mark.statistical
@pytest.mark.slow
def test_clan_finds_the_characteristics_of_the_most_affected(fitted: Fitted) -> None:
    clan = fitted.result.get("causal_forest_dml").sorted_gates.clan_frame().set_index("variable")
    # knowledge spillover raises the effect, congestion lowers it, private firms gain most
    assert clan.loc["knowledge_spillover", "ci_low"] > 0
    assert clan.loc["congestion", "ci_high"] < 0
    assert clan.loc["ownership=private", "ci_low"] > 0
    assert clan.loc["ownership=SOE", "ci_high"] < 0


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ESTIMATORS)
def test_policy_tree_separates_the_firm_types_that_gain_most(fitted: Fitted, label: str) -> None:
    tree = fitted.result.get(label).policy_tree
    leaves = tree.to_frame()
    tau = fitted.truth.tau_for(fitted.data.units)
    true_ate = float(tau.mean())
    split_on = {rule.split(" ")[0] for r in leaves["rule"] for rule in r.split(" & ")}
    assert split_on <= set(HETEROGENEOUS), split_on
    true_leaf = pd.Series(tau).groupby(tree.leaf_of).mean()
    for row in leaves.itertuples():
        if row.action == "target":
            assert true_leaf[row.leaf] > true_ate
        else:
            assert true_leaf[row.leaf] < true_ate
    # targeted firms gain more than the others, in truth
    assert tau[tree.targeted].mean() > tau[~tree.targeted].mean() + 0.1
    # honest leaf CIs: at most one leaf misses its true effect
    covered = (leaves["ci_low"] <= true_leaf[leaves["leaf"]].to_numpy()) & (
        true_leaf[leaves["leaf"]].to_numpy() <= leaves["ci_high"]
    )
    assert (~covered).sum() <= 1
