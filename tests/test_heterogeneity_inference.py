"""Unit tests of the heterogeneity building blocks: group means, tests, OLS, RATE, trees."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaer.estimators.inference import cluster_robust_mean, group_means
from vaer.heterogeneity import (
    best_linear_projection,
    cluster_ols,
    estimate_gates,
    fit_policy_tree,
    holm,
    rank_average_treatment_effect,
    romano_wolf,
    sorted_gates,
    split_candidates,
    test_calibration,
    wald_test,
)
from vaer.heterogeneity.multiple_testing import multiplier_draws, sup_t_critical
from vaer.heterogeneity.rate import TOC_GRID
from vaer.heterogeneity.sorted_gates import quantile_groups


def _clustered(n_clusters: int = 30, size: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_clusters), size)
    groups = rng.choice(["a", "b", "c"], size=len(clusters))
    values = rng.normal(size=n_clusters)[clusters] + rng.normal(size=len(clusters))
    return rng, clusters, groups, values


# ------------------------------------------------------------------ group means


def test_group_means_of_one_group_equal_cluster_robust_mean() -> None:
    _, clusters, _, values = _clustered()
    single = group_means(values, np.full(len(values), "all"), clusters)
    reference = cluster_robust_mean(values, clusters)
    assert single.estimates[0] == pytest.approx(reference.estimate)
    assert single.se[0] == pytest.approx(reference.se)


def test_group_means_joint_covariance_matches_the_formula() -> None:
    _, clusters, groups, values = _clustered()
    result = group_means(values, groups, clusters)
    assert result.levels == ("a", "b", "c")
    n_clusters = 30
    sums = np.zeros((n_clusters, 3))
    for k, level in enumerate("abc"):
        member = groups == level
        mean = values[member].mean()
        assert result.estimates[k] == pytest.approx(mean)
        for g in range(n_clusters):
            sums[g, k] = (values[member & (clusters == g)] - mean).sum() / member.sum()
    expected = n_clusters / (n_clusters - 1) * sums.T @ sums
    np.testing.assert_allclose(result.cov, expected, rtol=1e-10)
    # a shared cluster shock makes the levels' means positively correlated
    assert result.cov[0, 1] > 0
    diff, diff_cov, _ = result.contrast(np.array([[1.0, -1.0, 0.0]]))
    assert diff[0] == pytest.approx(result.estimates[0] - result.estimates[1])
    assert diff_cov[0, 0] == pytest.approx(
        result.cov[0, 0] + result.cov[1, 1] - 2 * result.cov[0, 1]
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"scores": np.ones(3), "groups": np.array(["a"] * 4), "clusters": np.arange(4)},
            "same length",
        ),
        (
            {"scores": np.ones(4), "groups": np.array(["a"] * 4), "clusters": np.zeros(4)},
            "at least 2 clusters",
        ),
        (
            {
                "scores": np.array([1.0, np.nan, 1, 1]),
                "groups": np.array(["a"] * 4),
                "clusters": np.arange(4),
            },
            "finite",
        ),
        (
            {
                "scores": np.ones(4),
                "groups": np.array(["a"] * 4),
                "clusters": np.arange(4),
                "levels": ["a", "z"],
            },
            "no unit",
        ),
    ],
)
def test_group_means_rejects_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        group_means(**kwargs)


def test_contrast_rejects_wrong_width() -> None:
    _, clusters, groups, values = _clustered()
    with pytest.raises(ValueError, match="must have 3 columns"):
        group_means(values, groups, clusters).contrast(np.ones((1, 2)))


# ------------------------------------------------------------- multiple testing


def test_wald_test_matches_chi2_by_hand() -> None:
    estimates = np.array([1.0, 2.0, 4.0])
    cov = np.diag([0.5, 0.5, 1.0])
    r = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    statistic, df, p = wald_test(estimates, cov, r)
    d = r @ estimates
    v = r @ cov @ r.T
    assert statistic == pytest.approx(float(d @ np.linalg.solve(v, d)))
    assert df == 2
    assert p == pytest.approx(stats.chi2.sf(statistic, 2))


def test_holm_matches_the_step_down_rule() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted: 0.01*4, 0.03*3, 0.04*2, 0.20*1, then running max
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, 0.20])
    assert holm(np.array([])).size == 0


def test_romano_wolf_is_monotone_and_between_raw_and_bonferroni() -> None:
    rng = np.random.default_rng(3)
    draws = rng.standard_normal((4000, 4))
    t = np.array([3.5, 2.2, 1.0, 0.1])
    adjusted = romano_wolf(t, draws)
    raw = 2 * stats.norm.sf(np.abs(t))
    assert np.all(np.diff(adjusted) >= 0)
    assert np.all(adjusted >= raw - 0.01)
    assert np.all(adjusted <= np.minimum(1, 4 * raw) + 0.02)


def test_sup_t_band_is_wider_than_pointwise_and_near_theory_for_independent_draws() -> None:
    rng = np.random.default_rng(4)
    influence = rng.normal(size=(200, 3)) / np.sqrt(200)
    se = np.sqrt(np.diag(influence.T @ influence))
    draws = multiplier_draws(influence, se, 4000, random_state=5)
    crit = sup_t_critical(draws, 0.95)
    # three nearly independent N(0,1): the 95% quantile of the max |t| is ~2.39
    assert stats.norm.ppf(0.975) < crit
    assert crit == pytest.approx(stats.norm.ppf(1 - 0.05 / 6), abs=0.1)


# ------------------------------------------------------------------------- GATEs


def test_gates_table_has_the_contract_columns_and_tests() -> None:
    rng, clusters, groups, values = _clustered()
    types = pd.DataFrame({"own": groups, "reg": rng.choice(["x", "y"], size=len(groups))})
    result = estimate_gates(
        "est",
        values,
        types,
        clusters,
        dimensions=["own"],
        crossed=[("own", "reg")],
        n_bootstrap=100,
    )
    table = result.to_frame()
    assert list(table.columns[:9]) == [
        "estimator",
        "dimension",
        "level",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "n",
        "p_adj",
    ]
    assert set(table["dimension"]) == {"own", "own x reg"}
    assert len(table) == 3 + 6
    assert (table["band_low"] <= table["ci_low"]).all()
    tests = result.tests_frame()
    own = tests[tests["dimension"] == "own"]
    assert (own["test"] == "equality").sum() == 1 and (own["test"] == "difference").sum() == 3
    assert int(result.equality("own")["df"]) == 2
    assert result.equality("own x reg")["df"] == 5
    metrics = result.metrics()
    assert "gate.est.own.a" in metrics and "gate_test.est.own.wald" in metrics
    with pytest.raises(KeyError, match="no equality test"):
        result.equality("size")


def test_gates_reject_unknown_dimensions_and_bad_lengths() -> None:
    _, clusters, groups, values = _clustered()
    types = pd.DataFrame({"own": groups})
    with pytest.raises(ValueError, match=r"not in the data's firm types"):
        estimate_gates("e", values, types, clusters, dimensions=["size"])
    with pytest.raises(ValueError, match="same length"):
        estimate_gates("e", values[:-1], types, clusters, dimensions=["own"])
    with pytest.raises(ValueError, match="n_bootstrap"):
        estimate_gates("e", values, types, clusters, dimensions=["own"], n_bootstrap=5)


# ------------------------------------------------------------------ OLS, BLP, calibration


def test_cluster_ols_intercept_only_equals_cluster_robust_mean() -> None:
    _, clusters, _, values = _clustered()
    fit = cluster_ols(values, np.ones((len(values), 1)), clusters, ["const"])
    reference = cluster_robust_mean(values, clusters)
    assert fit.coef[0] == pytest.approx(reference.estimate)
    assert fit.se[0] == pytest.approx(reference.se)


def test_cluster_ols_recovers_coefficients_and_rejects_bad_designs() -> None:
    rng, clusters, _, noise = _clustered()
    x = rng.normal(size=len(noise))
    fit = cluster_ols(
        1 + 2 * x + 0.1 * noise, np.column_stack([np.ones_like(x), x]), clusters, ["c", "x"]
    )
    np.testing.assert_allclose(fit.coef, [1, 2], atol=0.1)
    with pytest.raises(ValueError, match="collinear"):
        cluster_ols(x, np.column_stack([np.ones_like(x), np.ones_like(x)]), clusters, ["a", "b"])
    with pytest.raises(ValueError, match="must have shape"):
        cluster_ols(x, np.ones((3, 1)), clusters, ["a"])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        cluster_ols(x, np.ones((len(x), 1)), np.zeros(len(x)), ["a"])


def test_calibration_of_a_perfect_prediction_has_coefficients_one() -> None:
    rng, clusters, _, noise = _clustered(n_clusters=60)
    tau = 1 + rng.normal(size=len(noise))
    result = test_calibration("e", tau, tau + 0.5 * noise, clusters)
    mean_row = result.term("mean_forest_prediction")
    diff_row = result.term("differential_forest_prediction")
    assert abs(mean_row["estimate"] - 1) < 3 * mean_row["se"]
    assert abs(diff_row["estimate"] - 1) < 3 * diff_row["se"]
    assert diff_row["p_value"] < 1e-6
    assert set(result.metrics()) == {
        "calibration.e.mean",
        "calibration.e.mean_p_value",
        "calibration.e.differential",
        "calibration.e.differential_p_value",
    }
    with pytest.raises(KeyError, match="no term"):
        result.term("slope")


def test_calibration_rejects_constant_predictions_and_bad_shapes() -> None:
    _, clusters, _, values = _clustered()
    with pytest.raises(ValueError, match="non-constant"):
        test_calibration("e", np.ones_like(values), values, clusters)
    with pytest.raises(ValueError, match="same shape"):
        test_calibration("e", values[:-1], values, clusters)


def test_blp_recovers_a_linear_effect_and_validates_covariates() -> None:
    rng, clusters, _, noise = _clustered(n_clusters=60)
    a = pd.DataFrame({"k": rng.normal(size=len(noise)), "c": rng.normal(size=len(noise))})
    scores = 0.5 + 0.3 * a["k"].to_numpy() - 0.1 * a["c"].to_numpy() + noise
    result = best_linear_projection("e", scores, a, clusters)
    table = result.to_frame().set_index("term")
    for term, truth in (("(intercept)", 0.5), ("k", 0.3), ("c", -0.1)):
        assert abs(table.loc[term, "estimate"] - truth) < 3 * table.loc[term, "se"]
    assert "blp.e.k" in result.metrics()
    with pytest.raises(ValueError, match="must be numeric"):
        best_linear_projection("e", scores, a.assign(k=a["k"].astype(str)), clusters)
    with pytest.raises(ValueError, match="one row per score"):
        best_linear_projection("e", scores, a.iloc[:10], clusters)
    with pytest.raises(ValueError, match="finite"):
        best_linear_projection("e", scores, a.assign(k=np.nan), clusters)


# ------------------------------------------------------------------------ sorted GATES


def test_quantile_groups_are_balanced_and_ordered() -> None:
    tau = np.random.default_rng(0).normal(size=103)
    groups = quantile_groups(tau, 5)
    counts = np.bincount(groups)[1:]
    assert counts.max() - counts.min() <= 1
    assert all(tau[groups == k].max() <= tau[groups == k + 1].min() for k in range(1, 5))
    with pytest.raises(ValueError, match="n_groups"):
        quantile_groups(tau, 1)


def test_sorted_gates_and_clan_on_a_known_ranking() -> None:
    rng, clusters, _, noise = _clustered(n_clusters=60)
    x = rng.normal(size=len(noise))
    tau = 1 + x
    result = sorted_gates("e", tau, tau + noise, clusters, pd.DataFrame({"x": x}), n_groups=4)
    groups = result.to_frame()
    assert list(groups["group"]) == ["1", "2", "3", "4", "top - bottom"]
    assert np.all(np.diff(groups["estimate"].iloc[:4]) > 0)
    top = result.top_minus_bottom
    assert top["estimate"] == pytest.approx(groups["estimate"].iloc[3] - groups["estimate"].iloc[0])
    clan = result.clan_frame().iloc[0]
    assert clan["difference"] == pytest.approx(clan["mean_g4"] - clan["mean_g1"])
    assert clan["ci_low"] > 0
    with pytest.raises(ValueError, match="same length"):
        sorted_gates("e", tau[:-1], tau, clusters, pd.DataFrame({"x": x}))


# ------------------------------------------------------------------------------ RATE


def test_rate_matches_the_direct_formula() -> None:
    rng, clusters, _, noise = _clustered()
    priority = rng.normal(size=len(noise))
    scores = priority + noise
    result = rank_average_treatment_effect("e", priority, scores, clusters, n_bootstrap=50)
    ordered = scores[np.argsort(-priority)]
    n = len(ordered)
    toc = np.cumsum(ordered) / np.arange(1, n + 1) - ordered.mean()
    autoc = toc.mean()
    qini = np.mean(np.arange(1, n + 1) / n * toc)
    assert result.target("AUTOC")["estimate"] == pytest.approx(autoc)
    assert result.target("QINI")["estimate"] == pytest.approx(qini)
    curve = result.toc_frame()
    assert len(curve) == len(TOC_GRID) and curve["toc"].iloc[-1] == pytest.approx(0, abs=1e-12)
    assert {"rate.e.autoc", "rate.e.autoc_se", "rate.e.qini_p_value"} <= set(result.metrics())
    with pytest.raises(KeyError, match="no target"):
        result.target("AUQC")


def test_rate_of_a_constant_priority_is_zero() -> None:
    _, clusters, _, values = _clustered()
    result = rank_average_treatment_effect(
        "e", np.zeros_like(values), values, clusters, n_bootstrap=20
    )
    assert result.target("AUTOC")["estimate"] == pytest.approx(0, abs=1e-12)
    assert result.target("QINI")["estimate"] == pytest.approx(0, abs=1e-12)


@pytest.mark.statistical
def test_rate_bootstrap_is_calibrated_for_an_uninformative_ranking() -> None:
    """Under a random ranking AUTOC is 0; the cluster-bootstrap test rejects ~5%."""
    rejections = []
    for seed in range(60):
        rng, clusters, _, values = _clustered(n_clusters=40, size=10, seed=seed)
        result = rank_average_treatment_effect(
            "e", rng.normal(size=len(values)), values, clusters, n_bootstrap=100, random_state=seed
        )
        rejections.append(result.target("AUTOC")["p_value"] < 0.05)
    # 60 replications: P(Binomial(60, 0.05) > 9) < 0.01
    assert np.mean(rejections) <= 9 / 60


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"priority": np.ones(5)}, "same length"),
        ({"priority": np.full(400, np.nan)}, "finite"),
        ({"n_bootstrap": 3}, "n_bootstrap"),
        ({"clusters": np.zeros(400)}, "at least 2 clusters"),
    ],
)
def test_rate_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"priority": np.ones(400), "scores": np.ones(400), "clusters": np.arange(400)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rank_average_treatment_effect("e", **args)


# ----------------------------------------------------------------------- policy tree


def _brute_force_value(rewards: np.ndarray, candidates, min_leaf: int) -> float:
    """Best depth <= 2 value by plain enumeration of every tree."""
    best = max(rewards.sum(), 0.0)
    for first in candidates:
        for side_a, side_b in product([None, *candidates], repeat=2):
            value, valid = 0.0, True
            for mask, second in ((first.mask, side_a), (~first.mask, side_b)):
                if mask.sum() < min_leaf:
                    valid = False
                parts = [mask] if second is None else [mask & second.mask, mask & ~second.mask]
                for part in parts:
                    if part.sum() < min_leaf:
                        valid = False
                    value += max(rewards[part].sum(), 0.0)
            if valid:
                best = max(best, value)
    return best


def test_policy_tree_search_is_exact_against_brute_force() -> None:
    rng = np.random.default_rng(7)
    n = 300
    types = pd.DataFrame({"own": rng.choice(["s", "p", "f"], n), "mode": rng.choice(["g", "x"], n)})
    numeric = pd.DataFrame({"k": rng.normal(size=n)})
    candidates = split_candidates(types, numeric, n_split_points=4)
    assert len(candidates) == 3 + 1 + 4
    scores = rng.normal(size=n) + 0.8 * (types["own"] == "p") - 0.5 * numeric["k"]
    result = fit_policy_tree(
        "e", scores.to_numpy(), np.arange(n), candidates, cost=0.2, min_leaf=10, honest=False
    )
    rewards = scores.to_numpy() - 0.2
    achieved = rewards[result.targeted].sum()
    assert achieved == pytest.approx(_brute_force_value(rewards, candidates, 10))
    leaves = result.to_frame()
    assert leaves["n"].sum() == n
    assert set(leaves["action"]) <= {"target", "do not target"}


def test_policy_tree_separates_a_planted_group_with_honest_ci() -> None:
    rng = np.random.default_rng(8)
    n_clusters, size = 80, 25
    clusters = np.repeat(np.arange(n_clusters), size)
    n = len(clusters)
    types = pd.DataFrame({"own": rng.choice(["s", "p"], n), "mode": rng.choice(["g", "x", "m"], n)})
    gain = 1.0 * ((types["own"] == "p") & (types["mode"] == "g")).to_numpy()
    scores = gain + rng.normal(size=n)
    result = fit_policy_tree(
        "e", scores, clusters, split_candidates(types, pd.DataFrame(index=range(n))), random_state=1
    )
    targeted = result.targeted
    assert np.all(gain[targeted] == 1.0) and targeted.sum() == (gain == 1.0).sum()
    target_row = result.to_frame().query("action == 'target'").iloc[0]
    # honest: estimated on the other half of the clusters, CI covers the true 1.0
    assert target_row["ci_low"] <= 1.0 <= target_row["ci_high"]
    assert result.metrics()["policy_tree.e.n_leaves"] == len(result.to_frame())


def test_policy_tree_with_no_useful_split_is_one_leaf() -> None:
    n = 200
    types = pd.DataFrame({"own": np.repeat(["a", "b"], n // 2)})
    result = fit_policy_tree(
        "e",
        np.ones(n),
        np.arange(n),
        split_candidates(types, pd.DataFrame(index=range(n))),
        honest=False,
    )
    assert list(result.to_frame()["rule"]) == ["all firms"]


def test_policy_tree_rejects_bad_input() -> None:
    n = 100
    types = pd.DataFrame({"own": np.repeat(["a", "b"], n // 2)})
    candidates = split_candidates(types, pd.DataFrame(index=range(n)))
    with pytest.raises(ValueError, match="at least 4 clusters"):
        fit_policy_tree("e", np.ones(n), np.repeat([0, 1], n // 2), candidates)
    with pytest.raises(ValueError, match="min_leaf"):
        fit_policy_tree("e", np.ones(n), np.arange(n), candidates, min_leaf=0)
    with pytest.raises(ValueError, match="same length"):
        fit_policy_tree("e", np.ones(n - 1), np.arange(n - 1), candidates)
    with pytest.raises(ValueError, match="same length"):
        split_candidates(types, pd.DataFrame(index=range(n + 1)))
    with pytest.raises(ValueError, match="n_split_points"):
        split_candidates(types, pd.DataFrame(index=range(n)), n_split_points=0)


def test_multiplier_draws_need_one_way_influence() -> None:
    from vaer.heterogeneity.multiple_testing import multiplier_draws

    with pytest.raises(ValueError, match="needs one-way cluster influence sums"):
        multiplier_draws(None, np.ones(2), 10, random_state=0)
