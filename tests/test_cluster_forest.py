"""The cluster forest: subsampling, honesty and out-of-bag estimates by cluster, and its
bootstrap-of-little-bags variance checked against known truth."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from vaer.config.estimators import CausalForestDMLParams
from vaer.estimators import cluster_forest
from vaer.estimators.cluster_forest import (
    ClusterForest,
    causal_moments,
    iv_moments,
    regression_moments,
)
from vaer.estimators.fit import _forest_note


def _clustered(
    seed: int, n: int = 3000, n_clusters: int = 60, city_sd: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residual-scale data with city shocks in the treatment and the outcome and a smooth
    effect ``tau(x) = 0.5 + 0.3 x0 + 0.2 tanh(2 x1)``."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, n_clusters, n)
    x = rng.normal(size=(n, 4))
    tau = 0.5 + 0.3 * x[:, 0] + 0.2 * np.tanh(2 * x[:, 1])
    t_res = 0.5 * rng.normal(size=n_clusters)[city] + rng.normal(size=n)
    y_res = tau * t_res + city_sd * rng.normal(size=n_clusters)[city] + rng.normal(size=n)
    return x, y_res, t_res, city, tau


@pytest.fixture(scope="module")
def fitted() -> tuple[ClusterForest, np.ndarray, np.ndarray, np.ndarray]:
    x, y_res, t_res, city, tau = _clustered(0)
    forest = ClusterForest(80, random_state=0).fit(x, causal_moments(y_res, t_res), city)
    return forest, x, city, tau


def test_half_samples_are_balanced_and_trees_honest_by_cluster() -> None:
    forest = ClusterForest(40, max_samples=0.4, max_subsample_size=None, random_state=1)
    codes = np.repeat(np.arange(50), 10)
    half = np.arange(25)
    grow, estimate = forest._tree_rows(codes, half, 50, np.random.default_rng(0))
    grow_clusters, estimate_clusters = set(codes[grow]), set(codes[estimate])
    assert not grow_clusters & estimate_clusters  # honesty by cluster
    assert grow_clusters | estimate_clusters <= set(half)  # within the group's half
    assert len(grow_clusters) + len(estimate_clusters) == 20  # 40% of 50 clusters
    # whole clusters: every unit of a drawn cluster is in
    assert len(grow) + len(estimate) == 200
    forest.max_subsample_size = 50
    grow, estimate = forest._tree_rows(codes, half, 50, np.random.default_rng(0))
    assert len(grow) + len(estimate) <= 51


def test_each_cluster_is_out_of_bag_in_half_of_the_groups(fitted) -> None:  # type: ignore[no-untyped-def]
    forest = fitted[0]
    assert forest.in_half_.shape == (20, 60)
    np.testing.assert_array_equal(forest.in_half_.sum(axis=0), np.full(60, 10))
    np.testing.assert_array_equal(forest.in_half_[0::2], ~forest.in_half_[1::2])


def test_out_of_bag_estimates_never_use_the_units_cluster() -> None:
    """A huge effect planted in one city moves every in-bag prediction near its firms but
    none of that city's own out-of-bag estimates."""
    x, y_res, t_res, city, tau = _clustered(2)
    planted = city == 0
    y_res = y_res + planted * 50.0 * t_res
    forest = ClusterForest(80, random_state=0).fit(x, causal_moments(y_res, t_res), city)
    oob, _ = forest.oob_predict_and_var(x[planted], city[planted])
    in_bag = forest.predict(x[planted])
    assert np.max(np.abs(oob - tau[planted])) < 1.0
    assert np.mean(in_bag - tau[planted]) > 1.0


def test_blocks_give_the_same_numbers_as_one_pass(fitted, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    forest, x, city, _ = fitted
    whole = forest.oob_predict_and_var(x, city)
    monkeypatch.setattr(cluster_forest, "ROWS_PER_BLOCK", 37)
    parts = forest.oob_predict_and_var(x, city)
    np.testing.assert_allclose(parts[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(parts[1], whole[1], rtol=1e-12)


def test_threads_change_nothing() -> None:
    x, y_res, t_res, city, _ = _clustered(3, n=1500, n_clusters=30)
    moments = causal_moments(y_res, t_res)
    one, two = (
        ClusterForest(40, random_state=5, n_jobs=jobs).fit(x, moments, city) for jobs in (1, 2)
    )
    np.testing.assert_array_equal(one.predict_and_var(x)[1], two.predict_and_var(x)[1])


@pytest.mark.statistical
def test_intervals_cover_the_true_effect() -> None:
    """Pointwise 95% intervals, averaged over firms and 3 draws with city shocks: 0.95 if
    the variance is right and the bias small (a smooth effect in 4 features, 3,000 firms).
    Firms of one draw share its errors, so the tolerance is wide: [0.88, 0.99]."""
    coverage = []
    for seed in range(3):
        x, y_res, t_res, city, tau = _clustered(10 + seed)
        forest = ClusterForest(200, random_state=seed).fit(x, causal_moments(y_res, t_res), city)
        point, variance = forest.oob_predict_and_var(x, city)
        coverage.append(np.mean(np.abs(point - tau) <= 1.96 * np.sqrt(variance)))
    assert 0.88 <= np.mean(coverage) <= 0.99


@pytest.mark.statistical
def test_variance_matches_the_spread_over_draws() -> None:
    """The little-bags variance at fixed points against the variance of the estimates over
    20 independent draws: the ratio of the two SDs lies in [0.7, 1.4] (the SD over 20
    draws has a relative error of about 16%)."""
    rng = np.random.default_rng(7)
    points = rng.normal(size=(25, 4)) * 0.7
    estimates, variances = [], []
    for seed in range(20):
        x, y_res, t_res, city, _ = _clustered(100 + seed, n=2000, n_clusters=50)
        forest = ClusterForest(120, random_state=seed).fit(x, causal_moments(y_res, t_res), city)
        point, variance = forest.predict_and_var(points)
        estimates.append(point)
        variances.append(variance)
    ratio = np.sqrt(np.mean(variances, axis=0)) / np.std(estimates, axis=0, ddof=1)
    assert 0.7 <= float(np.median(ratio)) <= 1.4


def test_linear_base_recovers_a_linear_effect_in_many_features() -> None:
    """An effect linear in 12 features: each group's base finds the slopes, and the forest
    with the base beats the forest without it."""
    rng = np.random.default_rng(4)
    n, city = 4000, rng.integers(0, 80, 4000)
    x = rng.normal(size=(n, 12))
    slopes = np.linspace(-0.3, 0.3, 12)
    tau = 0.5 + x @ slopes
    t_res = rng.normal(size=n)
    y_res = tau * t_res + rng.normal(size=n)
    moments = causal_moments(y_res, t_res)
    errors = {}
    for base in (False, True):
        forest = ClusterForest(80, linear_base=base, random_state=0).fit(x, moments, city)
        errors[base] = float(np.sqrt(np.mean((forest.oob_predict_and_var(x, city)[0] - tau) ** 2)))
    # the least-squares SE of each slope is about 1 / sqrt(4000) = 0.016: 4 SE
    np.testing.assert_allclose(forest.bases_[:, 1:].mean(axis=0), slopes, atol=0.065)
    assert errors[True] < 0.5 * errors[False]


@pytest.mark.parametrize(
    ("effect", "base"),
    [("linear", True), ("step", False)],
)
def test_auto_base_keeps_the_forest_with_the_smaller_out_of_bag_loss(
    effect: str, base: bool
) -> None:
    """``linear_base="auto"`` grows both forests on the same draws and keeps the one whose
    cluster-honest out-of-bag R-loss is smaller: the base for an effect linear in 12
    features (R-loss 1.00 vs 1.15 on such draws), none for a step in one feature."""
    rng = np.random.default_rng(6)
    n, city = 4000, rng.integers(0, 80, 4000)
    x = rng.normal(size=(n, 12))
    linear, step = 0.5 + x @ np.linspace(-0.3, 0.3, 12), 0.5 + 1.0 * (x[:, 0] > 0)
    tau = linear if effect == "linear" else step
    t_res = rng.normal(size=n)
    moments = causal_moments(tau * t_res + rng.normal(size=n), t_res)
    auto = ClusterForest(40, linear_base="auto", random_state=0).fit(x, moments, city)
    assert auto.base_used_ is base
    assert (auto.oob_losses_[True] < auto.oob_losses_[False]) is base
    fixed = ClusterForest(40, linear_base=base, random_state=0).fit(x, moments, city)
    np.testing.assert_array_equal(auto.predict_and_var(x[:50]), fixed.predict_and_var(x[:50]))
    tau_hat = auto.oob_predict_and_var(x, city)[0]
    # the out-of-bag estimates the choice computed are kept, not computed again
    np.testing.assert_array_equal(auto.oob_[0], tau_hat)
    np.testing.assert_array_equal(auto.oob_[1], auto.oob_predict_and_var(x, city)[1])
    assert fixed.oob_ is None
    # the kept forest's out-of-bag R-loss is the one recorded
    assert moments.loss(tau_hat, np.arange(n)) == pytest.approx(auto.oob_losses_[base])


def test_auto_base_above_the_cap_chooses_on_the_first_quarter_of_the_groups() -> None:
    """Above the cap (the loss rows a subsample), each way's loss is that of the forest of
    the first groups alone (2 * (20 // 8) = 4 of 20 here), and the kept forest is the whole
    fixed-base forest of the choice: the pilot's draws are the first groups' draws."""
    rng = np.random.default_rng(7)
    n, city = 4000, rng.integers(0, 80, 4000)
    x = rng.normal(size=(n, 6))
    t_res = rng.normal(size=n)
    moments = causal_moments(
        (0.5 + 0.3 * x[:, 1] + (x[:, 0] > 0)) * t_res + rng.normal(size=n), t_res
    )
    capped = {"max_subsample_size": 1000, "random_state": 0}
    auto = ClusterForest(80, linear_base="auto", **capped).fit(x, moments, city)
    rows = auto._loss_rows(n)
    assert len(rows) == 2000 and auto.oob_ is None
    for base in (False, True):
        pilot = ClusterForest(16, linear_base=base, **capped).fit(x, moments, city)
        effect = pilot.oob_predict_and_var(x[rows], city[rows])[0]
        assert moments.loss(effect, rows) == pytest.approx(auto.oob_losses_[base], rel=1e-12)
    assert auto.loss_groups_ == 4
    assert "R-loss of the forests of the first 4 of its 20 tree groups" in _forest_note(auto, True)
    fixed = ClusterForest(80, linear_base=auto.base_used_, **capped).fit(x, moments, city)
    assert len(auto.trees_) == 80 and auto.in_half_.shape == (20, 80)
    np.testing.assert_array_equal(auto.bases_, fixed.bases_)
    np.testing.assert_array_equal(auto.predict_and_var(x[:50]), fixed.predict_and_var(x[:50]))
    np.testing.assert_array_equal(
        auto.oob_predict_and_var(x, city)[0], fixed.oob_predict_and_var(x, city)[0]
    )


def test_auto_base_keeps_the_base_of_an_iv_forest() -> None:
    """An IV moment has no loss to compare: the forest keeps its base and records none."""
    x, y_res, t_res, city, _ = _clustered(1, n=1000, n_clusters=20)
    z_res = t_res + np.random.default_rng(1).normal(size=1000)
    forest = ClusterForest(8, linear_base="auto").fit(x, iv_moments(y_res, t_res, z_res), city)
    assert forest.base_used_ and forest.oob_losses_ == {}
    assert np.any(forest.bases_ != 0)


def test_iv_and_regression_moments_recover_their_targets() -> None:
    rng = np.random.default_rng(5)
    n, city = 3000, rng.integers(0, 60, 3000)
    x = rng.normal(size=(n, 3))
    tau = 1.0 + 0.5 * (x[:, 0] > 0)
    z = rng.normal(size=n)
    hidden = rng.normal(size=n)
    t = z + hidden + rng.normal(size=n)
    y = tau * t + 2 * hidden + rng.normal(size=n)  # t is confounded; z is not
    iv = ClusterForest(80, random_state=0).fit(x, iv_moments(y, t, z), city)
    plain = ClusterForest(80, random_state=0).fit(x, causal_moments(y, t), city)
    assert np.mean(np.abs(iv.predict(x) - tau)) < 0.25
    assert np.mean(plain.predict(x) - tau) > 0.4  # the confounded forest is biased
    regression = ClusterForest(80, random_state=0).fit(x, regression_moments(tau), city)
    assert np.mean(np.abs(regression.predict(x) - tau)) < 0.05  # a noiseless step


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"ci_group_size": 1}, r"`ci_group_size` must be an int >= 2; got 1"),
        ({"n_estimators": 4}, r"multiple of `ci_group_size` \(4\) giving at least 2 groups"),
        ({"n_estimators": 42}, r"got 42"),
        ({"max_samples": 0.7}, r"`max_samples` must be in \(0, 0.5\]; got 0.7"),
        ({"linear_base": "yes"}, r"`linear_base` must be True, False or 'auto'; got 'yes'"),
    ],
)
def test_bad_forest_params(params: dict, match: str) -> None:
    x, y_res, t_res, city, _ = _clustered(0, n=200, n_clusters=10)
    with pytest.raises(ValueError, match=match):
        ClusterForest(**{"n_estimators": 8, **params}).fit(x, causal_moments(y_res, t_res), city)


def test_bad_inputs_are_named(fitted) -> None:  # type: ignore[no-untyped-def]
    forest, x, _city, _ = fitted
    moments = causal_moments(np.ones(20), np.ones(20))
    with pytest.raises(ValueError, match=r"at least 4 clusters; got 3"):
        ClusterForest(8).fit(np.ones((20, 2)), moments, np.arange(20) % 3)
    with pytest.raises(ValueError, match=r"must have the same rows"):
        ClusterForest(8).fit(np.ones((19, 2)), moments, np.arange(20) % 5)
    with pytest.raises(ValueError, match=r"`X` must be finite"):
        ClusterForest(8).fit(np.full((20, 2), np.nan), moments, np.arange(20) % 5)
    with pytest.raises(ValueError, match=r"`t_res` must be finite"):
        causal_moments(np.ones(3), np.array([1.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match=r"`y_res` must be 1-d"):
        causal_moments(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match=r"not fitted yet"):
        ClusterForest().predict(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"`X` must have 4 columns; got shape \(2, 3\)"):
        forest.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"labels the forest was not fitted on"):
        forest.oob_predict_and_var(x[:2], np.array([999, 0]))
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 1\); got 1.5"):
        forest.effect_interval(x[:2], alpha=1.5)


def test_forest_params_need_whole_groups_of_trees() -> None:
    with pytest.raises(ValidationError, match=r"multiple of `ci_group_size` \(4\)"):
        CausalForestDMLParams(n_estimators=42)
    assert CausalForestDMLParams(n_estimators=42, ci_group_size=2).n_estimators == 42


def test_forest_params_choose_the_base_by_default() -> None:
    assert CausalForestDMLParams().linear_base == "auto"
    assert CausalForestDMLParams(linear_base=False).linear_base is False
    with pytest.raises(ValidationError, match=r"linear_base"):
        CausalForestDMLParams(linear_base="sometimes")
