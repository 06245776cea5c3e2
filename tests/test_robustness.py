"""Refuters, sensitivity analysis and the robustness stage."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
from vaer.data.synthetic import PANEL_ROLES
from vaer.estimators import fit_estimators
from vaer.estimators.results import AteEstimate
from vaer.measures.study import load_study_data
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
from vaer.robustness.rebuild import alternative_measures_plan
from vaer.robustness.refit import plr_sensitivity, refuter_spec
from vaer.robustness.results import CheckResult, RobustnessResult
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
    with pytest.raises(ValueError, match="`fraction` must be in"):
        data_subsets_plan(small_data, full, fraction=1.0, repeats=2, min_share=0.8, random_state=0)
    with pytest.raises(ValueError, match="`repeats` must be an int >= 1"):
        data_subsets_plan(small_data, full, fraction=0.5, repeats=0, min_share=0.8, random_state=0)
    with pytest.raises(ValueError, match="`min_share` must be in"):
        data_subsets_plan(small_data, full, fraction=0.5, repeats=2, min_share=0.0, random_state=0)
    with pytest.raises(ValueError, match="keeps 1; cluster-robust SEs need at least 2"):
        data_subsets_plan(small_data, full, fraction=0.05, repeats=2, min_share=0.8, random_state=0)
    with pytest.raises(ValueError, match=r"firm-type columns \['sector'\] not found"):
        leave_one_group_out_plan(small_data, np.zeros(small_data.n), dimensions=["sector"])
    with pytest.raises(ValueError, match="`scores` must have shape"):
        leave_one_group_out_plan(small_data, np.zeros(3), dimensions=["ownership"])
    with pytest.raises(ValueError, match="at least one alternative measure"):
        alternative_measures_plan(lambda _v: small_data, full, variants=[])


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


def test_result_frames_and_metrics() -> None:
    rows = tuple(
        CheckResult("data_subsets", v, "m", 0.5, 0.1, 0.3, 0.7, 0.5, "rule", p)
        for v, p in (("subset 1", True), ("all", False))
    )
    result = RobustnessResult(checks=rows, sensitivity=None, seconds=1.5)
    frame = result.to_frame()
    assert list(frame.columns[:2]) == ["check", "variant"]
    assert {"estimate", "se", "ci_low", "ci_high", "rule", "passed"} <= set(frame.columns)
    metrics = result.metrics()
    assert metrics["robustness.data_subsets.passed"] == 0.0
    assert metrics["robustness.data_subsets.subset_1.passed"] == 1.0
    assert metrics["time.robustness"] == 1.5
    assert result.sensitivity_frame() is None


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
    calm = panel_rebuild(
        PANEL_DATA, PANEL_ROLES_, MeasuresConfig(), calm=PlaceboShockConfig().window, seed=seed
    )

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
        "reference", "rule", "passed",
    ]  # fmt: skip
    assert set(table["check"]) == {
        "placebo_treatment", "random_common_cause", "data_subsets", "leave_one_group_out"
    }  # fmt: skip
    assert len(bundle.tables["sensitivity"]) == 9
    html = (result.out_dir / "report.html").read_text(encoding="utf-8")
    assert "Robustness and sensitivity" in html and "<svg" in html
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    metrics = client.get_run(result.run_id).data.metrics
    assert "robustness.placebo_treatment.passed" in metrics
    assert "robustness.placebo_treatment.estimate" in metrics
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
    2005 -> 2006 (no shock) has no effect of VA: the 95% CI must cover 0."""
    (shock,) = [c for c in panel_run.robustness.checks if c.check == "placebo_shock"]
    assert shock.ci_low <= 0 <= shock.ci_high and shock.passed
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
