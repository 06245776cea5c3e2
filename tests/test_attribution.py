"""Unit tests of the attribution package: SHAP routes, channels, mechanism tests, report."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import BASE_ROLES, small_config
from vaer.attribution import (
    FinalStage,
    channel_contributions,
    channel_shares,
    channel_shares_by_type,
    cluster_folds,
    explain_across_folds,
    explain_effect,
    final_stages,
    importance_scores,
    importance_table,
    mechanism_tests,
    resolve_method,
)
from vaer.attribution.channels import SHARE_COLUMNS
from vaer.attribution.explain import HonestPair, ShapExplanation
from vaer.attribution.groups import modifier_groups, sum_groups
from vaer.attribution.honest import partner_models
from vaer.attribution.importance import (
    IMPORTANCE_COLUMNS,
    cluster_covariance,
    fieller_interval,
)
from vaer.attribution.linear import effect_coefficients, linear_coefficients, linear_shap
from vaer.attribution.mechanisms import (
    AUTO_SPLITS_MAX_UNITS,
    median_over_splits,
    partial_out_effect,
    resolve_splits,
)
from vaer.attribution.permutation import permutation_shap
from vaer.attribution.refits import refit_rows
from vaer.attribution.share_intervals import (
    LINEAR_PROJECTION,
    SMOOTHED,
    WITHHELD,
    label_share_intervals,
    share_interval_label,
)
from vaer.attribution.stage import sample_rows
from vaer.attribution.surrogate import fit_surrogate, r_squared
from vaer.config import validate_config
from vaer.config.estimators import CausalForestDMLParams, LinearDMLParams
from vaer.config.models import NuisanceConfig, Roles, SyntheticTableConfig
from vaer.data.design import AnalysisData, build_analysis_data, subset
from vaer.data.synthetic_table import MECHANISMS, make_synthetic_table
from vaer.data.truth import Truth
from vaer.estimators.nuisance import NuisanceCache
from vaer.reporting.bundle import ReportBundle

MEDIATORS = {channel: [f"d_{proxies[0]}"] for channel, proxies in MECHANISMS.items()}


# ----------------------------------------------------------------------- groups


def test_one_hot_columns_are_summed_into_their_original_column() -> None:
    encoded = ["a=x", "a=y", "b"]
    groups = modifier_groups(encoded, {"a": ["a=x", "a=y"], "b": ["b"], "w": ["w"]})
    assert groups == {"a": ["a=x", "a=y"], "b": ["b"]}
    values = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    summed = sum_groups(values, encoded, groups)
    assert list(summed.columns) == ["a", "b"]
    np.testing.assert_allclose(summed["a"], [3.0, -0.5])
    np.testing.assert_allclose(summed.sum(axis=1), values.sum(axis=1))


def test_group_errors() -> None:
    with pytest.raises(ValueError, match="belongs to both"):
        modifier_groups(["a"], {"x": ["a"], "y": ["a"]})
    with pytest.raises(ValueError, match=r"must have shape \(n, 2\)"):
        sum_groups(np.ones((3, 3)), ["a", "b"], {"a": ["a"]})
    with pytest.raises(ValueError, match="unknown encoded columns"):
        sum_groups(np.ones((3, 2)), ["a", "b"], {"a": ["a", "c"]})


# ----------------------------------------------------------------------- linear


def test_linear_shap_is_exact_and_sums_to_the_centred_effect() -> None:
    rng = np.random.default_rng(0)
    coef = np.array([0.5, -1.0, 0.0])
    x, background = rng.normal(size=(20, 3)), rng.normal(size=(50, 3))
    values = linear_shap(coef, x, background)
    np.testing.assert_allclose(values[:, 0], 0.5 * (x[:, 0] - background[:, 0].mean()))
    np.testing.assert_allclose(values.sum(axis=1), x @ coef - (background @ coef).mean())


def test_linear_errors() -> None:
    with pytest.raises(TypeError, match="has no `coef_`"):
        linear_coefficients(object(), 2)
    with pytest.raises(ValueError, match="uses a featurizer"):
        linear_coefficients(SimpleNamespace(coef_=np.ones(2), featurizer=object()), 2)
    with pytest.raises(ValueError, match="one entry per feature"):
        linear_coefficients(SimpleNamespace(coef_=np.ones(3), featurizer=None), 2)
    with pytest.raises(ValueError, match="one column per coefficient"):
        linear_shap(np.ones(2), np.ones((4, 3)), np.ones((5, 3)))


def test_effect_coefficients_recover_a_linear_effect_and_refuse_others() -> None:
    coef = np.array([0.4, -0.1, 0.0])
    np.testing.assert_allclose(effect_coefficients(lambda a: 2.0 + a @ coef, 3), coef, atol=1e-12)
    with pytest.raises(ValueError, match="not linear in the modifiers"):
        effect_coefficients(lambda a: np.tanh(a[:, 0]), 3)


def test_permutation_shap_is_exact_for_an_additive_function() -> None:
    rng = np.random.default_rng(1)
    coef = np.array([0.3, -0.2, 0.1, 0.0])
    x, background = rng.normal(size=(4, 4)), rng.normal(size=(10, 4))
    values, base = permutation_shap(lambda a: a @ coef, x, background, max_evals=20, random_state=0)
    np.testing.assert_allclose(values, linear_shap(coef, x, background), atol=1e-10)
    np.testing.assert_allclose(base, (background @ coef).mean())
    with pytest.raises(ValueError, match="same columns"):
        permutation_shap(lambda a: a @ coef, x, background[:, :3])


def test_method_resolution() -> None:
    linear = SimpleNamespace(coef_=np.ones(2), featurizer=None)
    assert resolve_method("auto", "linear_dml", linear) == "linear"
    assert resolve_method("auto", "causal_forest_dml", object()) == "tree_surrogate"
    assert resolve_method("auto", "dr_learner", object()) == "linear"
    assert resolve_method("auto", "orthoiv", SimpleNamespace(featurizer=object())) == "permutation"
    assert resolve_method("permutation", "linear_dml", linear) == "permutation"
    with pytest.raises(ValueError, match="must be one of auto"):
        resolve_method("kernel", "linear_dml", linear)


# -------------------------------------------------------------------- surrogate


def test_surrogate_is_faithful_and_its_shap_values_add_up() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 3))

    def effect(a: np.ndarray) -> np.ndarray:
        return 0.3 * a[:, 0] + 0.2 * np.tanh(2 * a[:, 1])

    surrogate = fit_surrogate(effect, x, random_state=0)
    assert surrogate.fidelity_r2 > 0.95
    assert surrogate.n_fit + surrogate.n_holdout == 3000
    values, base = surrogate.shap_values(x[:200])
    np.testing.assert_allclose(values.sum(axis=1) + base, surrogate.model.predict(x[:200]))
    # additive truth: each feature's SHAP tracks its own term, the null feature stays near 0
    assert np.corrcoef(values[:, 0], 0.3 * x[:200, 0])[0, 1] > 0.98
    assert np.abs(values[:, 2]).mean() < 0.1 * np.abs(values[:, 0]).mean()


def test_surrogate_errors() -> None:
    x = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.raises(ValueError, match=r"`holdout` must be in \(0, 0.5\)"):
        fit_surrogate(lambda a: a[:, 0], x, holdout=0.7)
    with pytest.raises(ValueError, match="at least 50 rows"):
        fit_surrogate(lambda a: a[:, 0], x[:10])
    with pytest.raises(ValueError, match="unknown LightGBM keys"):
        fit_surrogate(lambda a: a[:, 0], x, params={"n_trees_typo": 3})
    assert r_squared(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 1.0


# ---------------------------------------------------------------------- channels


def test_channel_contributions_sum_the_proxies() -> None:
    shap = pd.DataFrame({"k1": [1.0, -2.0], "k2": [0.5, 0.5], "s": [3.0, 0.0]})
    contrib = channel_contributions(shap, {"knowledge": ["k1", "k2"], "supply": ["s"]})
    assert list(contrib.columns) == ["knowledge", "supply"]
    np.testing.assert_allclose(contrib["knowledge"], [1.5, -1.5])
    with pytest.raises(ValueError, match=r"`roles\.mechanisms` is empty"):
        channel_contributions(pd.DataFrame({"a": [1.0]}), {})
    with pytest.raises(ValueError, match=r"roles.mechanisms.x: proxies \['zz'\] have no SHAP"):
        channel_contributions(pd.DataFrame({"a": [1.0]}), {"x": ["zz"]})
    with pytest.raises(ValueError, match="`size` must be an int >= 1"):
        sample_rows(10, 0, 0)


# -------------------------------------------------------------- folds and refits


def test_cluster_folds_keep_clusters_whole_and_balance_the_folds() -> None:
    clusters = np.repeat(np.arange(30), np.arange(1, 31))  # sizes 1..30, 465 units
    folds = cluster_folds(clusters, random_state=0)
    assert set(folds) == {0, 1, 2}
    assert (pd.Series(folds).groupby(clusters).nunique() == 1).all()
    loads = np.bincount(folds)
    assert loads.max() - loads.min() <= 30  # greedy: within the largest cluster
    np.testing.assert_array_equal(folds, cluster_folds(clusters, random_state=0))
    with pytest.raises(ValueError, match="`n_folds` must be an int >= 2; got 1"):
        cluster_folds(clusters, 0, n_folds=1)
    with pytest.raises(ValueError, match=r"needs at least 6 clusters .* the data have 5"):
        cluster_folds(np.arange(5), 0)


def test_refit_rows_are_whole_clusters_up_to_the_cap() -> None:
    clusters = np.repeat(np.arange(60), 10)
    folds = cluster_folds(clusters, random_state=1)
    full = refit_rows(folds, clusters, None, 0)
    for fold, rows in enumerate(full):
        np.testing.assert_array_equal(rows, np.flatnonzero(folds == fold))
    capped = refit_rows(folds, clusters, 90, 0)  # 30 units per fold model
    for fold, rows in enumerate(capped):
        assert set(folds[rows]) == {fold}
        assert 30 <= len(rows) < 30 + 10
        sizes = pd.Series(clusters[rows]).value_counts()
        assert (sizes == 10).all()  # every drawn cluster whole


def test_partner_models_are_the_two_other_folds() -> None:
    first, second = partner_models(np.array([0, 1, 2]))
    np.testing.assert_array_equal(first, [1, 0, 0])
    np.testing.assert_array_equal(second, [2, 2, 1])
    with pytest.raises(ValueError, match=r"fold codes must be in 0\.\.2"):
        partner_models(np.array([0, 3]))
    with pytest.raises(ValueError, match="need exactly 3 folds; got 4"):
        partner_models(np.array([0]), n_folds=4)


def _linear_model(coef: np.ndarray, intercept: float) -> SimpleNamespace:
    return SimpleNamespace(
        coef_=coef, featurizer=None, effect=lambda a: np.asarray(a) @ coef + intercept
    )


def _folded_frame(n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return x, cluster_folds(np.repeat(np.arange(n // 20), 20), random_state=2)


def test_each_unit_is_explained_only_by_the_two_models_without_its_fold() -> None:
    x, folds = _folded_frame()
    coefs = [np.array([1e6, 1e6, 1e6]), np.array([0.3, 0.0, 0.1]), np.array([0.2, 0.1, 0.0])]
    models = [_linear_model(c, 0.5) for c in coefs]
    rows, background = np.arange(len(x)), np.arange(100)
    groups = {"a": ["a"], "b": ["b"], "c": ["c"]}
    explained = explain_across_folds(
        "m", "linear_dml", models, folds, x, rows, background, np.arange(len(x)), groups
    )
    pair = explained.pair
    assert explained.method == "linear" and pair is not None
    own = folds[rows]
    # fold 0's model (huge coefficients) never explains a unit of fold 0
    assert explained.values[own == 0].abs().to_numpy().max() < 10
    assert explained.values[own != 0].abs().to_numpy().max() > 1e3
    centred = x - x.iloc[background].mean()
    unit = int(np.flatnonzero(own == 0)[0])  # explained by models 1 and 2
    np.testing.assert_allclose(pair.first.iloc[unit], coefs[1] * centred.iloc[unit])
    np.testing.assert_allclose(pair.second.iloc[unit], coefs[2] * centred.iloc[unit])
    np.testing.assert_allclose(
        explained.values.iloc[unit], (coefs[1] + coefs[2]) / 2 * centred.iloc[unit]
    )
    np.testing.assert_allclose(pair.first_prediction[unit], x.iloc[unit] @ coefs[1] + 0.5)
    assert explained.fidelity_r2 == 1.0
    with pytest.raises(ValueError, match="`models` must hold 3 fold models; got 2"):
        explain_across_folds("m", "linear_dml", models[:2], folds, x, rows, background, rows, {})
    with pytest.raises(ValueError, match="`folds` must have one entry per row of `x`"):
        explain_across_folds("m", "linear_dml", models, folds[:5], x, rows, background, rows, {})


@pytest.fixture(scope="module")
def small_data() -> tuple[pd.DataFrame, Roles, AnalysisData]:
    table = make_synthetic_table(SyntheticTableConfig(n_units=1200, n_clusters=40), random_state=5)
    roles = Roles(**BASE_ROLES, mechanisms=MECHANISMS, mediators=MEDIATORS)
    return table.frame, roles, build_analysis_data(table.frame, roles)


def _cache(data: AnalysisData) -> NuisanceCache:
    return NuisanceCache(
        x=data.x.to_numpy(dtype=np.float64),
        xw=data.xw.to_numpy(dtype=np.float64),
        y=np.asarray(data.y, dtype=np.float64),
        t=np.asarray(data.t, dtype=np.float64),
        clusters=data.clusters,
        config=NuisanceConfig(model="ridge"),
        random_state=0,
    )


def test_final_stage_refits_the_registry_kind_on_the_rows(
    small_data: tuple[pd.DataFrame, Roles, AnalysisData],
) -> None:
    _, _, data = small_data
    cache = _cache(data)
    rows = np.flatnonzero(data.clusters < 20)
    forest = FinalStage(
        "causal_forest_dml", CausalForestDMLParams(n_estimators=40, cv=2), cache
    ).fit(rows, max_trees=18, random_state=1)
    assert forest.n_estimators == 16 and len(forest.trees_) == 16  # 18 rounded to groups of 4
    assert set(forest.cluster_labels_) == set(data.clusters[rows])
    linear = FinalStage("linear_dml", LinearDMLParams(cv=2), cache).fit(rows)
    # LinearDML's final stage: OLS of the outcome residual on the treatment residual x [1, X]
    nu = cache.continuous(2)
    design = nu.t_res[rows, None] * np.hstack([np.ones((len(rows), 1)), cache.x[rows]])
    beta = np.linalg.lstsq(design, nu.y_res[rows], rcond=None)[0]
    np.testing.assert_allclose(linear.coef_, beta[1:], atol=1e-8)
    np.testing.assert_allclose(linear.intercept_, beta[0], atol=1e-8)
    result = SimpleNamespace(label="ldml", kind="linear_dml", params=LinearDMLParams())
    bare = SimpleNamespace(label="x", kind="linear_dml")
    stages = final_stages(SimpleNamespace(cache=cache, estimators=[result, bare]))
    assert list(stages) == ["ldml"] and stages["ldml"].cache is cache
    assert final_stages(SimpleNamespace(estimators=[result])) == {}


# ----------------------------------------------------------------- importance


def test_importance_scores_are_centred_products_plus_the_correction() -> None:
    rng = np.random.default_rng(5)
    n = 300
    folds = np.repeat([0, 1, 2], 100)
    phi = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(2.0, 1.0, size=n)})
    prediction = rng.normal(size=n)
    before = phi.copy()
    psi = importance_scores(phi, phi, prediction, prediction, prediction, folds)
    centred = phi - phi.groupby(folds).transform("mean")
    np.testing.assert_allclose(psi.to_numpy(), (centred**2).to_numpy())
    pd.testing.assert_frame_equal(phi, before)  # inputs untouched
    residual = rng.normal(size=n)
    psi = importance_scores(phi, phi, prediction, prediction, prediction + residual, folds)
    expected = centred**2 + 2 * centred.mul(residual, axis=0)
    np.testing.assert_allclose(psi.to_numpy(), expected.to_numpy())


def test_products_of_independent_estimates_are_unbiased_where_squares_are_not() -> None:
    """phi ~ N(0, 1) estimated twice with independent N(0, 0.5^2) errors: the mean product
    estimates Var(phi) = 1, the mean square 1.25. SE of the product mean: sqrt(2.5625 / n)."""
    rng = np.random.default_rng(6)
    n = 100_000
    phi = rng.normal(size=n)
    first = pd.DataFrame({"c": phi + rng.normal(0, 0.5, n)})
    second = pd.DataFrame({"c": phi + rng.normal(0, 0.5, n)})
    zero = np.zeros(n)
    folds = np.zeros(n, dtype=int)
    product = importance_scores(first, second, zero, zero, zero, folds)["c"].mean()
    square = importance_scores(first, first, zero, zero, zero, folds)["c"].mean()
    se = np.sqrt(2.5625 / n)
    assert abs(product - 1.0) < 4 * se
    assert square - 1.0 > 0.25 - 4 * se


def test_importance_scores_errors() -> None:
    a = pd.DataFrame({"c": [1.0, 2.0]})
    ones = np.ones(2)
    with pytest.raises(ValueError, match="must have the same columns and rows"):
        importance_scores(a, a.rename(columns={"c": "d"}), ones, ones, ones, ones)
    with pytest.raises(ValueError, match=r"`pseudo_outcome` must have shape \(2,\)"):
        importance_scores(a, a, ones, ones, np.ones(3), ones)
    with pytest.raises(ValueError, match="must be finite"):
        importance_scores(a, a, ones, ones, np.array([1.0, np.nan]), ones)


def test_fieller_interval_solves_its_defining_equation() -> None:
    num, den, var_num, cov, var_den, q = 1.0, 2.0, 0.04, 0.005, 0.01, 1.96
    low, high = fieller_interval(num, den, var_num, cov, var_den, q)
    assert low < num / den < high
    for s in (low, high):
        gap = (num - s * den) ** 2 - q**2 * (var_num - 2 * s * cov + s**2 * var_den)
        assert gap == pytest.approx(0.0, abs=1e-12)
    assert fieller_interval(1.0, 0.1, 0.04, 0.0, 0.01, 1.96) == (0.0, 1.0)  # den not significant
    assert fieller_interval(-1.0, 2.0, 0.0001, 0.0, 0.0001, 1.96) == (0.0, 0.0)  # clipped


def test_cluster_covariance_is_cr1_with_equal_clusters() -> None:
    rng = np.random.default_rng(9)
    clusters = np.repeat(np.arange(12), 5)
    values = rng.normal(size=(60, 2))
    cov, df = cluster_covariance(values, clusters)
    sums = pd.DataFrame(values - values.mean(axis=0)).groupby(clusters).sum().to_numpy()
    np.testing.assert_allclose(cov, 12 / 11 * sums.T @ sums / 60**2)
    assert df == pytest.approx(11.0)


def test_cluster_covariance_matches_the_general_cr2_formulas() -> None:
    """Unequal clusters: Bell-McCaffrey's (I - H_gg)^(-1/2) adjustment and Imbens-Kolesar's
    degrees of freedom computed with full matrices for the OLS fit on a constant."""
    rng = np.random.default_rng(10)
    sizes = [2, 4, 6, 8, 10]
    clusters = np.repeat(np.arange(5), sizes)
    n = len(clusters)
    values = rng.normal(size=(n, 1))
    cov, df = cluster_covariance(values, clusters)
    hat = np.full((n, n), 1.0 / n)
    residual = values[:, 0] - values.mean()
    variance, columns = 0.0, []
    for g in range(5):
        rows = np.flatnonzero(clusters == g)
        block = np.eye(len(rows)) - hat[np.ix_(rows, rows)]
        eigval, eigvec = np.linalg.eigh(block)
        adjust = eigvec @ np.diag(eigval**-0.5) @ eigvec.T
        variance += (np.ones(len(rows)) @ adjust @ residual[rows] / n) ** 2
        columns.append((np.eye(n) - hat)[:, rows] @ adjust @ np.ones(len(rows)) / n)
    gram = np.column_stack(columns).T @ np.column_stack(columns)
    eig = np.linalg.eigvalsh(gram)
    assert cov[0, 0] == pytest.approx(variance)
    assert df == pytest.approx(eig.sum() ** 2 / (eig**2).sum())
    with pytest.raises(ValueError, match="need at least 2 clusters; got 1"):
        cluster_covariance(values, np.zeros(n))
    with pytest.raises(ValueError, match="`clusters` must have one entry per unit"):
        cluster_covariance(values, clusters[:3])


def test_importance_table_means_cr2_errors_and_fieller_intervals() -> None:
    rng = np.random.default_rng(7)
    clusters = np.repeat(np.arange(40), rng.integers(10, 40, size=40))
    n = len(clusters)
    shock = rng.normal(size=(40, 2))[clusters]
    psi = pd.DataFrame(
        {"big": 1.0 + shock[:, 0] + rng.normal(size=n), "small": 0.3 + rng.normal(size=n)}
    )
    table = importance_table(psi, clusters, ci_level=0.95)
    assert list(table.columns) == IMPORTANCE_COLUMNS
    cov, df = cluster_covariance(psi.to_numpy(), clusters)
    assert df < 39  # unequal clusters: fewer than G - 1
    for j, name in enumerate(psi.columns):
        assert table.loc[name, "importance"] == pytest.approx(psi[name].mean())
        assert table.loc[name, "importance_se"] == pytest.approx(np.sqrt(cov[j, j]))
        t = psi[name].mean() / np.sqrt(cov[j, j])
        assert table.loc[name, "p_value"] == pytest.approx(stats.t.sf(t, df=df))
    total = psi.mean().sum()
    np.testing.assert_allclose(table["share"], psi.mean() / total)
    q = stats.t.ppf(0.975, df)
    low, high = fieller_interval(psi["small"].mean(), total, cov[1, 1], cov[1].sum(), cov.sum(), q)
    assert (table.loc["small", "ci_low"], table.loc["small", "ci_high"]) == pytest.approx(
        (low, high)
    )
    assert ((table["ci_low"] <= table["share"]) & (table["share"] <= table["ci_high"])).all()
    flat = importance_table(psi - psi.mean() - 0.01, clusters)  # total <= 0
    assert flat["share"].isna().all() and (flat["ci_low"] == 0).all()
    assert (flat["ci_high"] == 1).all()
    with pytest.raises(ValueError, match=r"`ci_level` must be in \(0.5, 1\)"):
        importance_table(psi, clusters, ci_level=0.3)
    with pytest.raises(ValueError, match="at least one unit and one column"):
        importance_table(psi.iloc[:0], clusters[:0])
    with pytest.raises(ValueError, match="need at least 2 clusters; got 1"):
        importance_table(psi, np.zeros(n))


def _explanation_pair(n: int = 600) -> tuple[ShapExplanation, np.ndarray, np.ndarray]:
    """A cross-fold explanation with known channel variances: k1+k2 (var 1.25), s (0.25)."""
    rng = np.random.default_rng(8)
    true = pd.DataFrame(
        {"k1": rng.normal(0, 1.0, n), "k2": rng.normal(0, 0.5, n), "s": rng.normal(0, 0.5, n)}
    )
    clusters = np.repeat(np.arange(n // 10), 10)
    folds = cluster_folds(clusters, random_state=0)
    first = true + rng.normal(0, 0.05, true.shape)
    second = true + rng.normal(0, 0.05, true.shape)
    tau = 0.5 + true.sum(axis=1).to_numpy()
    pair = HonestPair(folds, first, second, tau.copy(), tau.copy())
    explanation = ShapExplanation(
        "m", "linear", np.arange(n), (first + second) / 2, 0.5, 1.0, 10, 0.0, pair=pair
    )
    return explanation, tau + rng.normal(0, 0.1, n), clusters


def test_channel_shares_estimate_the_variance_shares() -> None:
    explanation, scores, clusters = _explanation_pair()
    mechanisms = {"knowledge": ["k1", "k2"], "supply": ["s"]}
    table = channel_shares(explanation, mechanisms, scores, clusters).table
    assert list(table.columns) == SHARE_COLUMNS
    assert table["share"].sum() == pytest.approx(1.0)
    # true shares 1.25 / 1.5 and 0.25 / 1.5 in the population; the sample is close
    contributions = channel_contributions(explanation.values, mechanisms)
    assert table.set_index("channel")["mean_abs_shap"].to_dict() == pytest.approx(
        contributions.abs().mean().to_dict()
    )
    for row in table.itertuples():
        assert row.ci_low <= row.share <= row.ci_high
    low, high = table.loc[table["channel"] == "knowledge", ["ci_low", "ci_high"]].iloc[0]
    assert low < 1.25 / 1.5 < high
    single = ShapExplanation("m", "linear", np.arange(3), explanation.values.iloc[:3], 0, 1, 1, 0)
    with pytest.raises(ValueError, match="channel shares need a cross-fold explanation"):
        channel_shares(single, mechanisms, np.zeros(3), np.arange(3))
    with pytest.raises(ValueError, match=r"`ci_level` must be in \(0.5, 1\)"):
        channel_shares(explanation, mechanisms, scores, clusters, ci_level=0.3)
    with pytest.raises(ValueError, match="`clusters` must have one entry per unit"):
        channel_shares(explanation, mechanisms, scores, clusters[:5])
    with pytest.raises(ValueError, match="`pseudo_outcome` must have one entry per unit"):
        channel_shares(explanation, mechanisms, scores[:5], clusters)


def test_channel_shares_by_type() -> None:
    explanation, scores, clusters = _explanation_pair()
    mechanisms = {"knowledge": ["k1", "k2"], "supply": ["s"]}
    labels = np.where(clusters % 3 == 0, "SOE", "private")
    labels[clusters == 1] = "foreign"  # a level with a single cluster
    types = pd.DataFrame({"ownership": labels})
    table = channel_shares_by_type(explanation, mechanisms, types, scores, clusters).table
    assert list(table.columns[:4]) == ["dimension", "level", "n", "n_clusters"]
    assert set(table["level"]) == {"SOE", "private", "foreign"}
    ok = table[table["level"] != "foreign"]
    assert ok.groupby("level")["share"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    assert table.loc[table["level"] == "SOE", "n"].iloc[0] == (labels == "SOE").sum()
    assert table.loc[table["level"] == "foreign", "share"].isna().all()
    with pytest.raises(ValueError, match="`firm_types` must have one row per unit"):
        channel_shares_by_type(explanation, mechanisms, types.iloc[:10], scores, clusters)


def test_true_channel_shares_are_variance_shares() -> None:
    shap = pd.DataFrame(
        {"x": [1.0, -1.0, 1.0, -1.0], "y": [0.5, 0.5, -0.5, -0.5], "z": [0.0, 0.0, 0.0, 0.0]},
        index=["u1", "u2", "u3", "u4"],
    )
    truth = Truth(
        units=np.array(["u1", "u2", "u3", "u4"]),
        tau=np.zeros(4),
        shap=shap,
        mechanisms={"a": ["x"], "b": ["y", "z"], "none": ["z"]},
    )
    np.testing.assert_allclose(truth.channel_importance().to_numpy(), [1.0, 0.25, 0.0])
    np.testing.assert_allclose(truth.channel_shares().to_numpy(), [0.8, 0.2, 0.0])
    np.testing.assert_allclose(
        truth.channel_shares(np.array(["u1", "u3"])).to_numpy(), [0.0, 1.0, 0.0]
    )


def _projection_truth(tau_of: object, rng: np.random.Generator) -> tuple[Truth, pd.DataFrame]:
    n = 4000
    units = np.array([f"u{i}" for i in range(n)])
    x = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.uniform(-1, 1, size=n), "k=1": rng.integers(0, 2, n)},
        index=units,
    ).astype(float)
    tau, shap = tau_of(x)  # type: ignore[operator]
    mechanisms = {"A": ["a"], "B": ["b"], "K": ["k"]}
    return Truth(units=units, tau=tau, shap=shap.set_axis(units), mechanisms=mechanisms), x


def test_linear_projection_shares_equal_true_shares_for_a_linear_effect() -> None:
    def linear(x: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        parts = pd.DataFrame({"a": 2.0 * x["a"], "b": -1.0 * x["b"], "k": 0.5 * x["k=1"]})
        return 1.0 + parts.sum(axis=1).to_numpy(), parts - parts.mean()

    truth, x = _projection_truth(linear, np.random.default_rng(0))
    groups = {"a": ["a"], "b": ["b"], "k": ["k=1"]}
    projected = truth.linear_projection_shares(x, groups)
    np.testing.assert_allclose(projected.to_numpy(), truth.channel_shares().to_numpy(), atol=1e-10)


def test_linear_projection_shares_miss_a_symmetric_curvature() -> None:
    # tau = a + b^2 with b symmetric on [-1, 1]: the projection of b^2 on (a, b) is ~flat,
    # so channel B carries about no share of the projection although it carries 4/49 of
    # the true variance (Var a = 1, Var b^2 = 4/45)
    def curved(x: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        parts = pd.DataFrame({"a": x["a"], "b": x["b"] ** 2, "k": 0.0 * x["k=1"]})
        return parts.sum(axis=1).to_numpy(), parts - parts.mean()

    truth, x = _projection_truth(curved, np.random.default_rng(1))
    projected = truth.linear_projection_shares(x, {"a": ["a"], "b": ["b"], "k": ["k=1"]})
    assert truth.channel_shares()["B"] == pytest.approx(4 / 45 / (1 + 4 / 45), rel=0.1)
    assert projected["B"] < 0.005 and projected["A"] > 0.99


def test_share_intervals_are_labelled_and_withheld_for_smoothed_effects() -> None:
    table = pd.DataFrame({"channel": ["A"], "share": [0.4], "ci_low": [0.2], "ci_high": [0.6],
                          "share_se": [0.1], "p_value": [0.01]})  # fmt: skip
    assert share_interval_label("linear", print_smoothed=False) == LINEAR_PROJECTION
    assert share_interval_label("tree_surrogate", print_smoothed=True) == SMOOTHED
    for method in ("tree_surrogate", "permutation"):
        assert share_interval_label(method, print_smoothed=False) == WITHHELD
    withheld = label_share_intervals(table, WITHHELD)
    assert withheld[["ci_low", "ci_high", "share_se"]].isna().all().all()
    assert withheld[["share", "p_value"]].equals(table[["share", "p_value"]])
    printed = label_share_intervals(table, LINEAR_PROJECTION)
    assert printed.drop(columns="interval").equals(table)
    assert (printed["interval"] == LINEAR_PROJECTION).all()


# -------------------------------------------------------------------- mechanisms


@pytest.fixture(scope="module")
def small_table() -> tuple[pd.DataFrame, Roles]:
    table = make_synthetic_table(SyntheticTableConfig(n_units=1200, n_clusters=40), random_state=5)
    roles = Roles(**BASE_ROLES, mechanisms=MECHANISMS, mediators=MEDIATORS)
    return table.frame, roles


def test_mechanism_tests_return_one_row_per_mediator_and_group(
    small_table: tuple[pd.DataFrame, Roles],
) -> None:
    frame, roles = small_table
    data = build_analysis_data(frame, roles)
    ridge = NuisanceConfig(model="ridge")
    estimates = mechanism_tests(
        frame, {"knowledge": ["d_knowledge_spillover"]}, data, ridge, cv=3, by_firm_type=True
    )
    overall = [e for e in estimates if e.dimension == "all"]
    assert len(overall) == 1 and estimates[0] is overall[0]
    assert overall[0].ci_low < overall[0].estimate < overall[0].ci_high
    assert overall[0].n == 1200 and overall[0].n_clusters == 40
    levels = {(e.dimension, e.level) for e in estimates[1:]}
    assert ("ownership", "SOE") in levels and len(levels) == 15
    # both orthogonal scores estimate the same effect; with a well-specified (linear)
    # learner they differ by much less than one standard error
    other = mechanism_tests(
        frame, {"knowledge": ["d_knowledge_spillover"]}, data, ridge, cv=3, score="partialling_out"
    )[0]
    assert abs(other.estimate - overall[0].estimate) < 0.5 * overall[0].se


def test_mechanism_tests_on_at_most_max_units_whole_clusters(
    small_table: tuple[pd.DataFrame, Roles],
) -> None:
    frame, roles = small_table
    data = build_analysis_data(frame, roles)
    ridge = NuisanceConfig(model="ridge")
    capped = mechanism_tests(
        frame, {"knowledge": ["d_knowledge_spillover"]}, data, ridge, cv=3, max_units=500
    )[0]
    largest_city = int(pd.Series(data.clusters).value_counts().max())
    assert 500 <= capped.n < 500 + largest_city  # whole cities until 500 firms
    assert capped.n_clusters < 40


def test_a_mediator_with_missing_values_is_estimated_on_its_complete_cases(
    small_table: tuple[pd.DataFrame, Roles],
) -> None:
    """Missing at random: the estimate equals the one on the observed firms alone (same
    folds on the same firms), and a complete mediator in the same call keeps every firm."""
    frame, roles = small_table
    data = build_analysis_data(frame, roles)
    ridge = NuisanceConfig(model="ridge")
    observed = np.random.default_rng(0).random(len(frame)) > 0.2
    holes = frame.assign(d_congestion=frame["d_congestion"].where(observed))
    mediators = {"congestion": ["d_congestion"], "knowledge": ["d_knowledge_spillover"]}
    with_holes, complete = mechanism_tests(holes, mediators, data, ridge, cv=3)
    assert with_holes.n == observed.sum() and complete.n == len(frame)
    alone = mechanism_tests(
        frame[observed].reset_index(drop=True),
        {"congestion": ["d_congestion"]},
        subset(data, observed),
        ridge,
        cv=3,
    )[0]
    # the same firms and folds for the mediator's regressions; only the treatment
    # residuals differ (cross-fitted on all firms here): far less than one SE apart
    assert abs(with_holes.estimate - alone.estimate) < 0.25 * alone.se
    assert with_holes.se == pytest.approx(alone.se, rel=0.1)


def test_repeated_cross_fitting_takes_the_median_split_and_adds_the_spread(
    small_table: tuple[pd.DataFrame, Roles],
) -> None:
    """n_rep splits: the median of the single splits at seeds r, r + 1, r + 2 and the SE
    sqrt(median(se_r^2 + (theta_r - median)^2)) (Chernozhukov et al. 2018, 3.4)."""
    frame, roles = small_table
    data = build_analysis_data(frame, roles)
    lgbm = NuisanceConfig(n_jobs=1)
    mediators = {"knowledge": ["d_knowledge_spillover"]}
    singles = [
        mechanism_tests(frame, mediators, data, lgbm, cv=3, random_state=7 + r, n_rep=1)[0]
        for r in range(3)
    ]
    theta = np.array([e.estimate for e in singles])
    assert np.ptp(theta) > 0  # the splits differ: LightGBM sees other folds
    repeated = mechanism_tests(frame, mediators, data, lgbm, cv=3, random_state=7, n_rep=3)[0]
    se = np.sqrt(np.median([e.se**2 + (e.estimate - np.median(theta)) ** 2 for e in singles]))
    assert repeated.estimate == pytest.approx(np.median(theta))
    assert repeated.se == pytest.approx(se)
    assert repeated.se >= np.median([e.se for e in singles])
    assert repeated.ci_low == pytest.approx(
        repeated.estimate - (singles[0].estimate - singles[0].ci_low) / singles[0].se * se
    )
    with pytest.raises(ValueError, match="`n_rep` must be an int >= 1 or 'auto'"):
        mechanism_tests(frame, mediators, data, lgbm, cv=3, n_rep=0)
    # auto: three splits on this small sample (the default), one on large ones
    default = mechanism_tests(frame, mediators, data, lgbm, cv=3, random_state=7)[0]
    assert default == repeated
    assert resolve_splits("auto", AUTO_SPLITS_MAX_UNITS) == 3
    assert resolve_splits("auto", AUTO_SPLITS_MAX_UNITS + 1) == 1
    assert resolve_splits(2, 10**6) == 2
    with pytest.raises(ValueError, match="at least one split"):
        median_over_splits([])


def test_mechanism_errors(small_table: tuple[pd.DataFrame, Roles]) -> None:
    frame, roles = small_table
    data = build_analysis_data(frame, roles)
    ridge = NuisanceConfig(model="ridge")
    with pytest.raises(ValueError, match="`cv` must be an int >= 2"):
        mechanism_tests(frame, MEDIATORS, data, ridge, cv=1)
    with pytest.raises(ValueError, match="`score` must be one of iv_type, partialling_out"):
        mechanism_tests(frame, MEDIATORS, data, ridge, cv=2, score="ols")
    with pytest.raises(ValueError, match="column 'nope' is not in the data"):
        mechanism_tests(frame, {"k": ["nope"]}, data, ridge, cv=2)
    with pytest.raises(ValueError, match="is also a modifier or control"):
        mechanism_tests(frame, {"k": ["congestion"]}, data, ridge, cv=2)
    with pytest.raises(ValueError, match="column 'city' must be numeric"):
        mechanism_tests(frame, {"k": ["city"]}, data, ridge, cv=2)
    infinite = frame.assign(
        d_congestion=frame["d_congestion"].replace(frame["d_congestion"].iloc[0], np.inf)
    )
    with pytest.raises(ValueError, match="column 'd_congestion' has infinite values"):
        mechanism_tests(infinite, {"k": ["d_congestion"]}, data, ridge, cv=2)
    empty = frame.assign(d_congestion=np.nan)
    with pytest.raises(ValueError, match="'d_congestion' is missing for every firm"):
        mechanism_tests(empty, {"k": ["d_congestion"]}, data, ridge, cv=2)
    one_city = frame.assign(
        d_congestion=frame["d_congestion"].where(data.clusters == data.clusters[0])
    )
    with pytest.raises(ValueError, match="observed in 1 clusters, fewer than the 2 folds"):
        mechanism_tests(one_city, {"k": ["d_congestion"]}, data, ridge, cv=2)
    with pytest.raises(ValueError, match="the table has 10 rows"):
        mechanism_tests(frame.iloc[:10], {"k": ["d_congestion"]}, data, ridge, cv=2)
    with pytest.raises(ValueError, match="treatment residuals are all zero"):
        partial_out_effect(np.ones(4), np.zeros(4), np.array([0, 0, 1, 1]))


def test_explain_effect_rejects_bad_rows(small_table: tuple[pd.DataFrame, Roles]) -> None:
    frame, roles = small_table
    data = build_analysis_data(frame, roles)
    model = SimpleNamespace(coef_=np.ones(data.x.shape[1]), featurizer=None)
    with pytest.raises(ValueError, match="`explain_rows` must be non-empty row indices"):
        explain_effect(
            "m", "linear_dml", model, data.x, np.array([5000]), np.arange(10), data.units, {}
        )


# ------------------------------------------------------------ config and bundle


def test_attribution_config_is_validated(tmp_path: Path) -> None:
    raw = small_config(tmp_path)
    raw["attribution"] = {"n_units": 5}
    with pytest.raises(Exception, match="n_units"):
        validate_config(raw)
    raw["attribution"] = {"methd": "linear"}
    with pytest.raises(Exception, match="methd"):
        validate_config(raw)
    raw["attribution"] = {"refit_trees": 4}
    with pytest.raises(Exception, match="refit_trees"):
        validate_config(raw)
    raw["attribution"] = {"n_bootstrap": 200}  # the share intervals no longer bootstrap
    with pytest.raises(Exception, match="n_bootstrap"):
        validate_config(raw)
    raw["attribution"] = {"method": "linear", "mechanisms": {"cv": 3}, "refit_units": None}
    assert validate_config(raw).attribution.mechanisms.cv == 3
    assert validate_config(raw).attribution.refit_units is None


def test_a_missing_mediator_column_is_named_before_fitting(
    small_table: tuple[pd.DataFrame, Roles],
) -> None:
    from vaer.data.validation import DataValidationError, validate_table

    frame, roles = small_table
    bad = Roles(**{**roles.model_dump(), "mediators": {"export_cost": ["d_export_cots"]}})
    with pytest.raises(
        DataValidationError, match=r"roles\.mediators\.export_cost: column 'd_export_cots'"
    ):
        validate_table(frame, bad)


def test_bundle_round_trips_parquet_tables(tmp_path: Path) -> None:
    values = pd.DataFrame({"estimator": ["a", "a"], "unit": ["F1", "F2"], "ownership": [0.1, -0.2]})
    bundle = ReportBundle(
        tables={"ate": pd.DataFrame({"x": [1.0]}), "shap_values": values},
        meta={"run_id": "r"},
        parquet=frozenset({"shap_values"}),
    )
    written = bundle.write(tmp_path)
    assert tmp_path / "tables" / "shap_values.parquet" in written
    assert not (tmp_path / "tables" / "shap_values.csv").exists()
    back = ReportBundle.read(tmp_path)
    pd.testing.assert_frame_equal(back.tables["shap_values"], values)
    assert back.parquet == frozenset({"shap_values"})
