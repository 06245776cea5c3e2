"""Heterogeneity analyses against known truth: the size of every test's reference
distribution on a small clustered design, and the synthetic firm panel (20k firms).

The analysis table is built from the panel the way panel mode does
(:func:`vaer.measures.study.load_study_data` with the demo's measures: resistance to the
COVID shock, exact truth). The estimators are fitted once (module-scoped fixture): shared
LightGBM nuisances, a causal forest with 200 trees and a linear DML. The panel's effect is
``tau = ate + h (F - mean F)`` with ``F`` additive over firm-type and mechanism-proxy terms
(see :mod:`vaer.data.synthetic`). Which dimensions carry heterogeneity, which contrast is
largest, which firm types gain most and the sign of each modifier's effect are read from
the :class:`~vaer.data.truth.Truth` object (true SHAP values and true GATEs), not
hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from vaer.config import load_experiment
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.config.models import CausalForestDMLSpec, LinearDMLSpec, NuisanceConfig
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.truth import Truth
from vaer.estimators.fit import fit_estimators
from vaer.heterogeneity import (
    HeterogeneityResult,
    analyze_heterogeneity,
    best_linear_projection,
    estimate_gates,
    fit_policy_tree,
    rank_average_treatment_effect,
    sorted_gates,
    split_candidates,
    test_calibration,
    true_gates,
)
from vaer.heterogeneity.gates import CROSS
from vaer.measures.study import load_study_data

ESTIMATORS = ("causal_forest_dml", "linear_dml")


# ------------------------------------------------- size of the reference distributions


def _null_draw(seed: int, n_clusters: int = 16):
    """A constant effect (0) observed through scores with a city shock and t(5) noise, in
    16 cities of very unequal size (120 / rank^0.8 firms, at least 5); region is a city
    attribute (6 of 16 cities outside the east on average), ownership a firm attribute;
    ``tau_hat`` is a prediction fitted elsewhere (one random slope on a city-correlated
    covariate per half of the cities), independent of the scores."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(5, (120 / np.arange(1, n_clusters + 1) ** 0.8).astype(int))
    clusters = np.repeat(np.arange(n_clusters), sizes)
    n = len(clusters)
    region = rng.choice(["east", "central", "west"], n_clusters, p=[0.6, 0.25, 0.15])[clusters]
    owner = rng.choice(["SOE", "private", "foreign"], n, p=[0.2, 0.55, 0.25])
    z = rng.normal(size=n_clusters)[clusters] + rng.normal(size=n)
    scores = rng.normal(size=n_clusters)[clusters] + rng.standard_t(5, size=n)
    folds = (rng.permutation(n_clusters) < n_clusters // 2)[clusters].astype(int)
    tau_hat = 0.5 + rng.normal(size=2)[folds] * z + 0.3 * rng.normal(size=n)
    types = pd.DataFrame({"ownership": owner, "region": region})
    return clusters, types, z, scores, folds, tau_hat


@pytest.mark.statistical
def test_every_reference_distribution_holds_its_size_with_few_unequal_clusters() -> None:
    """150 null draws: every test rejects at most 17 times in 150 at the 5% level.

    For a correct 5% test the count is Binomial(150, 0.05) (mean 7.5) and
    P(count > 17) < 0.001; normal reference distributions with CR1 SEs (vaer before
    CR2) rejected 17-37% of these draws (GATE levels 20%, equality 24%, Holm 34%).
    """
    n_draws = 150
    found: dict[str, list[float]] = {}
    for seed in range(n_draws):
        clusters, types, z, scores, folds, tau_hat = _null_draw(seed)
        gates = estimate_gates(
            "e", scores, types, clusters, dimensions=["ownership", "region"],
            n_bootstrap=100, random_state=seed,
        )  # fmt: skip
        levels, tests = gates.to_frame(), gates.tests_frame()
        by_dimension = levels.groupby("dimension")
        outside = (levels["band_low"] > 0) | (levels["band_high"] < 0)
        calibration = test_calibration("e", tau_hat, scores + 0.5, clusters, folds=folds)
        groups = sorted_gates(
            "e", tau_hat, scores, clusters, pd.DataFrame({"z": z}), folds=folds, n_groups=3
        ).to_frame()
        rate = rank_average_treatment_effect(
            "e", tau_hat, scores, clusters, folds=folds, n_bootstrap=50, random_state=seed
        )
        blp = best_linear_projection("e", scores, pd.DataFrame({"z": z}), clusters).to_frame()
        tree = fit_policy_tree(
            "e", scores, clusters,
            split_candidates(types, pd.DataFrame(index=range(len(scores)))),
            min_leaf=20, random_state=seed,
        ).to_frame()  # fmt: skip
        rejected = {
            "GATE level": (levels["p_value"] < 0.05).mean(),
            "GATE Holm": (by_dimension["p_adj"].min() < 0.05).mean(),
            "GATE Romano-Wolf": (by_dimension["p_romano_wolf"].min() < 0.05).mean(),
            "GATE band": outside.groupby(levels["dimension"]).any().mean(),
            "equality F": (tests.query("test == 'equality'")["p_value"] < 0.05).mean(),
            "difference": (tests.query("test == 'difference'")["p_value"] < 0.05).mean(),
            "calibration": calibration.term("differential_forest_prediction")["p_value"] < 0.05,
            "sorted group": (groups["p_value"].iloc[:-1] < 0.05).mean(),
            "top - bottom": groups["p_value"].iloc[-1] < 0.05,
            "AUTOC": rate.target("AUTOC")["p_value"] < 0.05,
            "BLP": (blp["p_value"] < 0.05).mean(),
            "policy leaf": (tree["p_value"].dropna() < 0.05).mean(),
        }
        for name, value in rejected.items():
            found.setdefault(name, []).append(float(value))
    rates = {name: float(np.mean(values)) for name, values in found.items()}
    assert all(rate <= 17 / n_draws for rate in rates.values()), rates
    # the tests do reject: a rate of 0 would mean NaN p-values, not a calibrated test
    assert min(rates.values()) > 0, rates


@dataclass(frozen=True)
class Fitted:
    data: AnalysisData
    truth: Truth
    firm_types: list[str]
    heterogeneous: tuple[str, ...]
    crossed: str
    result: HeterogeneityResult


def heterogeneous_dimensions(truth: Truth, units: np.ndarray, columns: list[str]) -> list[str]:
    """Columns whose true SHAP value varies over ``units`` (the truth's ``f_j`` is not
    constant), ordered by that variance, largest first."""
    variance = truth.shap_for(units)[columns].var()
    return list(variance[variance > 1e-12].sort_values(ascending=False).index)


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    config = load_experiment(ROOT / "experiments" / "baseline.yaml")
    assert config.data.mode == "panel" and config.data.source == "synthetic"
    assert config.data.panel.n_firms == 20_000
    loaded = load_study_data(config.data, config.roles, config.measures, seed=1)
    assert loaded.truth is not None and loaded.summary(config.roles)["truth_exact"] is True
    data = build_analysis_data(loaded.frame, config.roles)
    truth = loaded.truth
    firm_types = list(config.roles.firm_types)
    heterogeneous = heterogeneous_dimensions(truth, data.units, firm_types)
    assert len(heterogeneous) >= 2, heterogeneous
    # cross the two firm types that carry the most heterogeneity in the truth
    pair = (heterogeneous[0], heterogeneous[1])
    specs = [
        CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": 200, "cv": 3}),
        LinearDMLSpec(kind="linear_dml", params={"cv": 3}),
    ]
    estimation = fit_estimators(data, specs, NuisanceConfig(), random_state=1)
    # ranking-based p-values are withheld by default; these tests check their power
    het_config = HeterogeneityConfig(crossed=[pair], n_bootstrap=300, ranking_tests=True)
    result = analyze_heterogeneity(estimation, data, het_config, random_state=1)
    return Fitted(
        data=data,
        truth=truth,
        firm_types=firm_types,
        heterogeneous=tuple(heterogeneous),
        crossed=f"{pair[0]}{CROSS}{pair[1]}",
        result=result,
    )


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
    # every single level plus every crossed level; nominal 95% per level, required >= 90%
    types = fitted.truth.firm_types.loc[fitted.data.units]
    first, second = fitted.crossed.split(CROSS)
    n_levels = sum(types[d].nunique() for d in fitted.firm_types)
    n_crossed = (types[first].astype(str) + CROSS + types[second].astype(str)).nunique()
    assert len(gate) == n_levels + n_crossed
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
    for dimension in (*fitted.heterogeneous, fitted.crossed):
        assert gates.equality(dimension)["p_value"] < 0.01, dimension
    # the largest true contrast between two levels of one firm type is significant after
    # adjustment and within 3 SE of the sample's true difference
    contrasts = {
        (d, a, b): truth[a] - truth[b]
        for d in fitted.firm_types
        for truth in [true_gates(fitted.truth, fitted.data.units, d)]
        for a, b in combinations(truth.index, 2)
    }
    dimension, a, b = max(contrasts, key=lambda k: abs(contrasts[k]))
    tests = gates.tests_frame().set_index(["dimension", "contrast"])
    if (dimension, f"{a} - {b}") in tests.index:
        row, true_difference = tests.loc[(dimension, f"{a} - {b}")], contrasts[(dimension, a, b)]
    else:
        row, true_difference = tests.loc[(dimension, f"{b} - {a}")], -contrasts[(dimension, a, b)]
    assert row["p_holm"] < 0.01 and row["p_romano_wolf"] < 0.01
    assert abs(row["estimate"] - true_difference) < 3 * row["se"]


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
    covariates = [t for t in blp.index if t in fitted.data.x.columns]
    blp = blp.loc[["(intercept)", *covariates]]  # the coefficients, not the joint F row
    design = np.column_stack([np.ones(fitted.data.n), fitted.data.x[covariates].to_numpy()])
    tau = fitted.truth.tau_for(fitted.data.units)
    projection = np.linalg.lstsq(design, tau, rcond=None)[0]
    within = np.abs(blp["estimate"].to_numpy() - projection) < 3 * blp["se"].to_numpy()
    assert within.all(), blp.assign(truth=projection)


@pytest.mark.statistical
@pytest.mark.slow
def test_clan_finds_the_characteristics_of_the_most_affected(fitted: Fitted) -> None:
    clan = fitted.result.get("causal_forest_dml").sorted_gates.clan_frame().set_index("variable")
    units = fitted.data.units
    # the numeric modifiers with the two largest true effect terms: the most affected
    # group has more of a modifier that raises the effect and less of one that lowers it
    # (the direction is the sign of the correlation of the modifier with its true SHAP)
    shap = fitted.truth.shap_for(units).reset_index(drop=True)
    numeric = [c for c in shap.columns if c not in fitted.firm_types and c in clan.index]
    strongest = shap[numeric].var().sort_values(ascending=False).index[:2]
    for variable in strongest:
        raises = fitted.data.x[variable].reset_index(drop=True).corr(shap[variable]) > 0
        if raises:
            assert clan.loc[variable, "ci_low"] > 0, variable
        else:
            assert clan.loc[variable, "ci_high"] < 0, variable
    # the firm type with the largest true GATE spread: its best level is over-represented
    # among the most affected, its worst under-represented
    dimension = fitted.heterogeneous[0]
    truth = true_gates(fitted.truth, units, dimension)
    assert clan.loc[f"{dimension}={truth.idxmax()}", "ci_low"] > 0
    assert clan.loc[f"{dimension}={truth.idxmin()}", "ci_high"] < 0


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("label", ESTIMATORS)
def test_policy_tree_separates_the_firm_types_that_gain_most(fitted: Fitted, label: str) -> None:
    tree = fitted.result.get(label).policy_tree
    leaves = tree.to_frame()
    tau = fitted.truth.tau_for(fitted.data.units)
    true_ate = float(tau.mean())
    split_on = {rule.split(" ")[0] for r in leaves["rule"] for rule in r.split(" & ")}
    assert split_on <= set(fitted.heterogeneous), split_on
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
