"""Unit tests of the attribution package: SHAP routes, channels, mechanism tests, report."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import BASE_ROLES, small_config
from vaer.attribution import (
    channel_contributions,
    channel_shares,
    channel_shares_by_type,
    explain_effect,
    mechanism_tests,
    resolve_method,
)
from vaer.attribution.groups import modifier_groups, sum_groups
from vaer.attribution.linear import linear_coefficients, linear_shap
from vaer.attribution.mechanisms import partial_out_effect
from vaer.attribution.permutation import permutation_shap
from vaer.attribution.stage import sample_rows
from vaer.attribution.surrogate import fit_surrogate, r_squared
from vaer.config import validate_config
from vaer.config.models import NuisanceConfig, Roles, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import MECHANISMS, make_synthetic_table
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
    assert resolve_method("auto", "dr_learner", object()) == "permutation"
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


def _contributions() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    shap = pd.DataFrame(
        {"k1": rng.normal(0, 1.0, 600), "k2": rng.normal(0, 0.5, 600), "s": rng.normal(0, 0.5, 600)}
    )
    contrib = channel_contributions(shap, {"knowledge": ["k1", "k2"], "supply": ["s"]})
    return contrib, rng.integers(0, 30, 600)


def test_channel_contributions_and_shares() -> None:
    contrib, clusters = _contributions()
    assert list(contrib.columns) == ["knowledge", "supply"]
    table = channel_shares(contrib, clusters, n_bootstrap=100, random_state=0).table
    assert table["share"].sum() == pytest.approx(1.0)
    assert (table["ci_low"] <= table["share"]).all() and (table["share"] <= table["ci_high"]).all()
    expected = contrib.abs().mean() / contrib.abs().mean().sum()
    np.testing.assert_allclose(table["share"], expected.to_numpy())
    again = channel_shares(contrib, clusters, n_bootstrap=100, random_state=0).table
    pd.testing.assert_frame_equal(table, again)
    none = channel_shares(contrib, clusters, n_bootstrap=0).table
    assert none["ci_low"].isna().all()


def test_channel_shares_by_type() -> None:
    contrib, clusters = _contributions()
    types = pd.DataFrame({"ownership": np.where(np.arange(600) % 3 == 0, "SOE", "private")})
    table = channel_shares_by_type(contrib, types, clusters, n_bootstrap=50).table
    assert set(table["level"]) == {"SOE", "private"}
    assert table.groupby("level")["share"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    assert table.loc[table["level"] == "SOE", "n"].iloc[0] == 200
    with pytest.raises(ValueError, match="`firm_types` must have one row per unit"):
        channel_shares_by_type(contrib, types.iloc[:10], clusters)


def test_channel_errors() -> None:
    contrib, clusters = _contributions()
    with pytest.raises(ValueError, match=r"`roles\.mechanisms` is empty"):
        channel_contributions(pd.DataFrame({"a": [1.0]}), {})
    with pytest.raises(ValueError, match=r"roles.mechanisms.x: proxies \['zz'\] have no SHAP"):
        channel_contributions(pd.DataFrame({"a": [1.0]}), {"x": ["zz"]})
    with pytest.raises(ValueError, match="`n_bootstrap` must be an int >= 0"):
        channel_shares(contrib, clusters, n_bootstrap=-1)
    with pytest.raises(ValueError, match=r"`ci_level` must be in \(0.5, 1\)"):
        channel_shares(contrib, clusters, ci_level=0.3)
    with pytest.raises(ValueError, match="`clusters` must have one entry per unit"):
        channel_shares(contrib, clusters[:5])
    with pytest.raises(ValueError, match="`size` must be an int >= 1"):
        sample_rows(10, 0, 0)


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
    holes = frame.assign(d_congestion=frame["d_congestion"].where(frame.index > 3))
    with pytest.raises(ValueError, match="has missing or infinite values"):
        mechanism_tests(holes, {"k": ["d_congestion"]}, data, ridge, cv=2)
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
    raw["attribution"] = {"method": "linear", "mechanisms": {"cv": 3}}
    assert validate_config(raw).attribution.mechanisms.cv == 3


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
