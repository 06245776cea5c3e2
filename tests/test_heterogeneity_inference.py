"""Unit tests of the heterogeneity building blocks: group means, tests, OLS, RATE, trees."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaer.estimators.inference import cluster_robust_mean, group_means
from vaer.heterogeneity import (
    band_critical,
    best_linear_projection,
    cluster_ols,
    estimate_gates,
    fit_policy_tree,
    group_design,
    holm,
    rank_average_treatment_effect,
    romano_wolf,
    sorted_gates,
    split_candidates,
    t_draws,
    test_calibration,
)
from vaer.heterogeneity.folds import fold_codes
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


# ------------------------------------------------------------- CR2 small-sample tests


def _unbalanced(seed: int = 1):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 9, size=9)
    clusters = np.repeat(np.arange(9), sizes)
    n = len(clusters)
    x = np.column_stack([np.ones(n), rng.normal(size=n), (rng.random(n) < 0.3) * 1.0])
    y = x @ [1.0, 0.5, -0.2] + rng.normal(size=9)[clusters] + rng.normal(size=n)
    return x, y, clusters


def _brute_force_cr2(x: np.ndarray, y: np.ndarray, clusters: np.ndarray):
    """CR2 covariance and the vectors g_j = (I - H)_{.j} A_j X_j of Bell and McCaffrey,
    from full n x n matrices (the textbook formulas, no shortcuts)."""
    n = len(y)
    bread = np.linalg.inv(x.T @ x)
    hat = x @ bread @ x.T
    resid = y - hat @ y
    meat = np.zeros((x.shape[1], x.shape[1]))
    g_blocks = []
    for j in np.unique(clusters):
        rows = clusters == j
        values, vectors = np.linalg.eigh(np.eye(rows.sum()) - hat[np.ix_(rows, rows)])
        adjust = (vectors / np.sqrt(values)) @ vectors.T
        u = x[rows].T @ adjust @ resid[rows]
        meat += np.outer(u, u)
        embedded = np.zeros((n, x.shape[1]))
        embedded[rows] = adjust @ x[rows]
        g_blocks.append((np.eye(n) - hat) @ embedded @ bread)  # (n, p): g_j = this @ c
    return bread @ meat @ bread, np.array(g_blocks)


def test_cr2_intercept_is_the_one_sample_t_test_of_cluster_means() -> None:
    """Equal clusters, intercept only: CR2 with Bell-McCaffrey df is exactly the t-test on
    the G cluster means with G - 1 df (scipy's ttest_1samp)."""
    rng = np.random.default_rng(0)
    n_clusters, size = 12, 5
    clusters = np.repeat(np.arange(n_clusters), size)
    y = rng.normal(size=n_clusters)[clusters] + rng.normal(size=len(clusters)) + 0.3
    tests = cluster_ols(y, np.ones((len(y), 1)), clusters, ["const"]).coefficients()
    means = np.array([y[clusters == g].mean() for g in range(n_clusters)])
    reference = stats.ttest_1samp(means, 0.0)
    assert tests.t_stat[0] == pytest.approx(reference.statistic)
    assert tests.df[0] == pytest.approx(n_clusters - 1)
    assert tests.p_values()[0] == pytest.approx(reference.pvalue)
    assert tests.p_values("greater")[0] == pytest.approx(reference.pvalue / 2)
    ci = reference.confidence_interval(0.9)
    half = tests.half_width(0.9)[0]
    assert (tests.estimates[0] - half, tests.estimates[0] + half) == pytest.approx(
        (ci.low, ci.high)
    )


def test_htz_is_hotellings_t2_in_a_balanced_design() -> None:
    """Every cluster has m firms of each of 3 types: the HTZ test of equal GATEs is
    Hotelling's one-sample T^2 on the clusters' vectors of type differences, F(2, G - 2)."""
    rng = np.random.default_rng(2)
    n_clusters, n_levels, size = 12, 3, 5
    clusters = np.repeat(np.arange(n_clusters), n_levels * size)
    types = np.tile(np.repeat(np.arange(n_levels), size), n_clusters)
    y = (
        rng.normal(size=n_clusters)[clusters]
        + 0.7 * rng.normal(size=(n_clusters, n_levels))[clusters, types]
        + rng.normal(size=len(clusters))
    )
    design, rows = group_design(types, clusters)
    assert design.terms == ("0", "1", "2") and len(rows) == len(y)
    restriction = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    test = design.fit(y).wald(restriction)
    cell = np.array(
        [
            [y[(clusters == g) & (types == k)].mean() for k in range(n_levels)]
            for g in range(n_clusters)
        ]
    )
    diffs = cell @ restriction.T
    mean, cov = diffs.mean(axis=0), np.cov(diffs.T)
    t2 = n_clusters * mean @ np.linalg.solve(cov, mean)
    f = (n_clusters - 2) / (2 * (n_clusters - 1)) * t2
    assert test.statistic == pytest.approx(f)
    assert (test.df_num, test.df_den) == (2, pytest.approx(n_clusters - 2))
    assert test.p_value == pytest.approx(stats.f.sf(f, 2, n_clusters - 2))


def test_cr2_df_and_htz_match_the_full_matrix_formulas() -> None:
    x, y, clusters = _unbalanced()
    fit = cluster_ols(y, x, clusters, ["a", "b", "c"])
    cov, g = _brute_force_cr2(x, y, clusters)
    np.testing.assert_allclose(fit.cov, cov, rtol=1e-10)
    contrasts = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 0.0]])
    tests = fit.contrasts(contrasts)
    for row, c in enumerate(contrasts):
        vectors = g @ c  # (G, n)
        p = vectors @ vectors.T
        assert tests.df[row] == pytest.approx(np.trace(p) ** 2 / np.sum(p**2))
    np.testing.assert_allclose(
        tests.cluster_contributions.T @ tests.cluster_contributions, tests.cov, rtol=1e-10
    )
    # Pustejovsky and Tipton's eta for the first two rows, from the q x q x G x G array
    q = 2
    vectors = np.einsum("jnp,sp->sjn", g, contrasts[:q])
    blocks = np.einsum("sjn,tkn->stjk", vectors, vectors)
    omega = np.einsum("stjj->st", blocks)
    values, basis = np.linalg.eigh(omega)
    root = (basis / np.sqrt(values)) @ basis.T
    b = np.einsum("as,stjk,tb->abjk", root, blocks, root)
    total = sum(
        np.sum(b[s, t] * b[t, s]) + np.sum(b[s, s] * b[t, t]) for s in range(q) for t in range(q)
    )
    eta = q * (q + 1) / total
    test = fit.wald(contrasts[:q])
    wald = (
        contrasts[:q]
        @ fit.coef
        @ np.linalg.solve(contrasts[:q] @ fit.cov @ contrasts[:q].T, contrasts[:q] @ fit.coef)
    )
    assert test.df_den == pytest.approx(eta - q + 1)
    assert test.statistic == pytest.approx((eta - q + 1) / (eta * q) * wald)
    # one restriction: the F-test is the squared t-test with the same df
    single = fit.wald(contrasts[:1])
    assert single.statistic == pytest.approx(tests.t_stat[0] ** 2)
    assert single.df_den == pytest.approx(tests.df[0])


def test_a_firm_type_found_in_few_cities_gets_few_degrees_of_freedom() -> None:
    """A group found in few clusters gets few degrees of freedom (about its clusters - 1)."""
    rng = np.random.default_rng(5)
    clusters = np.repeat(np.arange(40), 10)
    region = np.where(clusters < 6, "west", "east")
    y = rng.normal(size=40)[clusters] + rng.normal(size=400)
    design, _ = group_design(region, clusters)
    tests = design.fit(y).coefficients()
    east, west = design.terms.index("east"), design.terms.index("west")
    assert tests.df[west] == pytest.approx(5, abs=0.5)
    assert tests.df[east] == pytest.approx(33, abs=1)


def test_a_coefficient_informed_by_one_cluster_has_no_test() -> None:
    rng = np.random.default_rng(6)
    clusters = np.repeat(np.arange(10), 8)
    labels = np.where(clusters == 0, "alone", "shared")
    y = rng.normal(size=len(clusters))
    tests = group_design(labels, clusters)[0].fit(y).coefficients()
    assert np.isnan(tests.df[0]) and np.isnan(tests.se[0]) and np.isnan(tests.p_values()[0])
    assert np.isfinite(tests.df[1])


def test_cluster_ols_rejects_bad_input() -> None:
    x, y, clusters = _unbalanced()
    fit = cluster_ols(y, x, clusters, ["a", "b", "c"])
    with pytest.raises(ValueError, match="must have 3 columns"):
        fit.contrasts(np.ones((1, 2)))
    with pytest.raises(ValueError, match="must have 3 columns"):
        fit.wald(np.ones((1, 4)))
    with pytest.raises(ValueError, match="'two-sided' or 'greater'"):
        fit.coefficients().p_values("less")
    with pytest.raises(ValueError, match="must have shape"):
        fit.design.fit(y[:-1])
    with pytest.raises(ValueError, match="must be finite"):
        fit.design.fit(np.full_like(y, np.nan))
    with pytest.raises(ValueError, match="`clusters` must have length"):
        cluster_ols(y, x, clusters[:-1], ["a", "b", "c"])
    with pytest.raises(ValueError, match="no unit"):
        group_design(np.array(["a", "b"] * 10), np.arange(20), ["a", "z"])
    with pytest.raises(ValueError, match="same length"):
        group_design(np.array(["a", "b"]), np.arange(3))


# ------------------------------------------------------------- multiple testing


def test_holm_matches_the_step_down_rule() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted: 0.01*4, 0.03*3, 0.04*2, 0.20*1, then running max
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, 0.20])
    assert holm(np.array([])).size == 0
    # a NaN (no test) is left out of the family
    np.testing.assert_allclose(holm(np.array([0.01, np.nan, 0.04])), [0.02, np.nan, 0.04])


def test_t_draws_have_student_t_margins_with_each_components_df() -> None:
    rng = np.random.default_rng(3)
    contributions = rng.normal(size=(30, 3))
    se = np.sqrt(np.diag(contributions.T @ contributions))
    df = np.array([4.0, 12.0, np.nan])
    draws = t_draws(contributions, se, df, 20_000, random_state=4)
    assert np.isnan(draws[:, 2]).all()
    for k in range(2):
        # Kolmogorov-Smirnov at 20,000 draws: a 0.001-level test of the t(df) margin
        assert stats.kstest(draws[:, k], stats.t(df[k]).cdf).pvalue > 0.001
    # the correlation of the draws is the estimates' (the chi-square scale is shared)
    implied = (contributions.T @ contributions)[0, 1] / (se[0] * se[1])
    assert np.corrcoef(draws[:, 0], draws[:, 1])[0, 1] == pytest.approx(implied, abs=0.03)
    with pytest.raises(ValueError, match="must have shape"):
        t_draws(contributions, se[:2], df, 10, random_state=0)
    with pytest.raises(ValueError, match="n_draws"):
        t_draws(contributions, se, df, 0, random_state=0)


def test_romano_wolf_is_monotone_and_between_raw_and_bonferroni() -> None:
    rng = np.random.default_rng(3)
    contributions = rng.normal(size=(200, 4)) / np.sqrt(200)
    se = np.sqrt(np.diag(contributions.T @ contributions))
    df = np.full(4, 15.0)
    draws = t_draws(contributions, se, df, 4000, random_state=1)
    t = np.array([3.5, 2.2, 1.0, 0.1])
    raw = 2 * stats.t.sf(np.abs(t), df)
    adjusted = romano_wolf(raw, draws, df)
    assert np.all(np.diff(adjusted) >= 0)
    assert np.all(adjusted >= raw - 0.01)
    assert np.all(adjusted <= np.minimum(1, 4 * raw) + 0.02)
    assert np.isnan(romano_wolf(np.array([np.nan, 0.01]), draws[:, :2], df[:2])[0])


def test_band_critical_is_the_t_quantile_for_one_component_and_wider_for_several() -> None:
    rng = np.random.default_rng(4)
    contributions = rng.normal(size=(300, 3)) / np.sqrt(300)
    se = np.sqrt(np.diag(contributions.T @ contributions))
    df = np.array([6.0, 6.0, 30.0])
    one = band_critical(t_draws(contributions[:, :1], se[:1], df[:1], 20_000, 5), df[:1], 0.95)
    # the 95% quantile of |t_6| from 20,000 draws: MC SE of the quantile about 0.03
    assert one[0] == pytest.approx(stats.t.ppf(0.975, 6), abs=0.1)
    joint = band_critical(t_draws(contributions, se, df, 20_000, 5), df, 0.95)
    pointwise = stats.t.ppf(0.975, df)
    bonferroni = stats.t.ppf(1 - 0.05 / 6, df)
    assert np.all(joint > pointwise) and np.all(joint < bonferroni + 0.1)
    with pytest.raises(ValueError, match="level"):
        band_critical(np.zeros((10, 1)), df[:1], 1.5)


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
    # levels: CR2 group means with t(df) p-values and CIs; equality: the HTZ F-test
    design, _ = group_design(groups, clusters)
    fit = design.fit(values)
    means = fit.coefficients()
    own = table[table["dimension"] == "own"]
    np.testing.assert_allclose(own["se"], means.se)
    np.testing.assert_allclose(own["df"], means.df)
    np.testing.assert_allclose(own["p_value"], means.p_values())
    np.testing.assert_allclose(own["ci_high"] - own["estimate"], means.half_width(0.95))
    joint = fit.wald(np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]))
    assert result.equality("own")["statistic"] == pytest.approx(joint.statistic)
    assert result.equality("own")["df_den"] == pytest.approx(joint.df_den)
    assert result.equality("own")["p_value"] == pytest.approx(joint.p_value)
    metrics = result.metrics()
    assert "gate.est.own.a" in metrics and "gate_test.est.own.wald" in metrics
    with pytest.raises(KeyError, match="no equality test"):
        result.equality("size")


def test_a_level_in_one_city_is_left_out_of_the_equality_test() -> None:
    _, clusters, groups, values = _clustered(n_clusters=30, size=20, seed=4)
    labels = np.where(clusters == 0, "rare", groups)
    result = estimate_gates(
        "e", values, pd.DataFrame({"own": labels}), clusters, dimensions=["own"], n_bootstrap=50
    )
    rare = result.to_frame().set_index("level").loc["rare"]
    assert np.isnan(rare["se"]) and np.isnan(rare["p_value"]) and np.isnan(rare["df"])
    equality = result.equality("own")
    assert equality["contrast"] == "levels equal, except rare (firms in one city only)"
    design, _ = group_design(labels, clusters)
    order = design.terms  # a, b, c, rare
    restriction = np.array([[-1.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 0.0]])
    assert order == ("a", "b", "c", "rare")
    reference = design.fit(values).wald(restriction)
    assert equality["p_value"] == pytest.approx(reference.p_value)
    assert equality["df"] == 2


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
    with pytest.raises(ValueError, match="varies within folds"):
        test_calibration("e", np.ones_like(values), values, clusters)
    with pytest.raises(ValueError, match="same shape"):
        test_calibration("e", values[:-1], values, clusters)
    # a prediction that is constant within each fold carries no within-fold ranking
    folds = clusters % 2
    with pytest.raises(ValueError, match="varies within folds"):
        test_calibration("e", 1.0 + folds, values, clusters, folds=folds)
    with pytest.raises(ValueError, match="span several"):
        test_calibration("e", values + 2, values, clusters, folds=np.arange(len(values)) % 2)


def test_calibration_centres_predictions_within_folds_and_uses_t_df() -> None:
    rng, clusters, _, noise = _clustered(n_clusters=40)
    folds = (clusters >= 20).astype(int)
    tau = 1 + rng.normal(size=len(noise)) + 0.5 * folds
    scores = tau + noise
    result = test_calibration("e", tau, scores, clusters, folds=folds)
    fold_mean = np.array([tau[folds == k].mean() for k in (0, 1)])[folds]
    reference = cluster_ols(
        scores, np.column_stack([fold_mean, tau - fold_mean]), clusters, ["m", "d"]
    ).coefficients()
    table = result.to_frame()
    np.testing.assert_allclose(table["estimate"], reference.estimates)
    np.testing.assert_allclose(table["df"], reference.df)
    np.testing.assert_allclose(table["p_value"], stats.t.sf(reference.t_stat, reference.df))
    assert (table["df"] < 40).all()


def test_blp_recovers_a_linear_effect_and_validates_covariates() -> None:
    rng, clusters, _, noise = _clustered(n_clusters=60)
    a = pd.DataFrame({"k": rng.normal(size=len(noise)), "c": rng.normal(size=len(noise))})
    scores = 0.5 + 0.3 * a["k"].to_numpy() - 0.1 * a["c"].to_numpy() + noise
    result = best_linear_projection("e", scores, a, clusters)
    table = result.to_frame().set_index("term")
    for term, truth in (("(intercept)", 0.5), ("k", 0.3), ("c", -0.1)):
        assert abs(table.loc[term, "estimate"] - truth) < 3 * table.loc[term, "se"]
    assert "blp.e.k" in result.metrics()
    # the last row: HTZ F-test that every slope is zero
    joint = result.to_frame().iloc[-1]
    reference = result.fit.wald(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert joint["term"] == "all slopes = 0 (joint F)" and np.isnan(joint["estimate"])
    assert joint["p_value"] == pytest.approx(reference.p_value)
    assert joint["df"] == pytest.approx(reference.df_den)
    assert result.metrics()["blp.e.joint_p_value"] == pytest.approx(reference.p_value)
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
    # within folds: every fold is split into its own quintiles
    folds = np.arange(103) % 2
    within = quantile_groups(tau + 10 * folds, 5, folds)
    for k in (0, 1):
        np.testing.assert_array_equal(within[folds == k], quantile_groups(tau[folds == k], 5))
    with pytest.raises(ValueError, match="in a fold"):
        quantile_groups(tau[:6], 5, np.arange(6) % 2)


def test_fold_codes_checks_length_and_clusters() -> None:
    np.testing.assert_array_equal(fold_codes(None, 3), [0, 0, 0])
    np.testing.assert_array_equal(fold_codes(np.array(["b", "a", "b"]), 3), [1, 0, 1])
    with pytest.raises(ValueError, match="must have shape"):
        fold_codes(np.zeros(2), 3)
    with pytest.raises(ValueError, match="span several"):
        fold_codes(np.array([0, 1, 1]), 3, clusters=np.array([5, 5, 6]))


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
    # top - bottom: CR2 contrast of the group means, t-test with Bell-McCaffrey df
    design, _ = group_design(quantile_groups(tau, 4), clusters, ["1", "2", "3", "4"])
    reference = design.fit(tau + noise).contrasts(np.array([[-1.0, 0.0, 0.0, 1.0]]))
    assert top["se"] == pytest.approx(reference.se[0])
    assert top["df"] == pytest.approx(reference.df[0])
    assert top["p_value"] == pytest.approx(reference.p_values()[0])
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
    # one-sided p-value from t with G - 1 df
    row = result.target("AUTOC")
    assert row["df"] == 29
    assert row["p_value"] == pytest.approx(stats.t.sf(row["estimate"] / row["se"], 29))
    curve = result.toc_frame()
    assert len(curve) == len(TOC_GRID) and curve["toc"].iloc[-1] == pytest.approx(0, abs=1e-12)
    assert {"rate.e.autoc", "rate.e.autoc_se", "rate.e.qini_p_value"} <= set(result.metrics())
    with pytest.raises(KeyError, match="no target"):
        result.target("AUQC")


def test_rate_with_folds_averages_the_folds_rankings() -> None:
    rng, clusters, _, noise = _clustered()
    folds = (clusters % 3).astype(int)
    priority = rng.normal(size=len(noise)) + folds
    scores = priority + noise
    result = rank_average_treatment_effect(
        "e", priority, scores, clusters, folds=folds, n_bootstrap=20
    )
    expected = {"AUTOC": 0.0, "QINI": 0.0}
    for k in range(3):
        part = folds == k
        alone = rank_average_treatment_effect(
            "e", priority[part], scores[part], clusters[part], n_bootstrap=20
        )
        for target in expected:
            expected[target] += part.mean() * alone.target(target)["estimate"]
    for target, value in expected.items():
        assert result.target(target)["estimate"] == pytest.approx(value)
    with pytest.raises(ValueError, match="span several"):
        rank_average_treatment_effect(
            "e", priority, scores, clusters, folds=np.arange(len(scores)) % 2, n_bootstrap=20
        )


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
    # leaf p-values: t-test of a zero effect with the leaf's Bell-McCaffrey df
    leaves = result.to_frame()
    assert (leaves["df"] < n_clusters / 2).all()
    np.testing.assert_allclose(
        leaves["p_value"], 2 * stats.t.sf(np.abs(leaves["estimate"] / leaves["se"]), leaves["df"])
    )


def test_a_policy_leaf_of_one_cluster_gets_no_interval() -> None:
    clusters = np.repeat(np.arange(10), 20)
    types = pd.DataFrame({"kind": np.where(clusters == 0, "rare", "common")})
    scores = np.where(clusters == 0, 3.0, 0.0) + np.random.default_rng(9).normal(size=200)
    result = fit_policy_tree(
        "e",
        scores,
        clusters,
        split_candidates(types, pd.DataFrame(index=range(200))),
        min_leaf=10,
        honest=False,
    )
    leaves = result.to_frame().set_index("action")
    assert leaves.loc["target", "n"] == 20
    assert leaves.loc[["target"], ["se", "ci_low", "df", "p_value"]].isna().all(axis=None)
    assert leaves.loc["do not target", "df"] == pytest.approx(8, abs=0.5)


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
