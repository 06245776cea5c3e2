"""Refuters, sensitivity analysis and the robustness stage."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import BASE_ROLES, small_config
from vaer.compute import LocalBackend
from vaer.config import ConfigError, validate_config
from vaer.config.models import (
    DataConfig,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
from vaer.config.robustness import PlaceboShockConfig, RobustnessConfig, SensitivityConfig
from vaer.data import build_analysis_data, make_synthetic_table
from vaer.data.design import AnalysisData
from vaer.data.loading import load_panel
from vaer.data.synthetic import PANEL_ROLES
from vaer.estimators import fit_estimators
from vaer.estimators.results import AteEstimate
from vaer.measures.study import load_study_data
from vaer.reporting.robustness import check_verdicts, robustness_context
from vaer.robustness import (
    PlrSensitivity,
    parallel_map,
    permute_within_cluster,
    robustness_value,
    run_robustness,
    sensitivity_bound,
)
from vaer.robustness.data_subsets import data_subsets_plan
from vaer.robustness.leave_one_group_out import leave_one_group_out_plan
from vaer.robustness.panel import panel_rebuild
from vaer.robustness.placebo_treatment import placebo_data, placebo_treatment_plan
from vaer.robustness.random_common_cause import random_common_cause_plan
from vaer.robustness.rebuild import alternative_measures_plan, placebo_shock_plan
from vaer.robustness.refit import Refit, plr_sensitivity, refit_many, refuter_spec
from vaer.robustness.results import CheckResult, RobustnessResult, check_p_value
from vaer.robustness.rules import difference_test, row_level, sign_test, zero_test
from vaer.robustness.sensitivity import (
    benchmark_strengths,
    confounding_factor,
    scale_and_se,
)

ROLES = Roles(**BASE_ROLES)
SPEC = LinearDMLSpec.model_validate({"kind": "linear_dml", "params": {"cv": 3}})
NUISANCE = NuisanceConfig()


def _ate(estimate: float, se: float, label: str = "m") -> AteEstimate:
    return AteEstimate(
        label, "ape", estimate, se, estimate - 1.96 * se, estimate + 1.96 * se, 100, "x"
    )


def _params(sigma2: float = 0.8, nu2: float = 0.6, theta: float = 0.5) -> PlrSensitivity:
    return PlrSensitivity(theta=theta, sigma2=sigma2, nu2=nu2, cov=np.diag([1e-3, 2e-3, 5e-4]))


@pytest.fixture(scope="module")
def small_data():
    table = make_synthetic_table(SyntheticTableConfig(n_units=600, n_clusters=20), random_state=1)
    return build_analysis_data(table.frame, ROLES)


# ------------------------------------------------------------------ permutations


def test_permute_within_cluster_only_moves_values_inside_clusters() -> None:
    rng = np.random.default_rng(0)
    clusters = rng.integers(0, 7, size=200)
    values = rng.normal(size=200)
    permuted = permute_within_cluster(values, clusters, 3)
    assert not np.array_equal(permuted, values)
    for c in np.unique(clusters):
        np.testing.assert_array_equal(
            np.sort(permuted[clusters == c]), np.sort(values[clusters == c])
        )
    np.testing.assert_array_equal(permuted, permute_within_cluster(values, clusters, 3))


def test_permute_within_cluster_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        permute_within_cluster(np.zeros(3), np.zeros(4), 0)


def test_placebo_treatment_has_zero_cluster_means(small_data) -> None:
    placebo = placebo_data(small_data, 0)
    means = pd.Series(placebo.t).groupby(small_data.clusters).mean()
    np.testing.assert_allclose(means, 0.0, atol=1e-12)
    deviation = small_data.t - pd.Series(small_data.t).groupby(small_data.clusters).transform(
        "mean"
    )
    np.testing.assert_allclose(np.sort(placebo.t), np.sort(deviation))


def test_plans_reject_bad_settings(small_data) -> None:
    full = _ate(0.5, 0.05)
    with pytest.raises(ValueError, match="`repeats` must be an int >= 1"):
        placebo_treatment_plan(small_data, repeats=0, random_state=0)
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got 0.0"):
        placebo_treatment_plan(small_data, repeats=1, random_state=0, alpha=0.0)
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got 0.6"):
        random_common_cause_plan(small_data, full, random_state=0, alpha=0.6)
    with pytest.raises(ValueError, match="`fraction` must be in"):
        data_subsets_plan(small_data, full, fraction=1.0, repeats=2, random_state=0)
    with pytest.raises(ValueError, match="`repeats` must be an int >= 1"):
        data_subsets_plan(small_data, full, fraction=0.5, repeats=0, random_state=0)
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got -0.1"):
        data_subsets_plan(small_data, full, fraction=0.5, repeats=2, random_state=0, alpha=-0.1)
    with pytest.raises(ValueError, match="keeps 1; cluster-robust SEs need at least 2"):
        data_subsets_plan(small_data, full, fraction=0.05, repeats=2, random_state=0)
    with pytest.raises(ValueError, match=r"firm-type columns \['sector'\] not found"):
        leave_one_group_out_plan(small_data, np.zeros(small_data.n), dimensions=["sector"])
    with pytest.raises(ValueError, match="`scores` must have shape"):
        leave_one_group_out_plan(small_data, np.zeros(3), dimensions=["ownership"])
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got 1.0"):
        leave_one_group_out_plan(
            small_data, np.zeros(small_data.n), dimensions=["ownership"], alpha=1.0
        )
    with pytest.raises(ValueError, match="at least one alternative measure"):
        alternative_measures_plan(lambda _v: small_data, full, variants=[])
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got 0.0"):
        alternative_measures_plan(lambda _v: small_data, full, variants=["a"], alpha=0.0)
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got 0.9"):
        placebo_shock_plan(lambda _v: small_data, window="calm", alpha=0.9)


def test_leave_one_group_out_drops_each_level_and_constant_columns(small_data) -> None:
    plan = leave_one_group_out_plan(small_data, np.zeros(small_data.n), dimensions=["ownership"])
    assert len(plan.datasets) == 3
    for data in plan.datasets:
        assert data.firm_types["ownership"].nunique() == 2
        assert (data.x.nunique() > 1).all()


def test_parallel_map_keeps_order() -> None:
    items = list(range(7))
    assert parallel_map(math.factorial, items, 2) == [math.factorial(i) for i in items]


def test_refuter_spec_defaults_to_linear_dml_and_rejects_unknown_labels() -> None:
    config = validate_config(small_config(Path("/tmp")))
    assert refuter_spec(config.estimators, None).kind == "linear_dml"
    only_forest = [config.estimators[0]]
    assert refuter_spec(only_forest, None).params.cv == 3
    with pytest.raises(ValueError, match="'nope', which is not an estimator"):
        refuter_spec(config.estimators, "nope")


# ------------------------------------------------------------------ pass rules


def _refit(estimate: float, se: float) -> Refit:
    return Refit(ate=_ate(estimate, se), sensitivity=None, scores=np.zeros(3))


def test_row_level_shares_the_false_alarm_budget() -> None:
    assert row_level(0.05, 4) == pytest.approx(0.0125)
    assert row_level(0.1, 1) == 0.1


def test_zero_test_is_a_t_test_on_clusters_minus_one_df() -> None:
    verdict = zero_test(0.3, 0.1, n_clusters=21, level=0.05)
    assert verdict.statistic == pytest.approx(3.0)
    assert verdict.p_value == pytest.approx(2 * stats.t.sf(3.0, 20))
    assert verdict.critical == pytest.approx(stats.t.isf(0.025, 20))
    assert not verdict.passed
    assert zero_test(-0.2, 0.1, n_clusters=21, level=0.05).passed  # |t| = 2 < 2.086
    assert not zero_test(-0.2, 0.1, n_clusters=1000, level=0.05).passed  # 2 > 1.962
    assert not zero_test(0.1, 0.0, n_clusters=5, level=0.05).passed
    assert zero_test(0.0, 0.0, n_clusters=5, level=0.05).passed


def test_difference_test_uses_the_bound_on_the_se_of_a_difference() -> None:
    verdict = difference_test(0.8, 0.3, 0.5, 0.4, n_clusters=31, level=0.01)
    assert verdict.se == pytest.approx(0.5)
    assert verdict.statistic == pytest.approx(0.6)
    assert verdict.p_value == pytest.approx(2 * stats.t.sf(0.6, 30))
    assert verdict.passed
    critical = stats.t.isf(0.005, 30)
    assert difference_test(
        0.5 - 0.99 * critical * 0.5, 0.3, 0.5, 0.4, n_clusters=31, level=0.01
    ).passed
    assert not difference_test(
        0.5 - 1.01 * critical * 0.5, 0.3, 0.5, 0.4, n_clusters=31, level=0.01
    ).passed


def test_sign_test_flags_only_a_significant_opposite_sign() -> None:
    same = sign_test(0.2, 0.1, sign=1.0, n_clusters=11, level=0.05)
    assert same.passed and same.p_value == pytest.approx(stats.t.cdf(2.0, 10))
    assert sign_test(-0.1, 0.1, sign=1.0, n_clusters=11, level=0.05).passed  # t = -1
    opposite = sign_test(-0.3, 0.1, sign=1.0, n_clusters=11, level=0.05)
    assert not opposite.passed and opposite.p_value == pytest.approx(stats.t.cdf(-3.0, 10))
    assert opposite.critical == pytest.approx(-stats.t.isf(0.05, 10))
    assert not sign_test(0.3, 0.1, sign=-1.0, n_clusters=11, level=0.05).passed


def test_rules_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 0.5\]; got 0"):
        row_level(0, 1)
    with pytest.raises(ValueError, match="`rows` must be an int >= 1; got 0"):
        row_level(0.05, 0)
    with pytest.raises(ValueError, match=r"standard errors must be >= 0; got -1\.0"):
        zero_test(0.1, -1.0, n_clusters=5, level=0.05)
    with pytest.raises(ValueError, match="standard errors must be >= 0; got nan"):
        zero_test(0.1, math.nan, n_clusters=5, level=0.05)
    with pytest.raises(ValueError, match="`n_clusters` must be an int >= 2; got 1"):
        zero_test(0.1, 0.1, n_clusters=1, level=0.05)
    with pytest.raises(ValueError, match=r"`level` must be in \(0, 1\); got 1.0"):
        difference_test(0.1, 0.1, 0.0, 0.1, n_clusters=5, level=1.0)
    with pytest.raises(ValueError, match=r"standard errors must be >= 0; got -0\.2"):
        difference_test(0.1, 0.1, 0.0, -0.2, n_clusters=5, level=0.05)
    with pytest.raises(ValueError, match=r"`sign` must be 1 or -1; got 0\.5"):
        sign_test(0.1, 0.1, sign=0.5, n_clusters=5, level=0.05)


@pytest.mark.statistical
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.95])
def test_difference_rule_false_alarm_is_at_most_its_level(rho: float) -> None:
    """Two normal estimates with correlation rho >= 0 and known SEs 1 and 0.6: the rule
    flags ``|a - b| > c * sqrt(1 + 0.36)`` with c the t critical value (39 df), so its
    false-alarm rate is ``2 * Phi(-c * sqrt(1.36 / (1.36 - 1.2 rho)))``: at most the level,
    smaller the more the two are correlated. The count over 8,000 draws must lie in the
    99.9% binomial band around that rate."""
    rng = np.random.default_rng(11)
    sa, sb, level, draws = 1.0, 0.6, 0.05, 8_000
    cov = np.array([[sa**2, rho * sa * sb], [rho * sa * sb, sb**2]])
    pairs = rng.multivariate_normal([0.0, 0.0], cov, size=draws)
    flagged = sum(
        not difference_test(a, sa, b, sb, n_clusters=40, level=level).passed for a, b in pairs
    )
    critical = stats.t.isf(level / 2, 39)
    rate = 2 * stats.norm.sf(
        critical * math.sqrt((sa**2 + sb**2) / (sa**2 + sb**2 - 2 * cov[0, 1]))
    )
    assert rate <= level
    low, high = stats.binom.ppf([0.0005, 0.9995], draws, rate)
    assert low <= flagged <= high


@pytest.mark.statistical
def test_placebo_rule_flags_correctly_specified_data_at_its_level() -> None:
    """On 100 synthetic tables (500 firms, 40 cities; the model is right) the placebo
    treatment's effect is 0, so the rule at level alpha flags a share alpha of them when the
    refit's SE is valid. Ridge nuisances keep it fast. Both counts must lie in the 99.9%
    binomial band around alpha; a rule that never (or always) flags fails at alpha = 0.3."""
    spec = LinearDMLSpec.model_validate({"kind": "linear_dml", "params": {"cv": 2}})
    ridge = NuisanceConfig(model="ridge", n_jobs=1)
    seeds = range(100)
    flagged = {0.05: 0, 0.3: 0}
    for seed in seeds:
        cfg = SyntheticTableConfig(n_units=500, n_clusters=40)
        data = build_analysis_data(make_synthetic_table(cfg, random_state=seed).frame, ROLES)
        plans = {
            a: placebo_treatment_plan(data, repeats=1, random_state=seed, alpha=a) for a in flagged
        }
        refits = refit_many(plans[0.05].datasets, spec, ridge, random_state=seed)
        for alpha, plan in plans.items():
            flagged[alpha] += not plan.evaluate(refits)[0].passed
    for alpha, count in flagged.items():
        low, high = stats.binom.ppf([0.0005, 0.9995], len(seeds), alpha)
        assert low <= count <= high, (alpha, count)


def test_placebo_rule_at_its_level(small_data) -> None:
    plan = placebo_treatment_plan(small_data, repeats=2, random_state=0, alpha=0.05)
    critical = stats.t.isf(0.05 / 4, 19)  # 20 clusters, level 0.025 per permutation
    rows = plan.evaluate([_refit(0.99 * critical * 0.1, 0.1), _refit(-1.01 * critical * 0.1, 0.1)])
    assert [r.passed for r in rows] == [True, False]
    assert all(r.level == pytest.approx(0.025) and r.false_alarm == 0.05 for r in rows)
    assert rows[0].reference == 0.0 and rows[0].reference_se == 0.0
    assert "false alarm 5% when the model is right" in rows[0].rule


def test_random_common_cause_rule_uses_the_se_of_the_difference(small_data) -> None:
    full = _ate(0.5, 0.05)
    plan = random_common_cause_plan(small_data, full, random_state=0)
    assert plan.datasets[0].w.shape[1] == small_data.w.shape[1] + 1
    bound = math.hypot(0.04, 0.05)
    critical = stats.t.isf(0.025, 19)
    # one SE and a half: the old rule (within one SE) flagged it, chance at this noise
    (row,) = plan.evaluate([_refit(0.5 + 1.5 * 0.05, 0.04)])
    assert row.passed and row.reference_se == 0.05
    assert row.test_p == pytest.approx(2 * stats.t.sf(1.5 * 0.05 / bound, 19))
    (row,) = plan.evaluate([_refit(0.5 - 1.01 * critical * bound, 0.04)])
    assert not row.passed and "false alarm at most 5%" in row.rule


def test_data_subsets_rule_tests_each_subset_at_a_bonferroni_level(small_data) -> None:
    full = _ate(0.5, 0.05)
    plan = data_subsets_plan(small_data, full, fraction=0.8, repeats=3, random_state=0)
    assert all(len(np.unique(d.clusters)) == 16 for d in plan.datasets)
    bound = math.hypot(0.06, 0.05)
    critical = stats.t.isf(0.05 / 6, 15)
    # a subset 2.5 full-sample SEs away (outside the full-sample CI: the old rule's false
    # alarm on held-out data) is within the distribution of a refitted subset
    rows = plan.evaluate([_refit(0.5 + 2.5 * 0.05, 0.06), _refit(0.49, 0.06), _refit(0.5, 0.06)])
    assert len(rows) == 4 and all(r.passed for r in rows)
    assert [r.level for r in rows] == pytest.approx([0.05 / 3] * 3 + [0.05])
    assert rows[0].test_p == pytest.approx(2 * stats.t.sf(2.5 * 0.05 / bound, 15))
    assert rows[-1].variant == "all" and "0 of 3 did" in rows[-1].rule
    rows = plan.evaluate(
        [_refit(0.5 + 1.01 * critical * bound, 0.06), _refit(0.5, 0.06), _refit(0.5, 0.06)]
    )
    assert [r.passed for r in rows] == [False, True, True, False]
    assert rows[-1].test_p == pytest.approx(3 * rows[0].test_p)
    assert "1 of 3 did" in rows[-1].rule and "false alarm at most 5%" in rows[-1].rule
    rows = plan.evaluate(
        [_refit(0.5 - 0.99 * critical * bound, 0.06), _refit(0.5, 0.06), _refit(0.5, 0.06)]
    )
    assert all(r.passed for r in rows)


def test_leave_one_group_out_rule_compares_with_the_same_firms(small_data) -> None:
    from vaer.estimators.inference import cluster_robust_mean

    rng = np.random.default_rng(3)
    scores = 0.4 + rng.normal(size=small_data.n)
    plan = leave_one_group_out_plan(small_data, scores, dimensions=["ownership"], alpha=0.1)
    values = small_data.firm_types["ownership"].to_numpy()
    same = [
        cluster_robust_mean(scores[values != level], small_data.clusters[values != level])
        for level in sorted(np.unique(values))
    ]
    bounds = [math.hypot(0.05, s.se) for s in same]
    critical = stats.t.isf(0.1 / 6, 19)
    refits = [
        _refit(same[0].estimate + 0.99 * critical * bounds[0], 0.05),
        _refit(same[1].estimate - 1.01 * critical * bounds[1], 0.05),
        _refit(same[2].estimate, 0.05),
    ]
    rows = plan.evaluate(refits)
    assert [r.passed for r in rows] == [True, False, True]
    assert [r.reference for r in rows] == pytest.approx([s.estimate for s in same])
    assert [r.reference_se for r in rows] == pytest.approx([s.se for s in same])
    assert all(r.level == pytest.approx(0.1 / 3) and r.false_alarm == 0.1 for r in rows)


def test_panel_rules_placebo_shock_and_alternative_measures(small_data) -> None:
    shock = placebo_shock_plan(lambda _v: small_data, window="calm")
    critical = stats.t.isf(0.025, 19)
    assert shock.evaluate([_refit(0.99 * critical * 0.1, 0.1)])[0].passed
    assert not shock.evaluate([_refit(1.01 * critical * 0.1, 0.1)])[0].passed
    full = _ate(0.5, 0.05)
    plan = alternative_measures_plan(lambda _v: small_data, full, variants=["a", "b", "c"])
    rows = plan.evaluate([_refit(0.3, 0.1), _refit(-0.05, 0.1), _refit(-0.5, 0.1)])
    # an insignificant opposite sign is noise (the old rule flagged it); a significant one is not
    assert [r.passed for r in rows] == [True, True, False]
    assert "covers 0" in rows[1].rule and "excludes 0" in rows[2].rule
    assert all(r.level == pytest.approx(0.05 / 3) for r in rows)
    negative = alternative_measures_plan(lambda _v: small_data, _ate(-0.5, 0.05), variants=["a"])
    assert not negative.evaluate([_refit(0.5, 0.1)])[0].passed


# ------------------------------------------------------------------ sensitivity maths


def test_confounding_factor_and_errors() -> None:
    assert confounding_factor(0.1, 0.2, 0.5) == pytest.approx(0.5 * math.sqrt(0.1 * 0.2 / 0.8))
    assert confounding_factor(0.0, 0.5) == 0.0
    with pytest.raises(ValueError, match=r"`cf_y` must be in \[0, 1\); got 1.0"):
        confounding_factor(1.0, 0.1)
    with pytest.raises(ValueError, match=r"`cf_d` must be in \[0, 1\); got -0.1"):
        confounding_factor(0.1, -0.1)
    with pytest.raises(ValueError, match=r"`rho` must be in \[-1, 1\]; got 2"):
        confounding_factor(0.1, 0.1, 2)
    with pytest.raises(ValueError, match="sigma2 and nu2 must be positive"):
        scale_and_se(_params(sigma2=0.0))


def test_bounds_match_econml_formula() -> None:
    from econml.validate.sensitivity_analysis import sensitivity_interval

    params = _params()
    ate = _ate(params.theta, 0.04)
    bound = sensitivity_bound(ate, params, cf_y=0.05, cf_d=0.08, rho=0.7)
    lb, ub = sensitivity_interval(
        params.theta, params.sigma2, params.nu2, params.cov, 0.05, 0.05, 0.08, 0.7, "theta"
    )
    assert bound.bound_low == pytest.approx(lb)
    assert bound.bound_high == pytest.approx(ub)
    assert bound.ci_low < bound.bound_low and bound.ci_high > bound.bound_high


@pytest.mark.parametrize("ci", [False, True])
def test_robustness_value_is_where_the_bound_reaches_the_null(ci: bool) -> None:
    params = _params()
    ate = _ate(0.3, 0.05)
    rv = robustness_value(ate, params, ci=ci)
    assert 0 < rv < 1
    bound = sensitivity_bound(ate, params, cf_y=rv, cf_d=rv)
    assert (bound.ci_low if ci else bound.bound_low) == pytest.approx(0.0, abs=1e-9)
    assert robustness_value(_ate(0.05, 0.05), params, ci=True) == 0.0


def test_benchmark_strengths_from_long_and_short_fits() -> None:
    long, short = _params(sigma2=0.5, nu2=0.8), _params(sigma2=0.6, nu2=0.6)
    bench = benchmark_strengths("w1", long, short)
    assert bench.cf_y == pytest.approx(0.1 / 0.6)
    assert bench.cf_d == pytest.approx(0.25)
    assert benchmark_strengths("w2", short, long).cf_y == 0.0


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"placebo_shock": {"enabled": True}},
            r"`robustness.placebo_shock` .* needs `data.mode: panel`",
        ),
        (
            {"alternative_measures": {"enabled": True}},
            r"`robustness.alternative_measures` .* `data.mode: table`",
        ),
        ({"estimator": "forest"}, "`robustness.estimator` is 'forest'"),
        (
            {"leave_one_group_out": {"dimensions": ["sector"]}},
            r"\['sector'\] are not in `roles.firm_types`",
        ),
        ({"sensitivity": {"cf_y": [1.5]}}, r"values must be in \[0, 1\); got \[1.5\]"),
        ({"sensitivity": {"cf_d": []}}, "must list at least one value"),
        ({"placebo": {}}, "placebo"),
        ({"data_subsets": {"min_share": 0.8}}, "min_share"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.6}, "alpha"),
    ],
)
def test_robustness_config_errors(tmp_path: Path, change: dict, message: str) -> None:
    raw = small_config(tmp_path, robustness={"enabled": True, **change})
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


def test_panel_refuters_need_a_rebuild_callable(small_data) -> None:
    estimation = fit_estimators(small_data, [SPEC], NUISANCE, random_state=0)
    config = RobustnessConfig(
        enabled=True,
        placebo_shock={"enabled": True},  # type: ignore[arg-type]
        sensitivity=SensitivityConfig(enabled=False),
    )
    with pytest.raises(ValueError, match=r"`robustness.placebo_shock` needs the firm-year panel"):
        run_robustness(small_data, estimation, [SPEC], NUISANCE, config, random_state=0)


def _row(check: str, variant: str, passed: bool, p: float = 0.5, level: float = 0.025):
    return CheckResult(
        check, variant, "m", 0.5, 0.1, 0.3, 0.7, 0.5, 0.1, "rule", p, level, 0.05, passed
    )


def test_result_frames_and_metrics() -> None:
    rows = (
        _row("data_subsets", "subset 1", True, p=0.04),
        _row("data_subsets", "subset 2", False, p=0.01),
        _row("random_common_cause", "N(0,1) control", True, p=0.3, level=0.05),
    )
    result = RobustnessResult(checks=rows, sensitivity=None, seconds=1.5)
    frame = result.to_frame()
    assert list(frame.columns[:2]) == ["check", "variant"]
    assert {"estimate", "se", "reference_se", "rule", "test_p", "level", "false_alarm"} <= set(
        frame.columns
    )
    metrics = result.metrics()
    assert metrics["robustness.data_subsets.passed"] == 0.0
    assert metrics["robustness.data_subsets.subset_1.passed"] == 1.0
    assert metrics["robustness.data_subsets.test_p"] == pytest.approx(0.02)
    assert metrics["robustness.random_common_cause.test_p"] == pytest.approx(0.3)
    assert metrics["time.robustness"] == 1.5
    # the family verdict: Holm over the checks' p-values 0.02 and 0.3 -> 0.04 and 0.3
    assert frame.groupby("check")["check_p"].first().to_dict() == pytest.approx(
        {"data_subsets": 0.02, "random_common_cause": 0.3}
    )
    assert frame.groupby("check")["family_p"].first().to_dict() == pytest.approx(
        {"data_subsets": 0.04, "random_common_cause": 0.3}
    )
    assert metrics["robustness.family.test_p"] == pytest.approx(0.04)
    assert metrics["robustness.family.passed"] == 0.0
    assert result.sensitivity_frame() is None
    with pytest.raises(ValueError, match="a check needs at least one row"):
        check_p_value([])


def test_report_words_checks_as_tests_at_their_level() -> None:
    from vaer.reporting.html import _environment
    from vaer.reporting.summary import robustness_verdict
    from vaer.reporting.words import Words

    rows = (
        _row("placebo_treatment", "permutation 1", True, level=0.05),
        _row("data_subsets", "subset 1", True),
        _row("data_subsets", "subset 2", False, p=0.001),
    )
    table = RobustnessResult(checks=rows, sensitivity=None, seconds=1.0).to_frame()
    verdicts = check_verdicts(table)
    assert verdicts == [
        {"check": "placebo_treatment", "alpha": 0.05, "flagged": []},
        {"check": "data_subsets", "alpha": 0.05, "flagged": ["subset 2"]},
    ]
    context = robustness_context({"robustness": table})
    assert context is not None and context["n_flagged"] == 1 and context["n_checks"] == 2
    words = Words("en").markup
    section = _environment().get_template("sections/robustness.html.j2")
    html = section.render(robustness=context, t=words)
    assert "1 of 2 checks flagged at their level" in html
    assert "data_subsets (subset 2; false-alarm rate 5%)" in html
    assert "flagged at 0.025" in html and "consistent" in html
    assert "fail" not in html.lower()
    # taken together: Holm over the checks' p-values 0.5 and 0.002 flags data_subsets
    assert "the model is flagged by: data_subsets." in html
    assert robustness_verdict(table) == {
        "family": True,
        "n": 2,
        "alpha": 0.05,
        "flagged": ["data_subsets"],
        "alone": [],
    }
    # flagged at its own level (p 0.02 <= 0.025) but not together (Holm p 0.08 > 0.05)
    alone = RobustnessResult(
        checks=(*rows[:2], _row("data_subsets", "subset 2", False, p=0.02)),
        sensitivity=None,
        seconds=1.0,
    ).to_frame()
    html = section.render(robustness=robustness_context({"robustness": alone}), t=words)
    assert "the checks do not flag the model" in html
    verdict = robustness_verdict(alone.astype({"passed": str}))  # as read back from CSV
    assert verdict is not None and verdict["flagged"] == [] and verdict["alone"] == ["data_subsets"]
    # a table written before the checks had levels still renders
    old = table.drop(columns=["reference_se", "test_p", "level", "false_alarm"])
    context = robustness_context({"robustness": old})
    assert context is not None and context["alpha"] is None
    assert "checks flagged" in section.render(robustness=context, t=words)


# ------------------------------------------------------------------ the stage on the panel

PANEL_ROLES_ = Roles(**PANEL_ROLES)  # type: ignore[arg-type]
PANEL_SEED = 11
# the size: ~20k firms in the panel (about 15k in the covid2020 table)
PANEL_DATA = DataConfig(mode="panel", panel=SyntheticPanelConfig(n_firms=20000))


def _calm_and_alternative(seed: int, data: AnalysisData):
    """The panel's own rebuild for the calm window (as panel mode builds it); for the
    alternative measures, stand-ins on the panel's table: ``growth=dhs`` stands for an
    outcome on another scale (twice the outcome) and ``va_index=pca`` for an index that
    reverses VA (negated treatment), so the rule's pass and fail are both known."""
    panel = load_panel(PANEL_DATA, PANEL_ROLES_, seed=seed)
    calm = panel_rebuild(panel, PANEL_ROLES_, MeasuresConfig(), calm=PlaceboShockConfig().window)

    def rebuild(variant: str):
        if variant == "calm":
            return calm("calm")
        return (
            replace(data, y=2.0 * data.y) if variant == "growth=dhs" else replace(data, t=-data.t)
        )

    return rebuild


@pytest.fixture(scope="module")
def stage():
    seed = PANEL_SEED
    loaded = load_study_data(PANEL_DATA, PANEL_ROLES_, MeasuresConfig(), seed=seed)
    assert loaded.truth is not None
    data = build_analysis_data(loaded.frame, PANEL_ROLES_)
    estimation = fit_estimators(data, [SPEC], NUISANCE, random_state=seed)
    config = RobustnessConfig.model_validate(
        {
            "enabled": True,
            "data_subsets": {"repeats": 3},
            "leave_one_group_out": {"dimensions": ["ownership"]},
            "placebo_shock": {"enabled": True},
            "alternative_measures": {"enabled": True, "variants": ["growth=dhs", "va_index=pca"]},
        }
    )
    result = run_robustness(
        data, estimation, [SPEC], NUISANCE, config, random_state=seed,
        rebuild=_calm_and_alternative(seed, data), backend=LocalBackend(n_jobs=2),
    )  # fmt: skip
    return data, estimation, result, loaded.truth


def _rows(result: RobustnessResult, check: str) -> list[CheckResult]:
    return [c for c in result.checks if c.check == check]


@pytest.mark.slow
@pytest.mark.statistical
def test_stage_runs_every_refuter(stage) -> None:
    _, _, result, _ = stage
    frame = result.to_frame()
    assert set(frame["check"]) == {
        "placebo_treatment",
        "random_common_cause",
        "data_subsets",
        "leave_one_group_out",
        "placebo_shock",
        "alternative_measures",
    }
    assert len(_rows(result, "data_subsets")) == 4
    assert len(_rows(result, "leave_one_group_out")) == 3
    assert frame["rule"].str.len().min() > 10
    metrics = result.metrics()
    assert "robustness.placebo_treatment.estimate" in metrics
    assert 0.0 <= metrics["robustness.family.test_p"] <= 1.0
    assert metrics["robustness.family.passed"] in (0.0, 1.0)
    assert "sensitivity.linear_dml.rv" in metrics


@pytest.mark.slow
@pytest.mark.statistical
def test_placebos_vanish_and_random_cause_stays_within_one_se(stage) -> None:
    _, estimation, result, truth = stage
    full = estimation.estimators[0].ate
    # the panel's effect is real (truth.ate ~ 0.5) and found: the placebos' zero is informative
    assert truth.ate > 0 and not full.covers(0.0)
    (placebo,) = _rows(result, "placebo_treatment")
    assert placebo.ci_low <= 0 <= placebo.ci_high and placebo.passed
    (shock,) = _rows(result, "placebo_shock")
    assert shock.ci_low <= 0 <= shock.ci_high and shock.passed
    (rcc,) = _rows(result, "random_common_cause")
    print(
        f"panel: ATE {full.estimate:.4f} (se {full.se:.4f}) truth {truth.ate:.4f}; placebo "
        f"{placebo.estimate:.4f} [{placebo.ci_low:.4f}, {placebo.ci_high:.4f}]; shock "
        f"{shock.estimate:.4f} [{shock.ci_low:.4f}, {shock.ci_high:.4f}]; common cause "
        f"{rcc.estimate:.4f}"
    )
    assert abs(rcc.estimate - full.estimate) <= full.se and rcc.passed


@pytest.mark.slow
@pytest.mark.statistical
def test_subsets_groups_and_alternative_measures_pass_on_a_sound_design(stage) -> None:
    _, estimation, result, _ = stage
    assert all(r.passed for r in _rows(result, "data_subsets"))
    assert all(r.passed for r in _rows(result, "leave_one_group_out"))
    double, negated = _rows(result, "alternative_measures")
    full = estimation.estimators[0].ate.estimate
    # an outcome twice as large doubles the effect exactly in a linear model: within 3 SE
    assert abs(double.estimate - 2 * full) < 3 * double.se and double.passed
    # a negated VA index flips the sign, which the rule must catch
    assert negated.estimate < 0 and not negated.passed


@pytest.mark.slow
@pytest.mark.statistical
def test_sensitivity_moments_match_the_generator(stage) -> None:
    data, estimation, result, _ = stage
    cfg = PANEL_DATA.panel
    # VA = LQ + platform, and platform carries firm noise b_i ~ N(0, 0.8^2) plus N(0, 0.15^2)
    # independent of every control and modifier, so Var(VA | X, W) >= 0.8^2 + 0.15^2 and
    # nu2 = 1 / E[T_res^2] <= 1 / 0.6625 (the city parts only add); at ~15k firms the
    # sample variance of that noise is within 2%, so 5% is over 3 SD
    ridge = fit_estimators(data, [SPEC], NuisanceConfig(model="ridge"), random_state=0)
    params = plr_sensitivity(ridge.estimators[0].model)
    assert params is not None
    assert params.nu2 <= 1 / (0.8**2 + 0.15**2) * 1.05
    # sigma2 >= city^2 + industry^2 + noise^2 (independent of X, W, VA), plus effect
    # heterogeneity and ridge misfit
    floor = cfg.cluster_effect**2 + cfg.industry_effect**2 + cfg.noise**2
    assert params.sigma2 >= floor * 0.9
    # the run's own (LightGBM) residuals: same quantities, fitted no less tightly
    lgbm = plr_sensitivity(estimation.estimators[0].model)
    assert lgbm is not None and lgbm.nu2 <= params.nu2 * 1.1
    sensitivity = result.sensitivity
    assert sensitivity is not None
    assert {b.control for b in sensitivity.benchmarks} == set(PANEL_ROLES_.controls)
    item = sensitivity.estimators[0]
    assert item.rv > item.rv_ci > 0
    assert item.rv_econml == pytest.approx(
        estimation.estimators[0].model.robustness_value(), rel=1e-9
    )
    strongest = sensitivity.strongest_benchmark()
    assert strongest is not None and strongest.control in {"productivity", "geo_agglom", "city_dev"}
    frame = sensitivity.to_frame()
    assert len(frame) == 9 + len(PANEL_ROLES_.controls)


@pytest.mark.slow
@pytest.mark.statistical
def test_bounds_at_the_hidden_confounders_strength_include_the_truth(stage) -> None:
    """The panel's U (strength gamma) enters VA (through platform) and resistance alike
    and is independent of X and W, so with V0 = Var(VA | X, W, U) the PLR strengths of U
    are cf_d = gamma^2 / (V0 + gamma^2) and cf_y = gamma^2 V0 / (V0 + gamma^2) / sigma2_short,
    where V0 + gamma^2 = Var(VA | X, W) = 1 / nu2 of the short fit. The plain estimate is
    biased by about gamma^2 / (V0 + gamma^2); the bounds at U's strengths (rho = 1 for a
    single U) must reach the true ATE, while the ordinary CI misses it."""
    gamma = 1.0
    panel = PANEL_DATA.panel.model_copy(update={"unobserved_confounding": gamma})
    confounded = PANEL_DATA.model_copy(update={"panel": panel})
    loaded = load_study_data(confounded, PANEL_ROLES_, MeasuresConfig(), seed=5)
    assert loaded.truth is not None
    data = build_analysis_data(loaded.frame, PANEL_ROLES_)
    # ridge nuisances: the outcome's and VA's dependence on X, W is close to linear
    ridge = NuisanceConfig(model="ridge")
    result = fit_estimators(data, [SPEC], ridge, random_state=5).estimators[0]
    params = plr_sensitivity(result.model)
    assert params is not None
    true_ate = loaded.truth.ate
    assert not result.ate.covers(true_ate)
    v_short = 1 / params.nu2
    v0 = v_short - gamma**2
    assert v0 > 0
    cf_d = gamma**2 / v_short
    cf_y = gamma**2 * v0 / v_short / params.sigma2
    bound = sensitivity_bound(result.ate, params, cf_y=cf_y, cf_d=cf_d)
    assert bound.covers(true_ate)
    assert bound.bias_bound > abs(result.ate.estimate - true_ate) - 2 * result.ate.se
    # U pushes the estimate away from zero, so the robustness value against 0 rises over
    # the unconfounded panel's; against the true ATE it is positive: a confounder of U's
    # size explains the gap
    rv_true = robustness_value(result.ate, params, null=true_ate)
    rv_zero = robustness_value(result.ate, params)
    _, estimation, _, _ = stage
    clean = plr_sensitivity(estimation.estimators[0].model)
    assert clean is not None
    rv_clean = robustness_value(estimation.estimators[0].ate, clean)
    print(
        f"confounded: estimate {result.ate.estimate:.4f} (se {result.ate.se:.4f}) truth "
        f"{true_ate:.4f} cf_d {cf_d:.3f} cf_y {cf_y:.3f} bound [{bound.ci_low:.4f}, "
        f"{bound.ci_high:.4f}] rv(0) {rv_zero:.3f} rv(truth) {rv_true:.3f}; "
        f"unconfounded rv(0) {rv_clean:.3f}"
    )
    assert rv_true > 0.2


# ------------------------------------------------------------------ in a whole run


@pytest.mark.integration
def test_run_with_robustness_writes_tables_metrics_and_report(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from vaer.pipeline import run_experiment
    from vaer.reporting import ReportBundle

    raw = small_config(
        tmp_path,
        estimators=[{"kind": "linear_dml", "params": {"cv": 3}}],
        robustness={
            "enabled": True,
            "data_subsets": {"repeats": 2},
            "leave_one_group_out": {"dimensions": ["region"]},
            "sensitivity": {"benchmark": False},
        },
    )
    result = run_experiment(validate_config(raw))
    assert result.robustness is not None
    bundle = ReportBundle.read(result.out_dir)
    table = bundle.tables["robustness"]
    assert list(table.columns) == [
        "check", "variant", "estimator", "estimate", "se", "ci_low", "ci_high",
        "reference", "reference_se", "rule", "test_p", "level", "false_alarm", "passed",
        "check_p", "family_p",
    ]  # fmt: skip
    assert set(table["check"]) == {
        "placebo_treatment", "random_common_cause", "data_subsets", "leave_one_group_out"
    }  # fmt: skip
    assert len(bundle.tables["sensitivity"]) == 9
    html = (result.out_dir / "report.html").read_text(encoding="utf-8")
    assert "Robustness and sensitivity" in html and "<svg" in html
    section = html[html.index('<section id="robustness">') :]
    section = section[: section.index("</section>")]
    assert "test at a stated level (5%)" in section and "fail" not in section.lower()
    assert "Taken together (Holm" in section
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    metrics = client.get_run(result.run_id).data.metrics
    assert "robustness.placebo_treatment.passed" in metrics
    assert "robustness.placebo_treatment.estimate" in metrics
    assert 0.0 <= metrics["robustness.family.test_p"] <= 1.0
    assert metrics["robustness.family.passed"] in (0.0, 1.0)
    assert "sensitivity.linear_dml.rv" in metrics
    assert "time.stage.robustness" in metrics


# ------------------------------------------------------------------ panel mode


@pytest.fixture(scope="module")
def panel_run(tmp_path_factory: pytest.TempPathFactory):
    from test_panel_mode import panel_config
    from vaer.pipeline import run_experiment

    tmp_path = tmp_path_factory.mktemp("panel_robustness")
    raw = panel_config(tmp_path)
    raw["data"]["panel"]["n_firms"] = 3000
    raw["heterogeneity"] = {"enabled": False}  # the tests read the robustness checks only
    raw["attribution"] = {"enabled": False}
    raw["robustness"] = {
        "enabled": True,
        "placebo_treatment": {"enabled": False},
        "random_common_cause": {"enabled": False},
        "data_subsets": {"enabled": False},
        "leave_one_group_out": {"enabled": False},
        "sensitivity": {"enabled": False},
        "placebo_shock": {"enabled": True},
        "alternative_measures": {"enabled": True},
    }
    return run_experiment(validate_config(raw))


@pytest.mark.slow
@pytest.mark.statistical
def test_panel_placebo_shock_vanishes(panel_run) -> None:
    """The synthetic panel applies VA's effect only in shock windows, so resistance over
    2005 -> 2006 (no shock) has no effect of VA. On one seed the 95% CI misses 0 one time
    in twenty, so the test allows 3 SE (on this seed the CI ended just below 0 once the
    nuisances stopped early); the check's own verdict follows its rule (a t-test at level
    alpha) either way."""
    (shock,) = [c for c in panel_run.robustness.checks if c.check == "placebo_shock"]
    assert abs(shock.estimate) < 3 * shock.se
    # the rule is a t-test on the panel's 40 cities - 1 df
    assert shock.test_p == pytest.approx(2 * stats.t.sf(abs(shock.estimate / shock.se), 39))
    assert shock.passed == (shock.test_p > shock.level)
    main = panel_run.estimation.estimators[0].ate
    assert not main.covers(0.0)


@pytest.mark.slow
@pytest.mark.statistical
def test_panel_alternative_measures_keep_the_sign(panel_run) -> None:
    """Every alternative outcome (DHS growth, Martin ratio, composite) and VA index
    (entropy, PCA) is a monotone rescaling of the same true effect, positive here."""
    rows = [c for c in panel_run.robustness.checks if c.check == "alternative_measures"]
    assert [r.variant for r in rows] == [
        "growth=dhs", "outcome=ratio", "outcome=composite", "va_index=entropy", "va_index=pca"
    ]  # fmt: skip
    assert all(r.estimate > 0 and r.passed for r in rows)


def test_measure_variants_are_checked(tmp_path: Path) -> None:
    from vaer.config.panel import MeasuresConfig
    from vaer.robustness.panel import measures_variant

    assert measures_variant(MeasuresConfig(), "growth=dhs").growth == "dhs"
    with pytest.raises(ValueError, match="must be `key=value`"):
        measures_variant(MeasuresConfig(), "dhs")
    with pytest.raises(ValueError, match="'colour' is not a measures key"):
        measures_variant(MeasuresConfig(), "colour=red")
    with pytest.raises(ValueError, match="alternative measure 'growth=cubic'"):
        measures_variant(MeasuresConfig(), "growth=cubic")
    raw = small_config(
        tmp_path, robustness={"alternative_measures": {"variants": ["growth=cubic"]}}
    )
    with pytest.raises(ConfigError, match="alternative measure 'growth=cubic'"):
        validate_config(raw)
    raw = small_config(tmp_path, robustness={"alternative_measures": {"variants": ["x=1"]}})
    with pytest.raises(ConfigError, match="must be `key=value` with key one of"):
        validate_config(raw)


def test_refuters_refit_on_at_most_max_units_whole_clusters() -> None:
    table = make_synthetic_table(SyntheticTableConfig(n_units=2400, n_clusters=60), random_state=2)
    data = build_analysis_data(table.frame, ROLES)
    estimation = fit_estimators(data, [SPEC], NUISANCE, random_state=0)
    config = RobustnessConfig.model_validate(
        {
            "enabled": True,
            "max_units": 1000,
            "data_subsets": {"enabled": False},
            "leave_one_group_out": {"enabled": False},
            "sensitivity": {"enabled": False},
        }
    )
    result = run_robustness(data, estimation, [SPEC], NUISANCE, config, random_state=0)
    largest_city = int(pd.Series(data.clusters).value_counts().max())
    assert result.n_units is not None and 1000 <= result.n_units < 1000 + largest_city
    assert result.metrics()["robustness.n_units"] == result.n_units
    placebo = _rows(result, "placebo_treatment")[0]
    common = _rows(result, "random_common_cause")[0]
    # the random common cause is judged against a reference refitted on the same units,
    # not against the full-sample estimate
    assert common.estimate != pytest.approx(estimation.estimators[0].ate.estimate, abs=1e-6)
    assert placebo.passed and common.passed
