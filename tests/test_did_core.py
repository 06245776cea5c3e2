"""vaer.did: Callaway–Sant'Anna ATT(g, t), aggregations, cluster inference, pre-trend test.

Exactness checks against closed forms (2x2 DiD, outcome regression, the DR formula
computed independently, share-weighted aggregations), error paths, unbalanced-panel
bookkeeping, and Monte Carlo checks against the simulated panel's known ATT(g, t).
The comparison with moderndid (agreement to ~1e-12) is benchmarks/did_vs_moderndid.py,
kept out of the suite because moderndid is not a vaer dependency.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import f as f_dist
from scipy.stats import ncf, norm
from scipy.stats import t as t_dist

from vaer.did import (
    CellOptions,
    PanelColumns,
    aggregate,
    att_gt,
    cluster_se,
    cluster_vcov,
    multiplier_bootstrap,
    pretrend_test,
)
from vaer.did.drdid import two_period_att
from vaer.did.inference import arm_leverage_factor
from vaer.did.simulate import simulate_staggered

ROLES = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")
ASYMPTOTIC = CellOptions(inference="asymptotic")
"""R ``did``'s inference (CR1, normal, bootstrap bands), for checks of its formulas."""


def two_by_two(seed: int = 0, n: int = 400, n_clusters: int = 40) -> pd.DataFrame:
    """Two periods, one cohort treated in the second, never-treated controls."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, n_clusters, n)
    treated = (city % 3 == 0).astype(int)
    x = rng.normal(size=n) + 0.5 * treated
    y0 = x + rng.normal(size=n)
    y1 = y0 + 0.4 + 0.5 * x + 1.5 * treated + rng.normal(size=n)
    return pd.DataFrame(
        {
            "firm": np.repeat(np.arange(n), 2),
            "city": np.repeat(city, 2),
            "year": np.tile([2000, 2001], n),
            "cohort": np.repeat(np.where(treated == 1, 2001, 0), 2),
            "x": np.repeat(x, 2),
            "y": np.column_stack([y0, y1]).ravel(),
        }
    )


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, object]:
    return simulate_staggered(1500, 50, random_state=11)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_two_by_two_equals_difference_of_mean_changes(method: str) -> None:
    data = two_by_two()
    wide = data.pivot(index="firm", columns="year", values="y")
    change = (wide[2001] - wide[2000]).to_numpy()
    unit = data.drop_duplicates("firm").set_index("firm").loc[wide.index]
    d = (unit["cohort"] == 2001).to_numpy()
    expected = change[d].mean() - change[~d].mean()

    result = att_gt(data, ROLES, method=method, options=ASYMPTOTIC)
    assert len(result.att) == 1
    assert result.att[0] == pytest.approx(expected, abs=1e-10)

    # city-clustered SE by hand: psi = D (dY - m1)/p - (1 - D)(dY - m0)/(1 - p)
    n, p = len(d), d.mean()
    psi = np.where(d, (change - change[d].mean()) / p, -(change - change[~d].mean()) / (1 - p))
    sums = pd.Series(psi).groupby(unit["city"].to_numpy()).sum().to_numpy() / n
    g = len(sums)
    assert result.se[0] == pytest.approx(np.sqrt(g / (g - 1) * np.sum(sums**2)), rel=1e-10)
    frame = result.to_frame()
    assert list(frame.columns[:5]) == ["group", "time", "event_time", "base_period", "att"]
    row = frame.iloc[0]
    assert (row.group, row.time, row.event_time, row.base_period) == (2001, 2001, 0, 2000)
    assert (row.n_treated, row.n_control, row.post) == (d.sum(), (~d).sum(), True)
    z = norm.ppf(0.975)
    assert row.ci_low == pytest.approx(row.att - z * row.se, abs=1e-12)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_small_cluster_se_is_bell_mccaffrey_cr2_of_the_2x2_regression(method: str) -> None:
    """Without covariates every method is the OLS slope of dY on (1, D); the small-cluster
    SE must equal that regression's CR2 variance, computed here from its definition
    (Bell and McCaffrey 2002: residuals of cluster c premultiplied by (I - H_cc)^{-1/2}),
    and the interval must use t with the Satterthwaite df of the adjusted cluster sums."""
    data = two_by_two(seed=3, n=300, n_clusters=12)
    wide = data.pivot(index="firm", columns="year", values="y")
    change = (wide[2001] - wide[2000]).to_numpy()
    unit = data.drop_duplicates("firm").set_index("firm").loc[wide.index]
    d = (unit["cohort"] == 2001).to_numpy().astype(float)
    city = unit["city"].to_numpy()
    x = np.column_stack([np.ones(len(d)), d])
    bread = np.linalg.inv(x.T @ x)
    resid = change - x @ (bread @ x.T @ change)
    meat, scores = np.zeros((2, 2)), []
    for c in np.unique(city):
        rows = city == c
        xc = x[rows]
        values, vectors = np.linalg.eigh(np.eye(rows.sum()) - xc @ bread @ xc.T)
        adjusted = vectors @ np.diag(values**-0.5) @ vectors.T @ resid[rows]
        score = (bread @ xc.T @ adjusted)[1]
        scores.append(score)
        meat += np.outer(xc.T @ adjusted, xc.T @ adjusted)
    cr2 = np.sqrt((bread @ meat @ bread)[1, 1])
    scores_arr = np.array(scores)
    df = np.sum(scores_arr**2) ** 2 / np.sum(scores_arr**4)

    result = att_gt(data, ROLES, method=method)
    assert result.inference == "small_cluster"
    assert result.se[0] == pytest.approx(cr2, rel=1e-8)
    assert result.df[0] == pytest.approx(df, rel=1e-8)
    row = result.to_frame().iloc[0]
    assert row.ci_high - row.att == pytest.approx(t_dist.ppf(0.975, df) * cr2, rel=1e-8)
    # with one estimate the Bonferroni band is the pointwise interval
    assert row.band_high == pytest.approx(row.ci_high, rel=1e-12)


def test_small_cluster_columns_are_asymptotic_ones_scaled_by_arm_leverage(panel) -> None:
    data, _ = panel
    small = att_gt(data, ROLES, covariates=["x1", "x2"])
    plain = att_gt(data, ROLES, covariates=["x1", "x2"], options=ASYMPTOTIC)
    np.testing.assert_allclose(small.att, plain.att, rtol=0, atol=0)
    for k in range(len(small.att)):
        rows = plain.influence[:, k] != 0
        treated = small.cohort[rows] == small.group[k]
        factor = arm_leverage_factor(small.cluster[rows], treated, small.n_clusters)
        np.testing.assert_allclose(small.influence[rows, k], plain.influence[rows, k] * factor)
    # CR2 replaces CR1's G/(G-1) and never shrinks a cell's SE by more than that factor
    g = small.n_clusters
    assert np.all(small.se >= plain.se * np.sqrt((g - 1) / g) - 1e-15)
    assert np.all((small.df >= 1) & (small.df <= g))


def test_outcome_regression_matches_ols_closed_form() -> None:
    data = two_by_two(seed=1)
    wide = data.pivot(index="firm", columns="year", values="y")
    unit = data.drop_duplicates("firm").set_index("firm").loc[wide.index]
    change = (wide[2001] - wide[2000]).to_numpy()
    d = (unit["cohort"] > 0).to_numpy()
    x = np.column_stack([np.ones(len(d)), unit["x"].to_numpy()])
    beta = np.linalg.lstsq(x[~d], change[~d], rcond=None)[0]
    expected = np.mean(change[d] - x[d] @ beta)
    result = att_gt(data, ROLES, covariates=["x"], method="reg")
    assert result.att[0] == pytest.approx(expected, abs=1e-10)


def test_doubly_robust_matches_independent_formula() -> None:
    """Sant'Anna–Zhao DR: mean over treated of dY - m(X) minus odds-weighted controls."""
    data = two_by_two(seed=2)
    wide = data.pivot(index="firm", columns="year", values="y")
    unit = data.drop_duplicates("firm").set_index("firm").loc[wide.index]
    change = (wide[2001] - wide[2000]).to_numpy()
    d = (unit["cohort"] > 0).to_numpy().astype(float)
    x = np.column_stack([np.ones(len(d)), unit["x"].to_numpy()])

    def negloglik(b: np.ndarray) -> float:
        eta = x @ b
        return float(np.sum(np.logaddexp(0.0, eta) - d * eta))

    b = minimize(negloglik, np.zeros(2), method="BFGS", options={"gtol": 1e-10}).x
    p = expit(x @ b)
    beta = np.linalg.lstsq(x[d == 0], change[d == 0], rcond=None)[0]
    resid = change - x @ beta
    w = p * (1 - d) / (1 - p)
    expected = resid[d == 1].mean() - np.sum(w * resid) / np.sum(w)
    result = att_gt(data, ROLES, covariates=["x"], method="dr")
    assert result.att[0] == pytest.approx(expected, abs=1e-6)


def test_influence_functions_are_mean_zero_and_aligned(panel) -> None:
    data, _ = panel
    result = att_gt(data, ROLES, covariates=["x1", "x2"], options=ASYMPTOTIC)
    assert np.max(np.abs(result.influence.mean(axis=0))) < 1e-8
    frame = result.influence_frame()
    assert frame.index.equals(pd.Index(np.sort(data["firm"].unique())))
    assert frame.shape == (data["firm"].nunique(), len(result.att))
    # a unit outside a cell's sample has influence 0 there: cohort 2016 in cohort 2014's cells
    cells_2014 = frame.columns.get_level_values("group") == 2014
    later = result.cohort == 2016
    assert np.all(result.influence[np.ix_(later, cells_2014)] == 0.0)


def test_covariates_given_per_unit_equal_covariates_by_column(panel) -> None:
    data, _ = panel
    per_unit = data.drop_duplicates("firm").set_index("firm")[["x1", "x2"]]
    by_column = att_gt(data, ROLES, covariates=["x1", "x2"])
    by_frame = att_gt(data, ROLES, covariates=per_unit)
    np.testing.assert_allclose(by_frame.att, by_column.att, atol=1e-12)
    np.testing.assert_allclose(by_frame.se, by_column.se, rtol=1e-10)


def test_arrays_instead_of_columns(panel) -> None:
    data, _ = panel
    from_arrays = att_gt(
        None,
        PanelColumns(
            unit=data["firm"].to_numpy(),
            period=data["year"].to_numpy(),
            cohort=data["cohort"].to_numpy(),
            cluster=data["city"].to_numpy(),
            outcome=data["y"].to_numpy(),
        ),
    )
    np.testing.assert_allclose(from_arrays.att, att_gt(data, ROLES).att, atol=1e-12)


def test_cells_bases_and_controls_follow_the_rules(panel) -> None:
    data, _ = panel
    varying = att_gt(data, ROLES).to_frame()
    post = varying[varying.post]
    assert np.all(post.base_period == post.group - 1)
    pre = varying[~varying.post]
    assert np.all(pre.base_period == pre.time - 1)
    assert varying.time.min() == 2011  # the first period is only a base under "varying"

    universal = att_gt(data, ROLES, options=CellOptions(base_period="universal")).to_frame()
    assert np.all(universal.base_period == universal.group - 1)
    reference = universal[universal.time == universal.base_period]
    assert len(reference) == 3 and np.all(reference.att == 0) and reference.se.isna().all()

    anticip = att_gt(data, ROLES, options=CellOptions(anticipation=1)).to_frame()
    assert np.all(anticip[anticip.post].base_period == anticip[anticip.post].group - 2)

    notyet = att_gt(data, ROLES, options=CellOptions(control_group="notyet")).to_frame()
    cohort = data.drop_duplicates("firm")["cohort"].to_numpy()
    cell = notyet[(notyet.group == 2014) & (notyet.time == 2014)].iloc[0]
    assert cell.n_control == np.sum((cohort == 0) | (cohort > 2014))
    cell = notyet[(notyet.group == 2014) & (notyet.time == 2015)].iloc[0]
    assert cell.n_control == np.sum((cohort == 0) | (cohort > 2015))
    never_cell = varying[(varying.group == 2014) & (varying.time == 2015)].iloc[0]
    assert never_cell.n_control == np.sum(cohort == 0)


# --------------------------------------------------------------------- unbalanced panels


def test_unbalanced_cells_count_every_dropped_unit() -> None:
    data = two_by_two(seed=3, n=60, n_clusters=10)
    gone = {0: 2000, 1: 2001, 2: 2001}  # unit -> the year it is missing
    mask = np.ones(len(data), dtype=bool)
    for firm, year in gone.items():
        mask &= ~((data.firm == firm) & (data.year == year))
    extra = pd.DataFrame(  # a unit seen only in 2002: missing in both base and t
        {"firm": [999], "city": [0], "year": [2002], "cohort": [0], "x": [0.0], "y": [1.0]}
    )
    result = att_gt(pd.concat([data[mask], extra]), ROLES)
    cell = result.drops[(result.drops.group == 2001) & (result.drops.time == 2001)].iloc[0]
    assert cell.missing_base_only == 1
    assert cell.missing_time_only == 2
    assert cell.missing_both == 1
    units = data.drop_duplicates("firm").set_index("firm")
    eligible = len(units) + 1
    assert cell.eligible_treated + cell.eligible_control == eligible
    assert cell.n_treated + cell.n_control == eligible - 4
    lost = units.loc[list(gone), "cohort"]
    assert cell.n_treated == np.sum(units.cohort > 0) - np.sum(lost > 0)


def test_cells_without_comparison_units_are_listed_as_skipped() -> None:
    data, _ = simulate_staggered(800, 30, random_state=4)
    data = data[data.cohort > 0]  # no never treated: the last cohort has no comparison
    result = att_gt(data, ROLES, options=CellOptions(control_group="notyet"))
    skipped = result.skipped
    assert len(skipped) > 0
    assert set(skipped.reason) == {"no comparison unit observed in both the base period and t"}
    # a cell has comparison units iff some other cohort starts after max(t, base)
    cohorts = (2014, 2015, 2016)
    expected = set()
    for g in cohorts:
        for t in range(2011, 2020):
            base = g - 1 if t >= g else t - 1
            if not any(c != g and c > max(t, base) for c in cohorts):
                expected.add((g, t))
    assert set(zip(skipped.group, skipped.time, strict=True)) == expected
    estimated = set(zip(result.group.tolist(), result.time.tolist(), strict=True))
    assert len(estimated) == 27 - len(expected) and not estimated & expected


@pytest.mark.statistical
def test_unbalanced_panel_stays_unbiased_and_covers() -> None:
    """Random entry/exit (MCAR) on 150 seeds: no bias, pointwise coverage in [0.92, 0.98]."""
    errors, covered = [], []
    z = norm.ppf(0.975)
    for seed in range(150):
        data, truth = simulate_staggered(1500, 100, unbalanced=True, random_state=1000 + seed)
        result = att_gt(data, ROLES, covariates=["x1", "x2"])
        true = truth.att_gt(result.group, result.time)
        post = result.post
        errors.append(np.mean((result.att - true)[post]))
        covered.append(np.abs(result.att - true) <= z * result.se)
    errors_arr = np.array(errors)
    t_stat = errors_arr.mean() / (errors_arr.std(ddof=1) / np.sqrt(len(errors_arr)))
    assert abs(t_stat) < 3.0
    assert 0.92 <= np.mean(np.concatenate(covered)) <= 0.98
    dropped = result.drops[["missing_base_only", "missing_time_only", "missing_both"]]
    assert dropped.to_numpy().sum() > 0  # the design did drop units, and they were counted


@pytest.fixture(scope="module")
def unbalanced() -> pd.DataFrame:
    return simulate_staggered(1200, 40, unbalanced=True, random_state=5)[0]


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize("control_group", ["never", "notyet"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("anticipation", [0, 1])
def test_every_option_combination_on_an_unbalanced_panel(
    unbalanced: pd.DataFrame, method: str, control_group: str, base_period: str, anticipation: int
) -> None:
    """Estimating equations hold exactly: every cell's influence function has mean 0."""
    result = att_gt(
        unbalanced,
        ROLES,
        covariates=["x1", "x2"],
        method=method,
        options=CellOptions(
            inference="asymptotic",
            control_group=control_group,
            base_period=base_period,
            anticipation=anticipation,
        ),
    )
    assert np.max(np.abs(result.influence.mean(axis=0))) < 1e-8
    reference = result.time == result.base_period
    assert reference.sum() == (3 if base_period == "universal" else 0)
    assert np.all(result.att[reference] == 0) and np.all(np.isfinite(result.se[~reference]))
    post = result.post
    assert np.all(result.base_period[post] == result.group[post] - 1 - anticipation)
    for kind in ("simple", "dynamic", "group", "calendar"):
        assert np.isfinite(aggregate(result, kind).overall_se)


# ------------------------------------------------------------------------- aggregations


def test_aggregations_match_share_weighted_closed_forms(panel) -> None:
    data, _ = panel
    result = att_gt(data, ROLES, covariates=["x1", "x2"])
    frame = result.to_frame()
    cohort = pd.Series(result.cohort)
    share = cohort.value_counts() / len(cohort)
    frame["p"] = frame.group.map(share)
    post = frame[frame.post]

    simple = aggregate(result, "simple")
    assert simple.overall_estimate == pytest.approx(
        np.sum(post.p * post.att) / post.p.sum(), abs=1e-12
    )
    dynamic = aggregate(result, "dynamic")
    for key, est in zip(dynamic.keys, dynamic.estimate, strict=True):
        cells = frame[frame.event_time == key]
        assert est == pytest.approx(np.sum(cells.p * cells.att) / cells.p.sum(), abs=1e-12)
    assert dynamic.overall_estimate == pytest.approx(
        dynamic.estimate[dynamic.keys >= 0].mean(), abs=1e-12
    )
    group = aggregate(result, "group")
    by_group = post.groupby("group").att.mean()
    np.testing.assert_allclose(group.estimate, by_group.to_numpy(), atol=1e-12)
    p = share.loc[group.keys].to_numpy()
    assert group.overall_estimate == pytest.approx(np.sum(p * by_group) / p.sum(), abs=1e-12)
    calendar = aggregate(result, "calendar")
    assert calendar.keys[0] == 2014
    c2015 = post[post.time == 2015]
    assert calendar.estimate[1] == pytest.approx(np.sum(c2015.p * c2015.att) / c2015.p.sum())

    window = aggregate(result, "dynamic", min_e=-2, max_e=2)
    assert list(window.keys) == [-2, -1, 0, 1, 2]
    balanced = aggregate(result, "dynamic", balance_e=2)
    assert balanced.keys.max() == 2
    # balance_e=2 keeps cohorts with >= 2 post periods after g: all three here (last year 2019)
    assert balanced.estimate[balanced.keys == 2][0] == pytest.approx(
        dynamic.estimate[dynamic.keys == 2][0]
    )
    out = dynamic.to_frame()
    assert list(out.columns) == [
        "aggregation",
        "key",
        "estimate",
        "se",
        "df",
        "ci_low",
        "ci_high",
        "band_low",
        "band_high",
        "overall",
    ]
    assert out.overall.sum() == 1 and np.isnan(out.key.iloc[-1])


def test_aggregate_se_includes_the_estimated_weight_term(panel) -> None:
    """Dropping the weight term (treating p_g as known) gives a different, smaller SE."""
    data, _ = panel
    result = att_gt(data, ROLES, covariates=["x1", "x2"])
    simple = aggregate(result, "simple")
    post = result.post
    share = pd.Series(result.cohort).value_counts() / result.n_units
    w = share.loc[result.group[post]].to_numpy()
    w = w / w.sum()
    without = cluster_se(result.influence[:, post] @ w[:, None], result.cluster, result.n_clusters)
    assert simple.overall_se != pytest.approx(without[0], rel=1e-3)


def test_universal_reference_event_time_is_zero_without_se(panel) -> None:
    data, _ = panel
    result = att_gt(
        data, ROLES, options=CellOptions(inference="asymptotic", base_period="universal")
    )
    dynamic = aggregate(result, "dynamic", n_boot=199, random_state=0)
    ref = dynamic.keys == -1
    assert dynamic.estimate[ref][0] == 0.0 and np.isnan(dynamic.se[ref][0])
    assert np.isfinite(dynamic.crit_value)


# --------------------------------------------------------------------------- inference


def test_bootstrap_matches_analytic_se_and_is_reproducible(panel) -> None:
    data, _ = panel
    result = att_gt(data, ROLES, n_boot=4000, random_state=5, options=ASYMPTOTIC)
    again = att_gt(data, ROLES, n_boot=4000, random_state=5, options=ASYMPTOTIC)
    assert result.crit_value == again.crit_value
    assert result.se_boot is not None
    # the bootstrap variance is the analytic one in expectation; with B draws the ratio
    # of SEs has sd ~ sqrt(kurtosis-ish / (2B)) < 0.02 for B = 4000: allow 4 sd
    ratio = result.se_boot / result.se
    assert np.all(np.abs(ratio - 1.0) < 0.08)
    # the sup-t value of 27 correlated cells lies between the pointwise and Bonferroni ones
    assert norm.ppf(0.975) < result.crit_value < norm.ppf(1 - 0.025 / len(result.att))
    frame = result.to_frame()
    assert np.all(frame.band_low <= frame.ci_low) and np.all(frame.band_high >= frame.ci_high)


@pytest.mark.parametrize("weights", ["mammen", "rademacher"])
def test_single_estimate_critical_value_is_normal(weights: str) -> None:
    rng = np.random.default_rng(0)
    n, g = 20_000, 400
    cluster = rng.integers(0, g, n)
    influence = rng.normal(size=(n, 1)) + rng.normal(size=g)[cluster][:, None]
    boot = multiplier_bootstrap(
        influence, cluster, g, n_boot=20_000, weights=weights, random_state=1
    )
    # sample quantile of |N(0,1)| at 0.95 from 20,000 draws: sd ~ 0.02; allow ~4 sd
    assert boot.crit_value == pytest.approx(norm.ppf(0.975), abs=0.08)


@pytest.mark.slow
@pytest.mark.statistical
@pytest.mark.parametrize("inference", ["asymptotic", "small_cluster"])
def test_coverage_of_cells_event_times_and_uniform_band(inference: str) -> None:
    """200 seeds of the staggered design with 120 cities (about 30 treated per cohort),
    in both inference modes (intervals and bands as ``to_frame`` prints them).

    Targets 0.95; the range [0.92, 0.98] is about +/- 2 binomial sd for a single rate
    over 200 seeds (sd 0.015) and wider for the pooled rates. Bonferroni bands may be
    conservative: at most 1.0.
    """
    n_boot = 999 if inference == "asymptotic" else 0
    cells, events, bands, rejections = [], [], [], []
    for seed in range(200):
        data, truth = simulate_staggered(2500, 120, random_state=seed)
        result = att_gt(
            data, ROLES, covariates=["x1", "x2"], options=CellOptions(inference=inference)
        )
        frame = result.to_frame()
        true_cells = truth.att_gt(result.group, result.time)
        cells.append((frame.ci_low <= true_cells) & (true_cells <= frame.ci_high))
        dynamic = aggregate(result, "dynamic", n_boot=n_boot, random_state=seed)
        path = dynamic.to_frame().iloc[:-1]
        true_e = np.array([truth.dynamic(int(e)) for e in dynamic.keys])
        events.append((path.ci_low <= true_e) & (true_e <= path.ci_high))
        bands.append(bool(np.all((path.band_low <= true_e) & (true_e <= path.band_high))))
        rejections.append(pretrend_test(dynamic).p_value < 0.05)
    assert 0.92 <= np.mean(np.concatenate(cells)) <= 0.98
    assert 0.92 <= np.mean(np.concatenate(events)) <= 0.98
    assert 0.92 <= np.mean(bands) <= (0.98 if inference == "asymptotic" else 1.0)
    # size of the 5% pre-trend test: binomial sd 0.015 over 200 seeds, allow 3 sd above
    assert np.mean(rejections) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)


def test_pretrend_test_statistic_and_reference(panel) -> None:
    data, _ = panel
    result = att_gt(data, ROLES, covariates=["x1", "x2"], options=ASYMPTOTIC)
    test = pretrend_test(result)
    assert list(test.event_times) == [-5, -4, -3, -2, -1]  # 2010 is only a base
    dynamic = aggregate(result, "dynamic")
    pre = dynamic.keys < 0
    vcov = cluster_vcov(dynamic.influence[:, pre], result.cluster, result.n_clusters)
    wald = dynamic.estimate[pre] @ np.linalg.solve(vcov, dynamic.estimate[pre])
    assert test.wald == pytest.approx(wald, rel=1e-10)
    assert (test.df, test.df_denom) == (5, result.n_clusters - 1)
    assert test.statistic == pytest.approx(wald / 5)
    assert test.p_value == pytest.approx(f_dist.sf(wald / 5, 5, result.n_clusters - 1))
    assert test.to_frame().shape == (1, 8)
    short = pretrend_test(result, min_e=-2)
    assert list(short.event_times) == [-2, -1]


def test_small_cluster_pretrend_test_is_bonferroni_over_event_times(panel) -> None:
    data, _ = panel
    result = att_gt(data, ROLES, covariates=["x1", "x2"])
    test = pretrend_test(result)
    dynamic = aggregate(result, "dynamic")
    pre = dynamic.keys < 0
    t_stat = np.abs(dynamic.estimate[pre]) / dynamic.se[pre]
    p_each = 2 * t_dist.sf(t_stat, dynamic.df[pre])
    assert test.test == "bonferroni_t" and test.df == 5
    assert test.statistic == pytest.approx(t_stat.max(), rel=1e-12)
    assert test.p_value == pytest.approx(min(1.0, 5 * p_each.min()), rel=1e-12)
    assert np.isnan(test.wald) and "Bonferroni" in test.describe()
    # the Bonferroni band over the same five event times excludes 0 iff the test rejects
    crit = t_dist.ppf(1 - 0.05 / (2 * 5), dynamic.df[pre])
    assert bool(np.any(t_stat > crit)) == (test.p_value < 0.05)


def test_pretrend_test_detects_broken_parallel_trends() -> None:
    """Unadjusted DiD under covariate-specific trends: the leads estimate the known drift,
    and the F test rejects where its power (from the noncentral F) is near one."""
    data, truth = simulate_staggered(6000, 150, trend=1.0, adoption_slope=2.0, random_state=3)
    # no covariates: the x1-specific trend biases every cell
    result = att_gt(data, ROLES, options=ASYMPTOTIC)
    dynamic = aggregate(result, "dynamic")
    pre = dynamic.keys < 0
    drift = np.array([truth.unconditional_pre_att(int(e)) for e in dynamic.keys[pre]])
    assert np.all(np.abs(dynamic.estimate[pre] - drift) <= 4 * dynamic.se[pre])
    vcov = cluster_vcov(dynamic.influence[:, pre], result.cluster, result.n_clusters)
    noncentrality = drift @ np.linalg.solve(vcov, drift)
    q, dfd = int(pre.sum()), result.n_clusters - 1
    power = ncf.sf(f_dist.ppf(0.95, q, dfd), q, dfd, noncentrality)
    assert power > 0.999  # a property of the design: the test below can only fail on a bug
    assert pretrend_test(dynamic).p_value < 0.05
    # a lead's drift is > 7 SEs (its estimate, within 4 SEs of it, > 3 SEs); the
    # Bonferroni-t test of the small-cluster mode over 5 leads with >= 10 df has a
    # critical value < t_10(0.995) = 3.17: it must reject too
    assert np.max(np.abs(drift) / dynamic.se[pre]) > 7
    small = pretrend_test(att_gt(data, ROLES))
    assert small.df_denom >= 10
    assert small.p_value < 0.05


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"method": "ols"}, r"`method` must be one of \('dr', 'ipw', 'reg'\); got 'ols'"),
        ({"control_group": "nevertreated"}, r"`control_group` must be one of"),
        ({"base_period": "fixed"}, r"`base_period` must be one of"),
        ({"anticipation": -1}, r"`anticipation` must be an int >= 0; got -1"),
        ({"anticipation": 1.5}, r"`anticipation` must be an int >= 0; got 1.5"),
        ({"trim_level": 0.2}, r"`trim_level` must be in \(0.5, 1\]"),
        ({"n_boot": -5}, r"`n_boot` must be an int >= 0; got -5"),
        ({"boot_weights": "normal"}, r"`boot_weights` must be one of"),
        ({"alpha": 1.5}, r"`alpha` must be in \(0, 1\)"),
        ({"outcome": "sales"}, r"`outcome` column 'sales' is not in the data"),
        ({"covariates": ["size"]}, r"`covariates` column 'size' is not in the data"),
        ({"anticipation": 4}, r"cohort 2014 \(\d+ units\) has no pre-period"),
    ],
)
def test_att_gt_rejects_bad_options(panel, changes: dict, match: str) -> None:
    data, _ = panel
    fields = {f.name for f in dataclasses.fields(CellOptions)}
    roles = {f.name for f in dataclasses.fields(PanelColumns)}
    with pytest.raises(ValueError, match=match):
        att_gt(
            data,
            dataclasses.replace(ROLES, **{k: v for k, v in changes.items() if k in roles}),
            options=CellOptions(**{k: v for k, v in changes.items() if k in fields}),
            **{k: v for k, v in changes.items() if k not in fields | roles},
        )


def test_att_gt_rejects_bad_panels(panel) -> None:
    data, _ = panel
    with pytest.raises(ValueError, match="control_group='never' needs never-treated units"):
        att_gt(data[data.cohort > 0], ROLES)
    with pytest.raises(ValueError, match="no treated units"):
        att_gt(data[data.cohort == 0], ROLES)
    early = data.copy()
    early.loc[early.cohort == 2014, "cohort"] = 2010
    with pytest.raises(ValueError, match=r"cohort 2010 \(\d+ units\) has no pre-period"):
        att_gt(early, ROLES)
    with pytest.raises(ValueError, match="duplicate unit-period rows"):
        att_gt(pd.concat([data, data.iloc[:1]]), ROLES)
    moved = data.copy()
    moved.loc[moved.index[1], "city"] = moved.city.iloc[1] + 1
    with pytest.raises(ValueError, match="`cluster` varies within a unit"):
        att_gt(moved, ROLES)
    switch = data.copy()
    switch.loc[switch.index[1], "cohort"] = 2015
    with pytest.raises(ValueError, match="`cohort` varies within a unit"):
        att_gt(switch, ROLES)
    fractional = data.assign(year=data.year + 0.5 * (data.firm == 3))
    with pytest.raises(ValueError, match="`period` must hold integer values"):
        att_gt(fractional, ROLES)
    with pytest.raises(ValueError, match="`outcome` has 1 missing or infinite values"):
        att_gt(data.assign(y=data.y.where(data.index != data.index[5])), ROLES)
    with pytest.raises(ValueError, match="`cohort` must be the first treated period"):
        att_gt(data.assign(cohort=data.cohort.replace(2014, -1)), ROLES)
    with pytest.raises(ValueError, match="`cluster` has missing values"):
        att_gt(data.assign(city=data.city.where(data.index != data.index[0])), ROLES)
    with pytest.raises(ValueError, match=r"needs >= 2 clusters; got 1"):
        att_gt(data.assign(city=0), ROLES)
    with pytest.raises(ValueError, match="`period` must be numeric"):
        att_gt(data.assign(year=data.year.astype(str) + "y"), ROLES)
    per_unit = data.drop_duplicates("firm").set_index("firm")[["x1"]].iloc[:-3]
    with pytest.raises(ValueError, match="`covariates` has no row for 3 units"):
        att_gt(data, ROLES, covariates=per_unit)
    with pytest.raises(ValueError, match="`covariates` has missing or infinite values"):
        att_gt(data.assign(x1=np.nan), ROLES, covariates=["x1"])
    with pytest.raises(ValueError, match="`data` must be a pandas DataFrame or None"):
        att_gt(data.to_dict(), ROLES)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`unit` has 3 values; the panel has"):
        att_gt(data, dataclasses.replace(ROLES, unit=[1, 2, 3]))
    with pytest.raises(ValueError, match="no `data` was given"):
        att_gt(None, ROLES)
    with pytest.raises(ValueError, match=r"the panel needs >= 2 periods; got 1"):
        att_gt(data[data.year == 2012], ROLES, options=CellOptions(control_group="never"))


def test_att_gt_rejects_degenerate_covariates() -> None:
    data = two_by_two(seed=5)
    with pytest.raises(ValueError, match=r"cells \(g, t\) = \(2001, 2001\): singular covariate"):
        att_gt(data.assign(c=1.0), ROLES, covariates=["c"], method="reg")
    with pytest.raises(ValueError, match="singular covariate design in the propensity model"):
        att_gt(data.assign(c=1.0), ROLES, covariates=["c"], method="ipw")
    separating = data.assign(s=(data.cohort > 0).astype(float))
    with pytest.raises(ValueError, match=r"did not converge .*perfect separation"):
        att_gt(separating, ROLES, covariates=["s"], method="ipw")


def test_panel_layout_errors(panel) -> None:
    data, _ = panel
    with pytest.raises(ValueError, match=r"`period` must be a column name or a 1-d array"):
        att_gt(data, dataclasses.replace(ROLES, period=np.zeros((len(data), 2))))
    with pytest.raises(ValueError, match="`unit` has missing values"):
        att_gt(data.assign(firm=data.firm.where(data.index != data.index[0])), ROLES)
    with pytest.raises(ValueError, match="the panel has no rows"):
        att_gt(data.iloc[:0], ROLES)
    per_unit = data.drop_duplicates("firm").set_index("firm")[["x1"]]
    with pytest.raises(ValueError, match="`covariates` has duplicate unit ids"):
        att_gt(data, ROLES, covariates=pd.concat([per_unit, per_unit.iloc[:2]]))
    arrays = PanelColumns(*(data[column].to_numpy() for column in dataclasses.astuple(ROLES)))
    with pytest.raises(ValueError, match="`covariates` as column names needs `data`"):
        att_gt(None, arrays, covariates=["x1"])


def test_cells_without_any_estimable_sample_and_full_trimming() -> None:
    data = two_by_two(seed=6, n=80, n_clusters=8)
    # treated units seen only in the second period: no cell has a treated unit at both
    alone = data[~((data.cohort > 0) & (data.year == 2000))]
    with pytest.raises(ValueError, match=r"no \(g, t\) cell has both treated and comparison"):
        att_gt(alone, ROLES)
    # one comparison unit among 300 treated: P(D = 1) = 300/301 >= 0.995, so it is trimmed
    rows = [
        {"firm": i, "city": i % 5, "year": y, "cohort": 2001 if i else 0, "y": float(i + y)}
        for i in range(301)
        for y in (2000, 2001)
    ]
    with pytest.raises(ValueError, match=r"every comparison unit has a propensity score >= 0.995"):
        att_gt(pd.DataFrame(rows), ROLES, method="ipw")
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        two_period_att(np.zeros((4, 1)), np.array([1, 1, 0, 0], bool), np.ones((4, 1)), method="x")


def test_aggregations_need_post_cells(panel) -> None:
    data, _ = panel
    later = data.assign(cohort=data.cohort.replace({2014: 2025, 2015: 2025, 2016: 2025}))
    late = att_gt(later, ROLES)
    assert not np.any(late.post)  # a cohort after the panel has pre-period cells only
    for kind in ("simple", "group", "calendar"):
        with pytest.raises(ValueError, match="no post-treatment cell to aggregate"):
            aggregate(late, kind)


def test_aggregate_and_pretrend_reject_bad_arguments(panel) -> None:
    data, _ = panel
    result = att_gt(data, ROLES)
    with pytest.raises(ValueError, match=r"`aggregation` must be one of"):
        aggregate(result, "event")
    with pytest.raises(ValueError, match=r"`min_e` must be <= `max_e`; got 3 > 1"):
        aggregate(result, "dynamic", min_e=3, max_e=1)
    with pytest.raises(ValueError, match=r"`balance_e` must be None or an int >= 0; got -1"):
        aggregate(result, "dynamic", balance_e=-1)
    with pytest.raises(ValueError, match="no cell in the event-time window"):
        aggregate(result, "dynamic", min_e=50, max_e=60)
    with pytest.raises(ValueError, match=r"`n_boot` must be an int >= 0"):
        aggregate(result, "dynamic", n_boot=-1)
    with pytest.raises(ValueError, match=r"small-cluster mode's bands are Bonferroni-t"):
        aggregate(result, "dynamic", n_boot=99)
    with pytest.raises(ValueError, match=r"small-cluster mode's bands are Bonferroni-t"):
        att_gt(data, ROLES, n_boot=99)
    with pytest.raises(ValueError, match=r"`inference` must be one of"):
        att_gt(data, ROLES, options=CellOptions(inference="cr3"))
    with pytest.raises(ValueError, match="needs a 'dynamic' aggregation; got 'group'"):
        pretrend_test(aggregate(result, "group"))
    with pytest.raises(ValueError, match="no pre-treatment event time"):
        pretrend_test(aggregate(result, "dynamic", min_e=0))
    with pytest.raises(ValueError, match="must be an ATTGTResult or AggregateResult"):
        pretrend_test("dynamic")  # type: ignore[arg-type]
    dynamic = aggregate(att_gt(data, ROLES, options=ASYMPTOTIC), "dynamic", min_e=-2, max_e=-1)
    twin = dataclasses.replace(dynamic, influence=np.column_stack([dynamic.influence[:, 0]] * 2))
    with pytest.raises(ValueError, match="pre-treatment event-time ATTs is singular"):
        pretrend_test(twin)
    few = att_gt(data.assign(city=data.city % 4), ROLES, options=ASYMPTOTIC)
    with pytest.raises(ValueError, match="5 pre-treatment event times but only 4 clusters"):
        pretrend_test(few)


def test_bootstrap_rejects_bad_arguments() -> None:
    influence = np.ones((4, 1))
    cluster = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"`n_boot` must be an int >= 1 for a bootstrap; got 0"):
        multiplier_bootstrap(influence, cluster, 2, n_boot=0)
    with pytest.raises(ValueError, match="needs >= 2 clusters; got 1"):
        multiplier_bootstrap(influence, np.zeros(4, dtype=int), 1)
    with pytest.raises(ValueError, match="zero variance"):
        multiplier_bootstrap(np.zeros((4, 2)), cluster, 2)
    with pytest.raises(ValueError, match="needs >= 2 clusters"):
        cluster_se(influence, np.zeros(4, dtype=int), 1)
    with pytest.raises(ValueError, match="needs >= 2 clusters"):
        cluster_vcov(influence, np.zeros(4, dtype=int), 1)
