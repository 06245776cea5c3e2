"""ATT by firm type (vaer.did.types, vaer.did.drdid_levels, vaer.did.type_tables) and the
firm types of simulate_staggered.

Exact identities: one level = the overall ATT (cells, SEs, df, the four aggregations);
``nuisance="per_level"`` (and, without covariates, ``"pooled"``) = Callaway-Sant'Anna on
the level's subpanel; the equality test with two levels = the squared t-test of their
difference; the asymptotic Wald = the CR1 formula. Truth: the simulated types' exact
ATTs (within theory's SE bounds). Coverage and size over seeds: benchmarks/
did_types_validity.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaer.did import CellOptions, PanelColumns, aggregate, att_gt
from vaer.did.aggregate import AGGREGATIONS
from vaer.did.drdid import two_period_att
from vaer.did.drdid_levels import level_two_period_att
from vaer.did.inference import cluster_vcov
from vaer.did.simulate import HETEROGENEOUS_TYPES, HOMOGENEOUS_TYPES, simulate_staggered
from vaer.did.type_tables import TYPE_COLUMNS, TYPE_TEST_COLUMNS, equality_test, type_frames
from vaer.did.types import att_gt_by_type

ROLES = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


@pytest.fixture(scope="module")
def typed() -> tuple[pd.DataFrame, object]:
    frame, truth = simulate_staggered(
        2400, 50, type_effects=HETEROGENEOUS_TYPES, unbalanced=True, random_state=7
    )
    frame["everyone"] = "all"
    return frame, truth


def _same_aggregates(a: object, b: object, tol: float = 1e-10) -> None:
    assert np.array_equal(a.keys, b.keys)  # type: ignore[attr-defined]
    np.testing.assert_allclose(b.estimate, a.estimate, atol=tol)  # type: ignore[attr-defined]
    np.testing.assert_allclose(b.se, a.se, atol=tol)  # type: ignore[attr-defined]
    assert b.overall_estimate == pytest.approx(a.overall_estimate, abs=tol)  # type: ignore[attr-defined]
    assert b.overall_se == pytest.approx(a.overall_se, abs=tol)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "inference", "control_group", "base_period"),
    [
        ("dr", "small_cluster", "never", "varying"),
        ("ipw", "small_cluster", "notyet", "varying"),
        ("reg", "asymptotic", "never", "universal"),
        ("dr", "asymptotic", "notyet", "universal"),
    ],
)
def test_one_level_equals_the_overall_att(
    typed: tuple[pd.DataFrame, object],
    method: str,
    inference: str,
    control_group: str,
    base_period: str,
) -> None:
    frame, _ = typed
    options = {
        "method": method, "covariates": ["x1", "x2"],
        "options": CellOptions(
            inference=inference, control_group=control_group, base_period=base_period
        ),
    }  # fmt: skip
    overall = att_gt(frame, ROLES, **options)
    result = att_gt_by_type(frame, ROLES, **options, types=["everyone"])["everyone"]
    cells = result.cells["all"]
    np.testing.assert_allclose(cells.att, overall.att, atol=1e-10)
    np.testing.assert_allclose(cells.se, overall.se, atol=1e-10)
    np.testing.assert_allclose(cells.df, overall.df, atol=1e-8)
    for name in AGGREGATIONS:
        _same_aggregates(aggregate(overall, name), result.aggregates["all"][name])


@pytest.mark.parametrize("inference", ["small_cluster", "asymptotic"])
@pytest.mark.parametrize(
    ("nuisance", "covariates"), [("per_level", ["x1", "x2"]), ("pooled", None)]
)
def test_levels_equal_att_gt_on_their_subpanel(
    typed: tuple[pd.DataFrame, object], nuisance: str, covariates: list[str] | None,
    inference: str,
) -> None:  # fmt: skip
    frame, _ = typed
    result = att_gt_by_type(
        frame,
        ROLES,
        types=["firm_type"],
        covariates=covariates,
        nuisance=nuisance,
        options=CellOptions(inference=inference),
    )["firm_type"]
    assert result.levels == ("foreign", "private", "soe")
    for level in result.levels:
        sub = frame[frame["firm_type"] == level]
        alone = att_gt(sub, ROLES, covariates=covariates, options=CellOptions(inference=inference))
        cells = result.cells[level]
        np.testing.assert_allclose(cells.att, alone.att, atol=1e-10)
        if inference == "small_cluster":  # asymptotic: G/(G-1) counts the panel's cities
            np.testing.assert_allclose(cells.se, alone.se, atol=1e-10)
            np.testing.assert_allclose(cells.df, alone.df, rtol=1e-8)
        for name in AGGREGATIONS:
            mine, theirs = result.aggregates[level][name], aggregate(alone, name)
            np.testing.assert_allclose(mine.estimate, theirs.estimate, atol=1e-10)
            assert mine.overall_estimate == pytest.approx(theirs.overall_estimate, abs=1e-10)
            if inference == "small_cluster":
                _same_aggregates(theirs, mine)


def test_level_terms_with_one_level_are_two_period_att() -> None:
    rng = np.random.default_rng(3)
    n = 300
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    d = rng.random(n) < 1 / (1 + np.exp(-x[:, 1]))
    dy = rng.normal(size=(n, 2)) + x[:, 1:2] + d[:, None]
    for method in ("dr", "ipw", "reg"):
        one = two_period_att(dy, d, x, method=method)
        for nuisance in ("pooled", "per_level"):
            fit = level_two_period_att(
                dy, d, x, np.zeros(n, dtype=np.int64), 1, method=method, nuisance=nuisance
            )
            np.testing.assert_allclose(fit.att[0], one.att, atol=1e-12)
            np.testing.assert_allclose(fit.influence[0], one.influence, atol=1e-10)


def test_pooled_with_covariates_recovers_the_types_truth(
    typed: tuple[pd.DataFrame, object],
) -> None:
    frame, truth = typed
    result = att_gt_by_type(frame, ROLES, types=["firm_type"], covariates=["x1", "x2"])
    by_type = result["firm_type"]
    z = []
    for level in by_type.levels:
        for name in AGGREGATIONS:
            agg = by_type.aggregates[level][name]
            _, true = truth.type_aggregate(level, name)  # type: ignore[attr-defined]
            z.append((agg.overall_estimate - true) / agg.overall_se)
    # 12 correlated t-statistics: each within 4 SE (two-sided 4-SE tail < 1e-3 with df >= 10)
    assert np.max(np.abs(z)) < 4.0, z
    # the types' effects differ by 0.5 tau: the equality test rejects
    _, tests = type_frames(by_type, n_draws=200)
    simple = tests[(tests["test"] == "equality") & (tests["aggregation"] == "simple")]
    assert float(simple["p_value"].iloc[-1]) < 1e-3


def test_blind_comparison_is_biased_and_type_nuisances_are_not() -> None:
    """Comparison firms of all types (the per-type split of the treated only, overall
    nuisances) are biased by the types' own trends; the level means are not."""
    frame, truth = simulate_staggered(
        6000, 120, type_effects=HOMOGENEOUS_TYPES, type_trend=1.0, type_slope=1.5,
        random_state=21,
    )  # fmt: skip
    result = att_gt_by_type(frame, ROLES, types=["firm_type"], covariates=["x1", "x2"])
    soe = result["firm_type"].aggregates["soe"]["simple"]
    _, true = truth.type_aggregate("soe", "simple")
    assert abs(soe.overall_estimate - true) < 4 * soe.overall_se
    # the overall estimator on SOEs vs every comparison firm: the SOE trend is lower
    naive = frame[(frame["firm_type"] == "soe") | (frame["cohort"] == 0)]
    blind = aggregate(att_gt(naive, ROLES, covariates=["x1", "x2"]), "simple")
    assert blind.overall_estimate - true < -4 * blind.overall_se


def test_equality_test_of_two_levels_is_the_squared_t_test(
    typed: tuple[pd.DataFrame, object],
) -> None:
    frame, _ = typed
    two = frame[frame["firm_type"] != "foreign"]
    result = att_gt_by_type(two, ROLES, types=["firm_type"], covariates=["x1", "x2"])
    _, tests = type_frames(result["firm_type"], n_draws=100)
    assert list(tests.columns) == TYPE_TEST_COLUMNS
    for _, family in tests.groupby(["aggregation", "key"], dropna=False):
        equality = family[family["test"] == "equality"].iloc[0]
        difference = family[family["test"] == "difference"].iloc[0]
        assert equality["statistic"] == pytest.approx(difference["statistic"] ** 2, rel=1e-9)
        assert equality["df_den"] == pytest.approx(difference["df_den"], rel=1e-9)
        assert equality["p_value"] == pytest.approx(difference["p_value"], rel=1e-7)


def test_asymptotic_equality_test_is_the_cr1_wald() -> None:
    rng = np.random.default_rng(5)
    n, g = 600, 30
    cluster = rng.integers(0, g, n)
    influence = rng.normal(size=(n, 3)) + rng.normal(size=(g, 3))[cluster]
    theta = np.array([0.1, 0.3, -0.2])
    test = equality_test(theta, influence, cluster, g, "asymptotic")
    c = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    v = c @ cluster_vcov(influence, cluster, g) @ c.T
    wald = float((c @ theta) @ np.linalg.solve(v, c @ theta))
    assert test.wald == pytest.approx(wald, rel=1e-10)
    assert test.p_value == pytest.approx(stats.f.sf(wald / 2, 2, g - 1), rel=1e-10)
    small = equality_test(theta, influence, cluster, g, "small_cluster")
    assert 1.0 < small.df_den < g  # eta - q + 1 from the plug-in cluster sums
    # eta from its definition, by hand: s_c the cluster sums of C psi / n, V = sum s_c s_c',
    # h_c = s_c' V^-1 s_c, eta = q (q + 1) / (2 sum h_c^2); F = (eta - q + 1) / (eta q) W
    sums = np.zeros((g, 2))
    np.add.at(sums, cluster, influence @ c.T / n)
    v_small = sums.T @ sums
    h = np.einsum("ci,ij,cj->c", sums, np.linalg.inv(v_small), sums)
    eta = 2 * 3 / (2 * np.sum(h**2))
    assert small.df_den == pytest.approx(eta - 1, rel=1e-10)
    w_small = float((c @ theta) @ np.linalg.solve(v_small, c @ theta))
    assert small.statistic == pytest.approx((eta - 1) / (2 * eta) * w_small, rel=1e-10)


def test_tables_have_the_gate_shape_and_a_row_per_level_and_key(
    typed: tuple[pd.DataFrame, object],
) -> None:
    frame, _ = typed
    result = att_gt_by_type(frame, ROLES, types=["firm_type"])["firm_type"]
    levels, tests = type_frames(result, n_draws=100)
    assert list(levels.columns) == TYPE_COLUMNS
    overall = levels[levels["overall"]]
    assert len(overall) == 3 * len(AGGREGATIONS)
    dynamic = levels[(levels["aggregation"] == "dynamic") & ~levels["overall"]]
    assert set(dynamic["key"]) == set(result.aggregates["soe"]["dynamic"].keys.astype(float))
    assert (levels["p_adj"] >= levels["p_value"] - 1e-15).all()
    assert (levels["band_high"] - levels["band_low"] >= levels["ci_high"] - levels["ci_low"]).all()
    assert set(tests["test"]) == {"equality", "difference"}


def test_a_level_missing_from_a_cohort_is_skipped_not_failed(
    typed: tuple[pd.DataFrame, object],
) -> None:
    frame, _ = typed
    data = frame[~((frame["firm_type"] == "soe") & (frame["cohort"] == 2015))]
    result = att_gt_by_type(data, ROLES, types=["firm_type"])["firm_type"]
    assert 2015 not in set(result.cells["soe"].group)
    assert 2015 in set(result.cells["private"].group)
    skipped = result.skipped[result.skipped["level"] == "soe"]
    assert set(skipped["group"]) == {2015}
    assert np.isfinite(result.aggregates["soe"]["simple"].overall_estimate)


def test_simulated_types_leave_the_rest_of_the_panel_unchanged() -> None:
    plain, truth0 = simulate_staggered(500, 20, random_state=4)
    typed, truth = simulate_staggered(
        500, 20, type_effects=HETEROGENEOUS_TYPES, type_trend=0.0, random_state=4
    )
    columns = ["firm", "city", "year", "cohort", "x1", "x2"]
    pd.testing.assert_frame_equal(plain[columns], typed[columns])
    multiplier = typed["firm_type"].map(HETEROGENEOUS_TYPES).to_numpy()
    treated = (typed["cohort"] > 0) & (typed["year"] >= typed["cohort"])
    untreated = ~treated.to_numpy()
    np.testing.assert_array_equal(
        typed["y"].to_numpy()[untreated], plain["y"].to_numpy()[untreated]
    )
    # a single type with multiplier 0 switches the effect off: y - that = the effect
    no_effect, _ = simulate_staggered(
        500, 20, type_effects={"none": 0.0}, type_trend=0.0, random_state=4
    )
    effect = plain["y"].to_numpy() - no_effect["y"].to_numpy()
    assert np.all(effect[untreated] == 0.0) and np.all(effect[~untreated] != 0.0)
    np.testing.assert_allclose(
        typed["y"].to_numpy() - no_effect["y"].to_numpy(), multiplier * effect, atol=1e-10
    )
    for g in truth.cohorts:
        total = sum(truth.type_cohort_share[level][g] for level in HETEROGENEOUS_TYPES)
        assert total == pytest.approx(truth0.cohort_share[g], abs=1e-12)


def test_homogeneous_types_truth_equals_the_overall_truth() -> None:
    _, truth = simulate_staggered(100, 10, type_effects=HOMOGENEOUS_TYPES, random_state=0)
    for level in HOMOGENEOUS_TYPES:
        _, simple = truth.type_aggregate(level, "simple")
        keyed, _ = truth.type_aggregate(level, "dynamic")
        assert simple == pytest.approx(truth.simple(), abs=1e-12)
        for e, value in keyed.items():
            assert value == pytest.approx(truth.dynamic(e), abs=1e-12)


# --------------------------------------------------------------------------- errors


def test_errors(typed: tuple[pd.DataFrame, object]) -> None:
    frame, _ = typed
    with pytest.raises(ValueError, match="`nuisance` must be one of"):
        att_gt_by_type(frame, ROLES, types=["firm_type"], nuisance="split")
    with pytest.raises(ValueError, match=r"`types` columns \['sector'\] are not in the data"):
        att_gt_by_type(frame, ROLES, types=["sector"])
    holes = frame.assign(firm_type=frame["firm_type"].where(frame["firm"] != 3))
    with pytest.raises(ValueError, match="have missing values"):
        att_gt_by_type(holes, ROLES, types=["firm_type"])
    with pytest.raises(ValueError, match="has no row for 1 units"):
        types = frame.drop_duplicates("firm").set_index("firm")[["firm_type"]].iloc[1:]
        att_gt_by_type(frame, ROLES, types=types)
    with pytest.raises(ValueError, match="duplicate unit ids"):
        types = frame.set_index("firm")[["firm_type"]]
        att_gt_by_type(frame, ROLES, types=types)
    result = att_gt_by_type(frame, ROLES, types=["firm_type"])["firm_type"]
    with pytest.raises(ValueError, match="`n_draws` must be an int >= 20"):
        type_frames(result, n_draws=5)
    with pytest.raises(ValueError, match="L >= 2"):
        equality_test(np.zeros(1), np.zeros((5, 1)), np.zeros(5, dtype=int), 2, "small_cluster")
    with pytest.raises(ValueError, match="`type_effects` must name at least one level"):
        simulate_staggered(100, 10, type_effects={})
    with pytest.raises(ValueError, match="`aggregation` must be one of"):
        simulate_staggered(100, 10, type_effects=HOMOGENEOUS_TYPES)[1].type_aggregate(
            "soe", "weekly"
        )
    with pytest.raises(ValueError, match="`nuisance` must be one of"):
        level_two_period_att(
            np.zeros((4, 1)), np.array([1, 0, 1, 0], bool), np.ones((4, 1)),
            np.zeros(4, dtype=np.int64), 1, nuisance="split",
        )  # fmt: skip
