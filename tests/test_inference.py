from __future__ import annotations

import numpy as np
import pytest

from vaer.estimators.inference import cluster_robust_mean
from vaer.estimators.nuisance import grouped_folds
from vaer.estimators.scores import continuous_dr_scores


def test_cluster_robust_mean_matches_the_formula() -> None:
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(10), 5)
    scores = rng.normal(size=50)
    result = cluster_robust_mean(scores, clusters)
    centred = scores - scores.mean()
    sums = np.array([centred[clusters == g].sum() for g in range(10)])
    expected = np.sqrt(10 / 9 * np.sum(sums**2) / 50**2)
    assert result.estimate == pytest.approx(scores.mean())
    assert result.se == pytest.approx(expected)
    assert result.n_clusters == 10


@pytest.mark.statistical
def test_cluster_robust_ci_covers_under_intra_cluster_correlation() -> None:
    """With a shared cluster shock, CR1 intervals cover ~95%; i.i.d. SEs would not."""
    rng = np.random.default_rng(1)
    covered_cr, covered_iid = [], []
    for _ in range(400):
        clusters = np.repeat(np.arange(60), 20)
        scores = rng.normal(size=60)[clusters] + rng.normal(size=1200)
        result = cluster_robust_mean(scores, clusters)
        iid = cluster_robust_mean(scores, np.arange(1200))
        covered_cr.append(result.ci_low <= 0 <= result.ci_high)
        covered_iid.append(iid.ci_low <= 0 <= iid.ci_high)
    # 400 replications: the binomial SE of a 0.95 rate is about 0.011
    assert 0.91 <= np.mean(covered_cr) <= 0.99
    assert np.mean(covered_iid) < 0.6


@pytest.mark.parametrize(
    ("scores", "clusters", "message"),
    [
        (np.ones(3), np.zeros(4), "must have the same shape"),
        (np.ones(3), np.zeros(3), "need at least 2 clusters; got 1"),
    ],
)
def test_cluster_robust_mean_errors(scores: np.ndarray, clusters: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_robust_mean(scores, clusters)


def test_dr_scores_formula_and_errors() -> None:
    tau, y_res, t_res, s2 = (
        np.array([1.0, 2.0]),
        np.array([0.5, -1.0]),
        np.array([1.0, 2.0]),
        np.array([2.0, 4.0]),
    )
    expected = tau + t_res * (y_res - tau * t_res) / s2
    np.testing.assert_allclose(continuous_dr_scores(tau, y_res, t_res, s2), expected)
    with pytest.raises(ValueError, match="same shape"):
        continuous_dr_scores(tau, y_res, t_res, np.ones(3))
    with pytest.raises(ValueError, match="strictly positive"):
        continuous_dr_scores(tau, y_res, t_res, np.array([1.0, 0.0]))


def test_grouped_folds_never_split_a_cluster() -> None:
    clusters = np.repeat(np.arange(23), 7)
    folds = grouped_folds(clusters, 5, random_state=0)
    assert len(folds) == 5
    for train, test in folds:
        assert not set(clusters[train]) & set(clusters[test])
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(len(clusters)))
    again = grouped_folds(clusters, 5, random_state=0)
    for (_, a), (_, b) in zip(folds, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_grouped_folds_need_enough_clusters() -> None:
    with pytest.raises(ValueError, match="cv=5 folds need at least 5 clusters; the data have 3"):
        grouped_folds(np.array([0, 1, 2, 0, 1, 2]), 5, random_state=0)


def test_group_means_matches_per_group_cluster_formula() -> None:
    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(2)
    n = 300
    clusters = rng.integers(0, 25, size=n)
    groups = rng.choice(["a", "b", "c"], size=n)
    scores = rng.normal(size=n) + rng.normal(size=25)[clusters]
    result = group_means(scores, groups, clusters)
    assert list(result.labels) == ["a", "b", "c"]
    phi = np.zeros((n, 3))
    for k, g in enumerate(["a", "b", "c"]):
        mask = groups == g
        assert result.estimates[k] == pytest.approx(scores[mask].mean())
        phi[mask, k] = (scores[mask] - scores[mask].mean()) / mask.sum()
    sums = np.array([phi[clusters == c].sum(axis=0) for c in range(25)])
    np.testing.assert_allclose(result.cov, 25 / 24 * sums.T @ sums)
    # a single group reproduces cluster_robust_mean
    one = group_means(scores, np.zeros(n), clusters)
    assert one.se[0] == pytest.approx(cluster_robust_mean(scores, clusters, vcov="CR1").se)
    one_cr2 = group_means(scores, np.zeros(n), clusters, vcov="CR2")
    assert one_cr2.se[0] == pytest.approx(cluster_robust_mean(scores, clusters).se)
    assert one_cr2.df[0] == pytest.approx(cluster_robust_mean(scores, clusters).df)
    assert list(result.to_frame().columns) == [
        "group", "estimate", "se", "ci_low", "ci_high", "df", "n",
    ]  # fmt: skip


def test_two_way_clustering_adds_both_dimensions() -> None:
    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(3)
    n = 2000
    city, industry = rng.integers(0, 40, size=n), rng.integers(0, 30, size=n)
    scores = rng.normal(size=40)[city] + rng.normal(size=30)[industry] + rng.normal(size=n)
    one_way = group_means(scores, np.zeros(n), city)
    two_way = group_means(scores, np.zeros(n), city, clusters2=industry)
    assert two_way.se_type.startswith("two-way")
    # industry shocks are ignored by city clustering: two-way SE must be clearly larger
    assert two_way.se[0] > 1.2 * one_way.se[0]
    # with the second dimension = units, two-way equals one-way up to the CR1 factors
    same = group_means(scores, np.zeros(n), city, clusters2=np.arange(n))
    assert same.se[0] == pytest.approx(one_way.se[0], rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": np.zeros(3)}, "must be 1-d of the same length"),
        ({"scores": np.array([1.0, np.nan, 2.0, 3.0])}, "must be finite"),
        ({"clusters": np.zeros(4)}, "need at least 2 clusters; got 1"),
    ],
)
def test_group_means_errors(kwargs: dict, message: str) -> None:
    from vaer.estimators.inference import group_means

    args = {"scores": np.arange(4.0), "groups": np.zeros(4), "clusters": np.arange(4)}
    with pytest.raises(ValueError, match=message):
        group_means(**{**args, **kwargs})


# ----------------------------------------------------------- small-cluster corrections


def _dense_cr2(y: np.ndarray, x: np.ndarray, clusters: np.ndarray, contrast: np.ndarray):
    """CR2 variance and Bell-McCaffrey df of ``contrast @ beta`` by the textbook matrices
    (Imbens and Kolesar, 2016, eqs. 6 and 9), for comparison with the closed forms."""
    n = len(y)
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y
    resid = y - x @ beta
    hat = x @ bread @ x.T
    meat = np.zeros_like(bread)
    columns = []
    for g in np.unique(clusters):
        rows = np.flatnonzero(clusters == g)
        values, vectors = np.linalg.eigh(np.eye(len(rows)) - hat[np.ix_(rows, rows)])
        adjust = (vectors / np.sqrt(values)) @ vectors.T
        piece = x[rows].T @ adjust @ resid[rows]
        meat += np.outer(piece, piece)
        column = np.zeros(n)
        column += (np.eye(n) - hat)[:, rows] @ adjust @ x[rows] @ bread @ contrast
        columns.append(column)
    variance = float(contrast @ bread @ meat @ bread @ contrast)
    gram = np.array(columns) @ np.array(columns).T
    return variance, float(np.trace(gram) ** 2 / np.trace(gram @ gram)), beta


def test_cr2_mean_matches_the_textbook_matrices_with_unequal_clusters() -> None:
    from vaer.estimators.inference import cluster_robust_mean

    rng = np.random.default_rng(4)
    sizes = np.array([1, 2, 3, 5, 8, 13, 21])
    clusters = np.repeat(np.arange(7), sizes)
    scores = rng.normal(size=len(clusters)) + rng.normal(size=7)[clusters]
    variance, df, _ = _dense_cr2(scores, np.ones((len(scores), 1)), clusters, np.ones(1))
    result = cluster_robust_mean(scores, clusters, vcov="CR2")
    assert result.se == pytest.approx(np.sqrt(variance), rel=1e-10)
    assert result.df == pytest.approx(df, rel=1e-10)
    assert result.df < 6  # unequal sizes: fewer than G - 1 degrees of freedom
    assert result.vcov == "CR2" and result.se_type.startswith("cluster-robust (CR2")


def test_cr2_equals_cr1_with_equal_cluster_sizes() -> None:
    from vaer.estimators.inference import cluster_robust_mean

    rng = np.random.default_rng(5)
    clusters = np.repeat(np.arange(12), 9)
    scores = rng.normal(size=len(clusters))
    cr1 = cluster_robust_mean(scores, clusters, vcov="CR1")
    cr2 = cluster_robust_mean(scores, clusters, vcov="CR2")
    # equal sizes: (1 - 1/G)^-1 = G / (G - 1), and M = c (I - 11'/G) has G - 1 unit roots
    assert cr2.se == pytest.approx(cr1.se, rel=1e-12)
    assert cr2.df == pytest.approx(11.0, rel=1e-12)
    assert cr1.df == 11.0


def test_cr1_matches_statsmodels_cluster_ols_with_t_reference() -> None:
    import statsmodels.api as sm

    from vaer.estimators.inference import cluster_robust_mean

    rng = np.random.default_rng(6)
    clusters = rng.integers(0, 15, size=240)
    scores = rng.normal(size=240) + 0.5 * rng.normal(size=15)[clusters]
    fit = sm.OLS(scores, np.ones(240)).fit(
        cov_type="cluster", cov_kwds={"groups": clusters}, use_t=True
    )
    result = cluster_robust_mean(scores, clusters, vcov="CR1")
    assert result.se == pytest.approx(float(fit.bse[0]), rel=1e-10)
    low, high = fit.conf_int(alpha=0.05)[0]
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-10)
    assert result.p_value == pytest.approx(float(fit.pvalues[0]), rel=1e-8)


def test_t_interval_and_p_value_by_hand() -> None:
    from scipy import stats

    from vaer.estimators.inference import MeanEstimate

    est = MeanEstimate(estimate=1.0, se=0.4, n=100, n_clusters=10, df=9.0, vcov="CR1")
    q = stats.t.ppf(0.975, 9)  # 2.2622
    assert q == pytest.approx(2.2622, abs=1e-4)
    assert est.ci_low == pytest.approx(1.0 - q * 0.4)
    assert est.ci_high == pytest.approx(1.0 + q * 0.4)
    assert est.interval(0.9) == pytest.approx((1.0 - 1.8331 * 0.4, 1.0 + 1.8331 * 0.4), abs=1e-4)
    assert est.p_value == pytest.approx(2 * stats.t.sf(2.5, 9))
    normal = MeanEstimate(estimate=1.0, se=0.4, n=100, n_clusters=10)
    assert normal.critical_value() == pytest.approx(1.959964, abs=1e-6)
    assert MeanEstimate(0.0, 0.0, 5, 5).p_value == 1.0
    assert MeanEstimate(1.0, 0.0, 5, 5).p_value == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: __import__("vaer.estimators.inference").estimators.inference.t_critical(1.0, 5),
         r"`level` must be in \(0, 1\); got 1.0"),
        (lambda: __import__("vaer.estimators.inference").estimators.inference.t_critical(0.9, 0),
         "`df` must be > 0"),
    ],
)  # fmt: skip
def test_t_critical_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_vcov_must_be_known() -> None:
    from vaer.estimators.inference import group_means

    with pytest.raises(ValueError, match="`vcov` must be one of CR1, CR2; got 'CR3'"):
        cluster_robust_mean(np.arange(4.0), np.array([0, 0, 1, 1]), vcov="CR3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`vcov='CR2'` is one-way only"):
        group_means(np.arange(4.0), np.zeros(4), np.arange(4), clusters2=np.arange(4), vcov="CR2")


def test_group_means_cr2_matches_the_textbook_matrices() -> None:
    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(7)
    n = 90
    clusters = np.repeat(np.arange(9), [2, 4, 6, 8, 10, 12, 14, 16, 18])
    groups = rng.choice(["a", "b", "c"], size=n)
    scores = rng.normal(size=n) + rng.normal(size=9)[clusters]
    result = group_means(scores, groups, clusters, vcov="CR2")
    dummies = (groups[:, None] == np.array(["a", "b", "c"])).astype(float)
    for contrast in (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([-1.0, 0, 1.0])):
        variance, df, beta = _dense_cr2(scores, dummies, clusters, contrast)
        np.testing.assert_allclose(result.estimates, beta, rtol=1e-10)
        assert float(contrast @ result.cov @ contrast) == pytest.approx(variance, rel=1e-9)
        assert result.contrast_df(contrast) == pytest.approx(df, rel=1e-9)
    np.testing.assert_allclose(result.df, [result.contrast_df(row) for row in np.eye(3)])
    np.testing.assert_allclose(result.cluster_influence.T @ result.cluster_influence, result.cov)
    assert result.df_resid == 8.0 and result.vcov == "CR2"


def test_group_means_t_intervals_p_values_and_frame() -> None:
    from scipy import stats

    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(8)
    clusters = np.repeat(np.arange(20), 10)
    groups = np.tile(["x", "y"], 100)
    scores = rng.normal(size=200) + 0.3 * (groups == "y")
    result = group_means(scores, groups, clusters)
    q = stats.t.ppf(0.975, 19)
    np.testing.assert_allclose(result.critical_values(), [q, q])
    frame = result.to_frame()
    np.testing.assert_allclose(frame["ci_high"], result.estimates + q * result.se)
    np.testing.assert_allclose(frame["df"], [19.0, 19.0])
    np.testing.assert_allclose(
        result.p_values(), 2 * stats.t.sf(np.abs(result.estimates / result.se), 19)
    )
    assert result.contrast_df(np.array([1.0, -1.0])) == 19.0
    with pytest.raises(ValueError, match=r"`vector` must have 2 entries \(one per level\)"):
        result.contrast_df(np.ones(3))


def test_wald_test_uses_f_with_g_minus_1_df() -> None:
    from scipy import stats

    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(9)
    clusters = np.repeat(np.arange(15), 12)
    groups = np.tile(["a", "b", "c"], 60)
    scores = rng.normal(size=180) + rng.normal(size=15)[clusters]
    result = group_means(scores, groups, clusters)
    restriction = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    test = result.wald_test(restriction)
    diff = restriction @ result.estimates
    chi2 = diff @ np.linalg.solve(restriction @ result.cov @ restriction.T, diff)
    assert test.chi2 == pytest.approx(chi2)
    assert test.statistic == pytest.approx(chi2 / 2)
    assert (test.df1, test.df2) == (2.0, 14.0)
    assert test.p_value == pytest.approx(stats.f.sf(chi2 / 2, 2, 14))
    # the F reference is more conservative than chi2(2) with 15 clusters
    assert test.p_value > stats.chi2.sf(chi2, 2)
    shifted = result.wald_test(restriction, value=diff)
    assert shifted.chi2 == pytest.approx(0.0, abs=1e-12) and shifted.p_value == pytest.approx(1.0)


def test_wald_test_errors() -> None:
    from vaer.estimators.inference import group_means

    clusters = np.repeat(np.arange(3), 8)
    groups = np.tile(["a", "b", "c", "d"], 6)
    scores = np.random.default_rng(10).normal(size=24)
    result = group_means(scores, groups, clusters)
    with pytest.raises(
        ValueError, match="a Wald test of 3 restrictions needs more than 3 clusters"
    ):
        result.wald_test(np.hstack([-np.ones((3, 1)), np.eye(3)]))
    with pytest.raises(ValueError, match="`value` must have 1 entries"):
        result.wald_test(np.array([[1.0, -1.0, 0, 0]]), value=np.zeros(2))
    with pytest.raises(ValueError, match="singular"):
        result.wald_test(np.array([[1.0, -1.0, 0, 0], [2.0, -2.0, 0, 0]]))
    with pytest.raises(ValueError, match=r"`matrix` must have 4 columns"):
        result.wald_test(np.ones((1, 3)))


def test_bell_mccaffrey_df_errors_and_degenerate_contrast() -> None:
    from vaer.estimators.inference import bell_mccaffrey_df

    with pytest.raises(ValueError, match=r"`counts` must have shape \(G, k\)"):
        bell_mccaffrey_df(np.ones((3, 2)), np.ones(3), np.ones(3))
    # a group in a single cluster has no cluster-level variation: the most cautious df
    assert bell_mccaffrey_df(np.array([[4.0], [0.0]]), np.array([4.0]), np.ones(1)) == 1.0


@pytest.mark.statistical
def test_cr2_bell_mccaffrey_covers_with_few_unequal_clusters() -> None:
    """12 clusters of very unequal sizes, independent normal scores (the working model of
    Bell-McCaffrey, under which CR2 is unbiased and its df match the first two moments of
    the variance estimate): CR2 intervals do not undercover, CR1 with a normal reference
    does (the few large clusters carry most of the weight).

    3000 replications: the binomial SD of a 0.95 rate is 0.004, so "no undercoverage" is
    coverage >= 0.95 - 3 SD. The Satterthwaite approximation may err on the safe side.
    """
    rng = np.random.default_rng(11)
    sizes = np.array([2, 2, 3, 3, 4, 5, 6, 8, 12, 20, 40, 80])
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    covered_cr2, covered_cr1_z = [], []
    for _ in range(3000):
        scores = rng.normal(size=len(clusters))
        cr2 = cluster_robust_mean(scores, clusters, vcov="CR2")
        cr1 = cluster_robust_mean(scores, clusters, vcov="CR1")
        covered_cr2.append(cr2.ci_low <= 0 <= cr2.ci_high)
        covered_cr1_z.append(abs(cr1.estimate) <= 1.959964 * cr1.se)
    assert np.mean(covered_cr2) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 3000)
    assert np.mean(covered_cr1_z) < 0.93


# ---------------------------------------------------------------- nuisance construction


def _clustered_rows(seed: int, n_clusters: int = 30, per: int = 20):
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_clusters), per)
    city = rng.normal(size=n_clusters)[clusters]
    xw = np.column_stack([city, rng.normal(size=len(clusters))])
    z = (rng.random(n_clusters) < 0.4).astype(float)[clusters]
    t = 0.5 * xw[:, 0] + z + rng.normal(size=n_clusters)[clusters] * 0.5 + rng.normal(size=len(z))
    y = 0.3 * t + np.sin(xw[:, 0]) + rng.normal(size=len(z))
    return xw, y, t, z, clusters


def test_fit_nuisances_iv_type_outcome_is_g_plus_theta_e() -> None:
    from sklearn.linear_model import LinearRegression

    from vaer.estimators.nuisance import crossfit_predict, fit_nuisances

    xw, y, t, _, clusters = _clustered_rows(12)
    folds = grouped_folds(clusters, 5, random_state=0)
    direct = fit_nuisances(
        xw[:, :1], xw, y, t, folds, LinearRegression, outcome_model="partialling_out"
    )
    assert direct.theta is None
    built = fit_nuisances(xw[:, :1], xw, y, t, folds, LinearRegression, outcome_model="iv_type")
    t_res = t - crossfit_predict(LinearRegression(), xw, t, folds)
    y_res = y - crossfit_predict(LinearRegression(), xw, y, folds)
    theta = float(np.sum(t_res * y_res) / np.sum(t_res**2))
    assert built.theta == pytest.approx(theta)
    g_hat = crossfit_predict(LinearRegression(), xw, y - theta * t, folds)
    np.testing.assert_allclose(built.y_hat, g_hat + theta * built.t_hat)
    np.testing.assert_allclose(built.y_res, y - built.y_hat)
    np.testing.assert_allclose(built.t_hat, direct.t_hat)
    with pytest.raises(
        ValueError, match="`outcome_model` must be one of iv_type, iv_type_linear, iv_type_auto, "
    ):
        fit_nuisances(xw, xw, y, t, folds, LinearRegression, outcome_model="other")
    with pytest.raises(ValueError, match="the treatment residuals are all zero"):
        fit_nuisances(xw, xw, y, xw[:, 0] * 2.0, folds, LinearRegression)


def test_iv_type_linear_outcome_is_g_plus_a_linear_preliminary_effect_times_e() -> None:
    from sklearn.linear_model import LinearRegression

    from vaer.estimators.nuisance import crossfit_predict, fit_nuisances, preliminary_effect

    xw, _, t, _, clusters = _clustered_rows(12)
    rng = np.random.default_rng(3)
    effect = 0.3 + 0.5 * xw[:, 1]  # heterogeneous in the modifier xw[:, 1]
    y = effect * t + np.sin(xw[:, 0]) + rng.normal(size=len(t))
    folds = grouped_folds(clusters, 5, random_state=0)
    x = xw[:, 1:]
    built = fit_nuisances(x, xw, y, t, folds, LinearRegression, outcome_model="iv_type_linear")
    t_res = t - crossfit_predict(LinearRegression(), xw, t, folds)
    y_res = y - crossfit_predict(LinearRegression(), xw, y, folds)
    basis = np.column_stack([np.ones(len(t)), x])
    coef = np.linalg.lstsq(basis * t_res[:, None], y_res, rcond=None)[0]
    assert coef == pytest.approx([0.3, 0.5], abs=0.1)  # the projection finds the effect
    theta = basis @ coef
    np.testing.assert_allclose(preliminary_effect(x, y_res, t_res), theta)
    g_hat = crossfit_predict(LinearRegression(), xw, y - theta * t, folds)
    np.testing.assert_allclose(built.y_hat, g_hat + theta * built.t_hat)
    assert built.theta == pytest.approx(float(np.mean(theta)))
    # without modifiers the preliminary effect is the constant of the iv_type model
    constant = preliminary_effect(None, y_res, t_res)
    assert np.all(constant == float(np.sum(t_res * y_res) / np.sum(t_res**2)))


def test_iv_type_auto_keeps_the_constant_unless_a_linear_effect_predicts_held_out_clusters() -> (
    None
):
    from sklearn.linear_model import LinearRegression

    from vaer.estimators.nuisance import (
        crossfit_predict,
        fit_nuisances,
        linear_effect_fits_better,
        preliminary_effect,
    )

    xw, _, t, _, clusters = _clustered_rows(12)
    rng = np.random.default_rng(3)
    folds = grouped_folds(clusters, 5, random_state=0)
    x = xw[:, 1:]
    t_res = t - crossfit_predict(LinearRegression(), xw, t, folds)
    for slope, linear in ((0.5, True), (0.0, False)):
        y = (0.3 + slope * xw[:, 1]) * t + np.sin(xw[:, 0]) + rng.normal(size=len(t))
        built = fit_nuisances(x, xw, y, t, folds, LinearRegression, outcome_model="iv_type_auto")
        first = fit_nuisances(x, xw, y, t, folds, LinearRegression, outcome_model="iv_type")
        # the choice is made on the iv_type residuals, over held-out clusters
        assert linear_effect_fits_better(x, first.y_res, first.t_res, folds) is linear
        if not linear:
            np.testing.assert_array_equal(built.y_hat, first.y_hat)
            continue
        theta = preliminary_effect(x, first.y_res, first.t_res)
        g_hat = crossfit_predict(LinearRegression(), xw, y - theta * t, folds)
        np.testing.assert_allclose(built.y_hat, g_hat + theta * built.t_hat)
        assert built.theta == pytest.approx(float(np.mean(theta)))
    np.testing.assert_allclose(first.t_res, t_res)


def test_instrument_models_stop_early_on_held_out_clusters_at_any_size() -> None:
    from vaer.config.estimators import NuisanceConfig
    from vaer.estimators.learners import EarlyStoppingRegressor
    from vaer.estimators.nuisance import NuisanceCache

    xw, y, t, z, clusters = _clustered_rows(14)
    # 600 rows are above early_stopping_max_rows=100: the shared models grow fixed trees
    config = NuisanceConfig(n_jobs=1, early_stopping_max_rows=100)
    cache = NuisanceCache(xw[:, :1], xw, y, t, clusters, config, 0, z=z)
    assert isinstance(cache._iv_regressor(), EarlyStoppingRegressor)
    assert cache._iv_regressor().max_rows is None
    assert cache._regressor().max_rows == 100
    assert np.isfinite(cache.iv(5).z_hat).all()
    # an explicit `early_stopping: false` is respected
    off = NuisanceCache(
        xw, xw, y, t, clusters, config.model_copy(update={"early_stopping": False}), 0, z=z
    )
    assert not isinstance(off._iv_regressor(), EarlyStoppingRegressor)


def test_averaged_predict_is_the_mean_over_splits_and_splits_repeat() -> None:
    from sklearn.linear_model import LinearRegression

    from vaer.config.estimators import NuisanceConfig
    from vaer.estimators.nuisance import NuisanceCache, averaged_predict, crossfit_predict

    xw, y, t, z, clusters = _clustered_rows(15)
    splits = [grouped_folds(clusters, 5, random_state=s) for s in (0, 1, 2)]
    expected = np.mean([crossfit_predict(LinearRegression(), xw, y, f) for f in splits], axis=0)
    np.testing.assert_allclose(averaged_predict(LinearRegression, xw, y, splits), expected)
    with pytest.raises(ValueError, match="`splits` must hold at least one set of folds"):
        averaged_predict(LinearRegression, xw, y, [])
    config = NuisanceConfig(model="ridge", n_jobs=1)
    auto = NuisanceCache(xw, xw, y, t, clusters, config, 3, z=z)
    assert auto.repeats == 4  # 30 clusters < 100
    assert len(auto.splits(5)) == 4 and auto.splits(5)[0] is auto.folds(5)
    for folds in auto.splits(5):
        for train, test in folds:
            assert not set(clusters[train]) & set(clusters[test])
    many = NuisanceCache(xw, xw, y, t, np.arange(len(y)) // 2, config, 3, z=z)
    assert many.repeats == 1  # 300 clusters
    one = NuisanceCache(
        xw, xw, y, t, clusters, config.model_copy(update={"crossfit_repeats": 1}), 3, z=z
    )
    assert one.repeats == 1
    # the averaged nuisances are what fit_nuisances gives on the same splits
    from vaer.estimators.learners import make_regressor
    from vaer.estimators.nuisance import fit_nuisances

    direct = fit_nuisances(
        xw, xw, y, t, auto.splits(5)[0], lambda: make_regressor(config, 3),
        extra_folds=auto.splits(5)[1:],
    )  # fmt: skip
    np.testing.assert_allclose(auto.continuous(5).y_hat, direct.y_hat)
    np.testing.assert_allclose(auto.continuous(5).t_res_var, direct.t_res_var)


def test_crossfit_repeats_must_be_positive() -> None:
    from vaer.config.estimators import NuisanceConfig

    with pytest.raises(ValueError, match="`crossfit_repeats` must be an int >= 1 or 'auto'; got 0"):
        NuisanceConfig(crossfit_repeats=0)
