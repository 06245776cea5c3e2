"""Estimator registry, shared nuisances and their faithfulness to econml's own fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import BASE_ROLES, small_config, write_yaml
from vaer.config import ConfigError, load_experiment
from vaer.config.models import ExperimentConfig, NuisanceConfig, SyntheticTableConfig
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.synthetic_table import make_synthetic_table
from vaer.estimators import chunks
from vaer.estimators.fit import fit_estimators
from vaer.estimators.learners import CachedClassifier, CachedRegressor, make_classifier
from vaer.estimators.nuisance import NuisanceCache, binarise, make_regressor
from vaer.estimators.registry import get_kind
from vaer.estimators.scores import aipw_scores, iv_dr_scores

# early stopping holds out whole clusters, which econml cannot pass to its nuisance models:
# the faithfulness tests compare fits with a fixed number of trees
FAST = NuisanceConfig(params={"n_estimators": 40}, early_stopping=False)
ECONML_LIKE = FAST.model_copy(update={"outcome_model": "partialling_out", "crossfit_repeats": 1})
"""Nuisances as econml fits them: one split, the outcome regressed on the controls."""
ALL_KINDS = [
    "linear_dml",
    "sparse_linear_dml",
    "causal_forest_dml",
    "dr_learner",
    "forest_dr_learner",
    "orthoiv",
    "dmliv",
    "causal_iv_forest",
]


def _config(estimators: list[dict[str, Any]], **roles: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "t", "roles": {**BASE_ROLES, **roles}, "estimators": estimators}
    )


@pytest.fixture(scope="module")
def small_data() -> AnalysisData:
    table = make_synthetic_table(SyntheticTableConfig(n_units=600, n_clusters=30), random_state=5)
    config = _config([{"kind": "linear_dml"}], instrument="pilot")
    return build_analysis_data(table.frame, config.roles)


def _cache(data: AnalysisData, config: NuisanceConfig = FAST) -> NuisanceCache:
    assert data.instrument is not None
    return NuisanceCache(
        x=data.x.to_numpy(),
        xw=data.xw.to_numpy(),
        y=data.y,
        t=data.t,
        clusters=data.clusters,
        config=config,
        random_state=0,
        z=data.instrument,
    )


# ------------------------------------------------ faithfulness to econml's own fits


def test_dr_learner_on_cached_nuisances_equals_econml_fit(small_data: AnalysisData) -> None:
    """Same learners and folds: econml fitting its own nuisances gives the same model."""
    from econml.dr import LinearDRLearner

    cache = _cache(small_data, ECONML_LIKE)
    spec = _config([{"kind": "dr_learner"}]).estimators[0]
    kind = get_kind("dr_learner")
    ours = kind.build(spec.params, cache.folds(5), 0, cache)
    kind.fit(ours, np.arange(small_data.n), cache, spec.params)
    d = cache.binary(5, "median").d
    theirs = LinearDRLearner(
        model_propensity=make_classifier(FAST, 0),
        model_regression=make_regressor(FAST, 0),
        min_propensity=spec.params.min_propensity,
        cv=cache.folds(5),
        random_state=0,
    ).fit(small_data.y, d, X=cache.x, W=small_data.w.to_numpy())
    np.testing.assert_allclose(ours.coef_(T=1), theirs.coef_(T=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_(T=1), theirs.intercept_(T=1), rtol=1e-9)
    # our AIPW scores are the pseudo-outcomes econml's final stage regresses on X
    nu = cache.binary(5, "median")
    scores = aipw_scores(small_data.y, d, nu.mu, nu.propensity, spec.params.min_propensity)
    design = np.column_stack([np.ones(small_data.n), cache.x])
    ols = np.linalg.lstsq(design, scores, rcond=None)[0]
    np.testing.assert_allclose(ols, [ours.intercept_(T=1), *ours.coef_(T=1)], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind_name", ["orthoiv", "dmliv"])
def test_iv_kinds_on_cached_nuisances_equal_econml_fit(
    small_data: AnalysisData, kind_name: str
) -> None:
    from econml.iv.dml import DMLIV, OrthoIV

    cache = _cache(small_data, ECONML_LIKE)
    spec = _config([{"kind": kind_name}], instrument="pilot").estimators[0]
    kind = get_kind(kind_name)
    ours = kind.build(spec.params, cache.folds(5), 0, cache)
    kind.fit(ours, np.arange(small_data.n), cache, spec.params)
    models = {
        "model_y_xw": make_regressor(FAST, 0),
        "model_t_xw": make_regressor(FAST, 0),
    }
    if kind_name == "orthoiv":
        theirs = OrthoIV(
            **models, model_z_xw=make_regressor(FAST, 0), projection=False, cv=cache.folds(5)
        )
    else:
        theirs = DMLIV(**models, model_t_xwz=make_regressor(FAST, 0), cv=cache.folds(5))
    theirs.fit(
        small_data.y, small_data.t, Z=small_data.instrument, X=cache.x, W=small_data.w.to_numpy()
    )
    np.testing.assert_allclose(ours.effect(cache.x), theirs.effect(cache.x), rtol=1e-8)


def test_linear_dml_on_residuals_equals_econml_fit(small_data: AnalysisData) -> None:
    from econml.dml import LinearDML

    cache = _cache(small_data, ECONML_LIKE)
    spec = _config([{"kind": "linear_dml"}]).estimators[0]
    kind = get_kind("linear_dml")
    ours = kind.build(spec.params, cache.folds(5), 0, cache)
    kind.fit(ours, np.arange(small_data.n), cache, spec.params)
    theirs = LinearDML(
        model_y=make_regressor(FAST, 0), model_t=make_regressor(FAST, 0), cv=cache.folds(5)
    ).fit(small_data.y, small_data.t, X=cache.x, W=small_data.w.to_numpy())
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        ours.ate_inference(X=cache.x).stderr_mean, theirs.ate_inference(X=cache.x).stderr_mean
    )


# ------------------------------------------------------ all kinds, sharing, n_jobs


WITHHELD_FOREST = "forest_dr_learner"
"""The forest left at the default ``per_firm_intervals: false`` in :func:`all_kinds`."""


def _forest_params(kind: str) -> dict[str, Any]:
    return {"n_estimators": 40, "per_firm_intervals": kind != WITHHELD_FOREST}


@pytest.fixture(scope="module")
def all_kinds(small_data: AnalysisData) -> Any:
    config = _config(
        [{"kind": k, "params": _forest_params(k) if "forest" in k else {}} for k in ALL_KINDS],
        instrument="pilot",
    )
    return config, fit_estimators(small_data, config.estimators, FAST, random_state=0, n_jobs=1)


def test_every_kind_gives_finite_effects_scores_and_named_estimands(all_kinds: Any) -> None:
    _, result = all_kinds
    assert [r.kind for r in result.estimators] == ALL_KINDS
    for r in result.estimators:
        assert np.isfinite(r.tau_hat).all() and np.isfinite(r.scores).all(), r.label
        assert r.ate.estimate == pytest.approx(float(np.mean(r.scores)))
        assert r.ate.se > 0 and r.ate.se_type.startswith("cluster-robust")
        assert r.estimand == r.ate.estimand
    table = result.to_frame()
    assert len(table) == len(ALL_KINDS)
    assert set(table["se_type"]) == {"cluster-robust (DR scores)"}
    binary = table[table["estimator"].isin(["dr_learner", "forest_dr_learner"])]
    assert binary["estimand"].str.contains("high vs low the treatment").all()
    cate = result.cate_frame()
    assert set(cate["estimator"]) == set(ALL_KINDS)
    # forests write per-firm intervals only when asked (per_firm_intervals); linear final
    # stages write none (their interval would cover the best linear projection, not the
    # firm's effect)
    forests = cate["estimator"].str.contains("forest") & (cate["estimator"] != WITHHELD_FOREST)
    assert (cate.loc[forests, "interval"] == "firm").all()
    assert (cate.loc[~forests, "interval"] == "none").all()
    notes = result.intervals_frame().set_index("estimator")["meaning"]
    assert notes[WITHHELD_FOREST].startswith("no per-firm interval: the forest's estimate")
    assert "smoothing bias" in notes["causal_forest_dml"]
    assert np.isfinite(cate.loc[forests, ["se", "ci_low", "ci_high"]]).all().all()
    assert cate.loc[~forests, ["se", "ci_low", "ci_high"]].isna().all().all()
    inside = cate.loc[forests]
    assert ((inside["ci_low"] < inside["tau_hat"]) & (inside["tau_hat"] < inside["ci_high"])).all()


def test_nuisances_are_fitted_once_per_family(all_kinds: Any) -> None:
    _, result = all_kinds
    assert set(result.nuisance_seconds_by_family) == {"continuous", "binary:median", "iv"}
    # the two DR learners share the same AIPW scores, hence the same ATE
    dr, forest_dr = result.get("dr_learner"), result.get("forest_dr_learner")
    np.testing.assert_array_equal(dr.scores, forest_dr.scores)


def test_same_seed_same_numbers_whatever_n_jobs(small_data: AnalysisData, all_kinds: Any) -> None:
    config, first = all_kinds
    second = fit_estimators(small_data, config.estimators, FAST, random_state=0, n_jobs=2)
    for a, b in zip(first.estimators, second.estimators, strict=True):
        np.testing.assert_array_equal(a.tau_hat, b.tau_hat, err_msg=a.label)
        np.testing.assert_array_equal(a.scores, b.scores, err_msg=a.label)
    pd.testing.assert_frame_equal(first.to_frame(), second.to_frame())
    pd.testing.assert_frame_equal(first.cate_frame(), second.cate_frame())


@pytest.mark.parametrize("kind", ["causal_forest_dml", "forest_dr_learner", "causal_iv_forest"])
def test_forest_kinds_estimate_from_trees_that_never_saw_the_cluster(
    small_data: AnalysisData, all_kinds: Any, kind: str
) -> None:
    _, result = all_kinds
    fitted = result.get(kind)
    x = small_data.x.to_numpy(dtype=np.float64)
    point, variance = fitted.model.oob_predict_and_var(x, small_data.clusters)
    np.testing.assert_array_equal(fitted.tau_hat, point)
    if kind == WITHHELD_FOREST:  # per_firm_intervals off (the default): no SE is written
        assert np.isnan(fitted.tau_se).all() and fitted.interval == "none"
    else:
        np.testing.assert_array_equal(fitted.tau_se, np.sqrt(variance))


def test_by_rows_keeps_the_order_and_checks_the_block_size() -> None:
    x = np.arange(10.0)[:, None]
    assert [len(b) for b in chunks.by_rows(lambda part: part, x, rows=4)] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(chunks.by_rows(lambda p: p * 2, x, 3)), x * 2)
    assert chunks.by_rows(len, x[:0]) == []
    with pytest.raises(ValueError, match=r"`rows` must be an int >= 1; got 0"):
        chunks.by_rows(len, x, rows=0)


def test_a_different_seed_changes_the_folds(small_data: AnalysisData) -> None:
    spec = _config([{"kind": "linear_dml"}]).estimators
    a = fit_estimators(small_data, spec, FAST, random_state=0)
    b = fit_estimators(small_data, spec, FAST, random_state=1)
    assert a.estimators[0].ate.estimate != b.estimators[0].ate.estimate


def test_iv_kinds_need_an_instrument_in_the_data(small_data: AnalysisData) -> None:
    config = _config([{"kind": "orthoiv"}], instrument="pilot")
    data = AnalysisData(**{**vars(small_data), "instrument": None})
    with pytest.raises(ValueError, match=r"need an instrument: set `roles.instrument`"):
        fit_estimators(data, config.estimators, FAST, random_state=0)


# ------------------------------------------------------------- config validation


def test_iv_kind_without_instrument_is_a_config_error(tmp_path: Path) -> None:
    raw = small_config(tmp_path, estimators=[{"kind": "dmliv"}])
    with pytest.raises(
        ConfigError, match=r"\['dmliv'\] are instrumental-variable estimators.*roles.instrument"
    ):
        load_experiment(write_yaml(tmp_path / "e.yaml", raw))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "estimators.0.params.binarize=median",
            r"estimators\.0\.params\.binarize: unknown key; did you mean 'binarise'\?"
            r" allowed keys: binarise, cv, fit_cate_intercept, min_propensity",
        ),
        ("estimators.0.params.binarise=top_half", r"estimators\.0\.params\.binarise"),
        ("estimators.0.params.min_propensity=0.7", r"min_propensity: must be a number < 0\.5"),
    ],
)
def test_estimator_params_are_validated(tmp_path: Path, override: str, message: str) -> None:
    raw = small_config(tmp_path, estimators=[{"kind": "dr_learner"}])
    path = write_yaml(tmp_path / "e.yaml", raw)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path, [override])


def test_unknown_forest_param_lists_the_allowed_ones(tmp_path: Path) -> None:
    raw = small_config(tmp_path, estimators=[{"kind": "causal_iv_forest"}])
    raw["roles"]["instrument"] = "pilot"
    path = write_yaml(tmp_path / "e.yaml", raw)
    with pytest.raises(
        ConfigError, match=r"n_trees: unknown key.*allowed keys: ci_group_size, criterion, cv"
    ):
        load_experiment(path, ["estimators.0.params.n_trees=8"])


def test_unknown_kind_lists_every_kind(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown kind 'magic'.*'sparse_linear_dml'.*'dmliv'"):
        load_experiment(path, ["estimators.0.kind=magic"])
    with pytest.raises(ValueError, match=r"unknown estimator kind 'magic'; allowed: .*dmliv"):
        get_kind("magic")


# ------------------------------------------------------------- small components


def test_binarise_rules_and_errors() -> None:
    t = np.arange(9.0)
    d, cut = binarise(t, "median")
    assert cut == 4.0 and d.sum() == 4
    d, cut = binarise(t, "top_tercile")
    assert d.sum() == 3
    with pytest.raises(ValueError, match="unknown binarisation rule 'mean'"):
        binarise(t, "mean")
    with pytest.raises(ValueError, match="leaves one arm empty"):
        binarise(np.ones(5), "median")


def test_cached_learners_look_up_rows_and_arms() -> None:
    features = np.array([[9.0, 2.0, 1.0], [9.0, 0.0, 0.0]])
    reg = CachedRegressor(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), id_column=1)
    np.testing.assert_array_equal(reg.fit(features, None).predict(features), [5.0, 0.0])
    clf = CachedClassifier(np.array([0.2, 0.5, 0.9]), id_column=1).fit(features, [0, 1])
    np.testing.assert_allclose(clf.predict_proba(features), [[0.1, 0.9], [0.8, 0.2]])
    with pytest.raises(ValueError, match="CachedRegressor needs `values`"):
        CachedRegressor().fit(features, None)
    with pytest.raises(ValueError, match="CachedClassifier needs `values`"):
        CachedClassifier().fit(features, [0, 1])


def test_unknown_nuisance_param_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"nuisance.params: unknown keys \['depth'\] for ridge"):
        make_classifier(NuisanceConfig(model="ridge", params={"depth": 3}), 0)


@pytest.mark.parametrize("model", ["lightgbm", "random_forest", "hist_gradient_boosting", "ridge"])
def test_every_nuisance_family_builds_a_regressor_and_classifier(model: str) -> None:
    config = NuisanceConfig(model=model)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    assert make_regressor(config, 0).fit(x, x[:, 0]).predict(x).shape == (200,)
    labels = (x[:, 0] > 0).astype(int)
    assert make_classifier(config, 0).fit(x, labels).predict_proba(x).shape == (200, 2)


def test_aipw_scores_formula_and_errors() -> None:
    y, d = np.array([1.0, 2.0]), np.array([1.0, 0.0])
    mu, p = np.array([[0.5, 1.5], [1.0, 2.0]]), np.array([0.5, 0.999])
    scores = aipw_scores(y, d, mu, p, 0.01)
    np.testing.assert_allclose(scores, [1.0 - 0.5 / 0.5, 1.0 - 1.0 / 0.01])
    with pytest.raises(ValueError, match="must have shape"):
        aipw_scores(y, d, mu[:, :1], p, 0.01)
    with pytest.raises(ValueError, match="`d` must be 0/1"):
        aipw_scores(y, d + 0.5, mu, p, 0.01)
    with pytest.raises(ValueError, match=r"`min_propensity` must be in \(0, 0.5\); got 0.6"):
        aipw_scores(y, d, mu, p, 0.6)


def test_iv_scores_formula_and_errors() -> None:
    tau, yr, tr, zr, c = (np.array(v) for v in ([1.0], [2.0], [0.5], [1.0], [0.25]))
    np.testing.assert_allclose(iv_dr_scores(tau, yr, tr, zr, c), [1.0 + 1.0 * 1.5 / 0.25])
    with pytest.raises(ValueError, match="same shape"):
        iv_dr_scores(tau, yr, tr, zr, np.ones(2))
    with pytest.raises(ValueError, match="`compliance` must be non-zero"):
        iv_dr_scores(tau, yr, tr, zr, np.zeros(1))


# ------------------------------------------------------------------------ tuning


def test_tuning_picks_one_candidate_per_target_on_grouped_splits(
    small_data: AnalysisData,
) -> None:
    from vaer.config.models import TuneConfig
    from vaer.estimators.tune import tune_estimation

    config = _config(
        [{"kind": "causal_forest_dml", "params": {"n_estimators": 20}}, {"kind": "linear_dml"}]
    )
    tune = TuneConfig(
        enabled=True,
        nuisance_grid=[{"n_estimators": 20}, {"n_estimators": 40, "num_leaves": 7}],
        forest_grid=[{"min_samples_leaf": 5}, {"min_samples_leaf": 40}],
    )
    result = tune_estimation(small_data, config.estimators, FAST, tune, random_state=0)
    table = result.to_frame()
    assert list(table["target"]) == ["nuisance"] * 2 + ["causal_forest_dml"] * 2
    assert table.groupby("target")["chosen"].sum().eq(1).all()
    assert np.isfinite(table["loss"]).all()
    chosen = table[table["chosen"] & (table["target"] == "causal_forest_dml")]["candidate"].item()
    assert result.specs[0].params.min_samples_leaf == (5 if "5" in chosen else 40)
    assert result.specs[1] == config.estimators[1]
    assert result.nuisance.params["n_estimators"] in (20, 40)
    assert set(result.metrics()) == {
        "tune.nuisance.best_loss",
        "tune.causal_forest_dml.best_loss",
        "time.tune",
    }
    again = tune_estimation(small_data, config.estimators, FAST, tune, random_state=0)
    assert again.trials == result.trials


def test_tuning_rejects_an_invalid_forest_candidate(small_data: AnalysisData) -> None:
    from vaer.config.models import TuneConfig
    from vaer.estimators.tune import tune_estimation

    config = _config([{"kind": "causal_forest_dml"}])
    tune = TuneConfig(enabled=True, nuisance_grid=[{}], forest_grid=[{"n_trees": 5}])
    with pytest.raises(ValueError, match=r"tune.forest_grid entry \{'n_trees': 5\} is not valid"):
        tune_estimation(small_data, config.estimators, FAST, tune, random_state=0)


@pytest.mark.integration
def test_pipeline_with_tuning_iv_and_binarised_estimators(tmp_path: Path) -> None:
    from vaer.config import validate_config
    from vaer.pipeline import run_experiment

    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 600, "n_clusters": 30}},
        nuisance={"params": {"n_estimators": 30}, "n_jobs": 2},
        estimators=[
            {"kind": "causal_forest_dml", "params": {"n_estimators": 20, "cv": 3}},
            {"kind": "dr_learner", "params": {"cv": 3}},
            {"kind": "orthoiv", "params": {"cv": 3}},
        ],
        tune={"enabled": True, "nuisance_grid": [{}, {"num_leaves": 7}], "forest_grid": [{}]},
    )
    raw["roles"]["instrument"] = "pilot"
    run = run_experiment(validate_config(raw))
    assert run.tuning is not None
    tables = run.out_dir / "tables"
    assert len(pd.read_csv(tables / "tuning.csv")) == 3
    ate = pd.read_csv(tables / "ate.csv")
    assert set(ate["estimator"]) == {"causal_forest_dml", "dr_learner", "orthoiv"}
    assert ate["estimand"].notna().all() and ate["se_type"].notna().all()
    cate = pd.read_csv(tables / "cate.csv")
    assert len(cate) == 3 * 600 and {"tau_hat", "se", "estimand"} <= set(cate.columns)
    assert run.report_path is not None
    html = run.report_path.read_text(encoding="utf-8")
    assert "Tuning on cluster-grouped splits" in html and "high vs low va_index" in html
    # tuning is logged as a nested step: a finished child run holding its table and metrics
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=raw["tracking"]["uri"])
    parent = client.get_run(run.run_id)
    (child,) = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run.run_id}'"
    )
    assert child.info.status == "FINISHED" and child.data.tags["vaer.step"] == "tune"
    assert set(child.data.metrics) == set(run.tuning.metrics())
    assert {a.path for a in client.list_artifacts(child.info.run_id, "tables")} >= {
        "tables/tuning.csv"
    }


def _one_city_data(
    extra: dict[str, Any] | None = None,
) -> tuple[AnalysisData, Any, list[str]]:
    """600 firms in 20 cities with a modifier held by one city's firms only (``one_city``),
    plus ``extra`` modifier columns (name -> function of the frame)."""
    frame = make_synthetic_table(
        SyntheticTableConfig(n_units=600, n_clusters=20), random_state=3
    ).frame
    frame["one_city"] = (frame["city"] == frame["city"].iloc[0]).astype(float)
    for name, make in (extra or {}).items():
        frame[name] = make(frame)
    modifiers = ["productivity", "one_city", *(extra or {})]
    roles = ExperimentConfig.model_validate(
        {
            "name": "x",
            "roles": {**BASE_ROLES, "modifiers": modifiers, "firm_types": [],
                      "instrument": "pilot"},
            "estimators": [{"kind": "orthoiv"}],
        }
    ).roles  # fmt: skip
    return build_analysis_data(frame, roles), roles, modifiers


@pytest.mark.parametrize("kind", ["linear_dml", "sparse_linear_dml", "orthoiv", "dmliv"])
def test_a_modifier_constant_in_half_of_the_cities_is_left_out_of_that_half_only(
    kind: str,
) -> None:
    """A modifier held by one city's firms does not vary in the half of the cities without
    it. Left in, econml's debiased lasso returned NaN there (``Input contains NaN``: seeds
    1061, 1076, 1081, 1094 of the validity run's panel40_h1) and OrthoIV's final stage was
    singular. The out-of-sample effects of the other half (the city's) are those of the
    same econml final stage fitted without that column: its slope is not identified there."""
    from econml.dml import LinearDML, SparseLinearDML

    from vaer.estimators.learners import ZeroRegressor
    from vaer.estimators.registry import halves

    data, roles, _ = _one_city_data()
    spec = ExperimentConfig.model_validate(
        {"name": "x", "roles": roles.model_dump(), "estimators": [{"kind": kind}]}
    ).estimators
    estimation = fit_estimators(data, spec, NuisanceConfig(model="ridge"), random_state=0)
    tau_hat = estimation.estimators[0].tau_hat
    assert np.isfinite(tau_hat).all()
    cache, x = estimation.cache, data.x.to_numpy(dtype=np.float64)
    city = np.asarray(data.x["one_city"]) == 1
    (train, test), other = cache.folds(2)[0], cache.folds(2)[1]
    if city[train].any():  # the half without the city is the one fitted without the column
        train, test = other
    assert not city[train].any() and city[test].any()
    if kind in ("linear_dml", "sparse_linear_dml"):  # the same final stage, without it
        nu = cache.continuous(spec[0].params.cv)
        params = spec[0].params
        peer = (
            LinearDML(model_y=ZeroRegressor(), model_t=ZeroRegressor(), cv=halves(len(train)),
                      random_state=0)
            if kind == "linear_dml"
            else SparseLinearDML(model_y=ZeroRegressor(), model_t=ZeroRegressor(),
                                 alpha=params.alpha, n_alphas=params.n_alphas,
                                 max_iter=params.max_iter, tol=params.tol,
                                 cv=halves(len(train)), n_jobs=1, random_state=0)
        )  # fmt: skip
        peer.fit(nu.y_res[train], nu.t_res[train], X=x[train][:, [0]])
        np.testing.assert_allclose(tau_hat[test], peer.effect(x[test][:, [0]]), rtol=1e-6)
    # the city's firms get the effect of the model that never saw the level: no jump
    slope = np.polyfit(x[test, 0], tau_hat[test], 1)
    fitted = np.polyval(slope, x[test, 0])
    np.testing.assert_allclose(tau_hat[test][city[test]], fitted[city[test]], atol=1e-8)


def test_a_final_stage_that_cannot_be_fitted_on_half_of_the_cities_says_why() -> None:
    """Two modifiers equal in one half of the cities (held by one city there, by it and a
    city of the other half overall) make OrthoIV's final stage singular in that half: the
    user gets the modifiers and the fix, not numpy's "Singular matrix"."""
    from vaer.estimators.nuisance import grouped_folds

    data, _, _ = _one_city_data()
    train, test = grouped_folds(data.clusters, 2, 0)[0]
    city = np.asarray(data.x["one_city"]) == 1
    # a firm of the half without that city (rows are the table's, in order): `two_cities`
    # equals `one_city` in the city's half, not overall
    far = int(test[0] if city[train].any() else train[0])
    data, roles, _ = _one_city_data(
        {"two_cities": lambda f: f["city"].isin(f["city"].iloc[[0, far]]).astype(float)}
    )
    assert data.x["two_cities"].sum() > data.x["one_city"].sum()
    spec = ExperimentConfig.model_validate(
        {"name": "x", "roles": roles.model_dump(), "estimators": [{"kind": "orthoiv"}]}
    ).estimators
    with pytest.raises(ValueError, match=r"orthoiv: .*half of the clusters.*collinear.*two_c"):
        fit_estimators(data, spec, NuisanceConfig(model="ridge"), random_state=0)
