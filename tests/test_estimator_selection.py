"""Early stopping of the LightGBM nuisances and the choice of the causal forest."""

from __future__ import annotations

import numpy as np
import pytest
from lightgbm import LGBMRegressor
from pydantic import ValidationError
from sklearn.base import clone
from sklearn.linear_model import RidgeCV

from vaer.config.estimators import NuisanceConfig
from vaer.estimators.learners import (
    LGBM_DEFAULTS,
    EarlyStoppingClassifier,
    EarlyStoppingRegressor,
    _held_out_rows,
    make_classifier,
    make_regressor,
)


def test_default_lightgbm_nuisances_stop_early() -> None:
    assert isinstance(make_regressor(NuisanceConfig(), 0), EarlyStoppingRegressor)
    assert isinstance(make_classifier(NuisanceConfig(), 0), EarlyStoppingClassifier)
    assert isinstance(make_regressor(NuisanceConfig(early_stopping=False), 0), LGBMRegressor)
    assert isinstance(make_regressor(NuisanceConfig(model="ridge"), 0), RidgeCV)


def test_nuisance_params_reach_the_wrapped_model_and_survive_clone() -> None:
    model = make_regressor(NuisanceConfig(params={"n_estimators": 40}), 3)
    assert clone(model).estimator.get_params()["n_estimators"] == 40
    with pytest.raises(ValueError, match=r"nuisance.params: unknown keys \['depth'\]"):
        make_regressor(NuisanceConfig(params={"depth": 3}), 0)


def test_rounds_follow_the_signal() -> None:
    """Pure noise stops after a few rounds; a smooth signal uses many more."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 4))
    noise = rng.normal(size=1000)
    config = NuisanceConfig(linear_candidate=False)
    on_noise = make_regressor(config, 0).fit(x, noise)
    on_signal = make_regressor(config, 0).fit(x, 3 * np.sin(2 * x[:, 0]) + 0.3 * noise)
    assert on_noise.n_rounds_ < 60
    assert on_signal.n_rounds_ > 2 * on_noise.n_rounds_
    assert on_signal.predict(x).shape == (1000,)


def test_no_early_stopping_above_max_rows() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    model = make_regressor(NuisanceConfig(early_stopping_max_rows=100), 0).fit(
        x, rng.normal(size=500)
    )
    assert model.n_rounds_ == 300
    always = make_regressor(
        NuisanceConfig(early_stopping=True, early_stopping_max_rows=100, linear_candidate=False), 0
    )
    assert always.fit(x, rng.normal(size=500)).n_rounds_ < 300


def test_linear_candidate_wins_on_a_linear_target_only() -> None:
    """Held-out error picks ridge for a linear signal and LightGBM for a step function."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 6))
    noise = rng.normal(size=1500)
    linear = make_regressor(NuisanceConfig(), 0).fit(x, x @ np.arange(1.0, 7.0) + noise)
    assert linear.chosen_ == "linear" and linear.n_rounds_ == 0
    ridge = clone(linear.linear).fit(x, x @ np.arange(1.0, 7.0) + noise)
    assert np.allclose(linear.predict(x), ridge.predict(x))  # refitted on all rows
    step = make_regressor(NuisanceConfig(), 0).fit(x, 3.0 * (x[:, 0] > 0.5) + 0.3 * noise)
    assert step.chosen_ == "lightgbm" and step.n_rounds_ > 20
    off = make_regressor(NuisanceConfig(linear_candidate=False), 0)
    assert off.linear is None and off.fit(x, x[:, 0] + noise).chosen_ == "lightgbm"


def test_linear_candidate_of_a_classifier() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1500, 4))
    d = (x @ np.array([1.5, -1.0, 0.5, 0.0]) + rng.logistic(size=1500) > 0).astype(int)
    model = make_classifier(NuisanceConfig(), 0).fit(x, d)
    assert model.chosen_ == "linear" and list(model.classes_) == [0, 1]
    assert np.allclose(model.predict_proba(x).sum(axis=1), 1.0)


def test_classifier_probabilities() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 3))
    d = (x[:, 0] + rng.normal(size=600) > 0).astype(int)
    model = make_classifier(NuisanceConfig(), 0).fit(x, d)
    proba = model.predict_proba(x)
    assert proba.shape == (600, 2) and list(model.classes_) == [0, 1]
    assert np.allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimator": None}, r"early stopping needs an `estimator`; got None"),
        ({"validation_fraction": 0.7}, r"`validation_fraction` must be in \(0, 0.5\]; got 0.7"),
        ({"patience": 0}, r"`patience` must be an int >= 1; got 0"),
    ],
)
def test_early_stopping_bad_params(kwargs: dict, match: str) -> None:
    params = {"estimator": LGBMRegressor(n_estimators=10, verbose=-1), **kwargs}
    with pytest.raises(ValueError, match=match):
        EarlyStoppingRegressor(**params).fit(np.zeros((50, 2)), np.zeros(50))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (
            {"model": "ridge", "early_stopping": True},
            r"`early_stopping: true` needs `model: lightgbm`",
        ),
        ({"early_stopping_max_rows": 10}, r"early_stopping_max_rows"),
        ({"early_stopping": "sometimes"}, r"early_stopping"),
    ],
)
def test_bad_early_stopping_config(config: dict, match: str) -> None:
    with pytest.raises((ValueError, ValidationError), match=match):
        NuisanceConfig(**config)


def test_held_out_rows_take_whole_groups() -> None:
    groups = np.repeat(np.arange(30), 20)
    valid = _held_out_rows(len(groups), 0.2, groups, random_state=1)
    held = np.unique(groups[valid])
    assert np.isin(groups, held).sum() == len(valid)  # whole groups only
    assert 0.2 * len(groups) <= len(valid) < len(groups)
    with pytest.raises(ValueError, match=r"`groups` must have one label per row \(600\); got 5"):
        _held_out_rows(600, 0.2, np.arange(5), random_state=1)


def test_a_class_in_few_groups_keeps_training_rows() -> None:
    """A cohort of two cities (class 1) among 30: the plain draw of held-out cities can take
    both; the classifier then draws within each class and keeps one for training."""
    groups = np.repeat(np.arange(30), 20)
    label = np.isin(groups, [4, 9]).astype(int)
    takes_both = [
        s for s in range(200)
        if set(np.unique(groups[_held_out_rows(600, 0.2, groups, s)])) >= {4, 9}
    ]  # fmt: skip
    assert takes_both  # the case exists
    seed = takes_both[0]
    valid = _held_out_rows(600, 0.2, groups, seed, strata=label)
    train = np.setdiff1d(np.arange(600), valid)
    assert set(label[train]) == {0, 1} and set(label[valid]) == {0, 1}
    assert np.isin(groups, np.unique(groups[valid])).sum() == len(valid)  # whole groups
    x = np.random.default_rng(0).normal(size=(600, 2))
    model = make_classifier(NuisanceConfig(early_stopping=True), seed)
    model.set_params(random_state=seed).fit(x, label, groups=groups)  # no single-class fit
    assert model.predict_proba(x).shape == (600, 2)
    # a class of one group is never held out
    one = _held_out_rows(600, 0.2, groups, 0, strata=(groups == 7).astype(int))
    assert not np.isin(7, groups[one])


def test_early_stopping_on_held_out_cities_does_not_learn_city_noise() -> None:
    """A city-level feature lets boosted trees memorise each city's shock. Rows held out
    from the training cities reward that; whole held-out cities do not, so the grouped
    model predicts new cities at least as well and with far fewer rounds."""
    rng = np.random.default_rng(0)

    def draw(n_cities: int, per_city: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        city = np.repeat(np.arange(n_cities), per_city)
        level = rng.normal(size=n_cities)[city]  # identifies the city, no signal
        shock = rng.normal(size=n_cities)[city]
        x = np.column_stack([level, rng.normal(size=len(city))])
        return x, shock + 0.5 * x[:, 1] + rng.normal(size=len(city)), city

    x, y, city = draw(80, 40)
    x_new, y_new, _ = draw(80, 40)
    rows = EarlyStoppingRegressor(LGBMRegressor(**LGBM_DEFAULTS, random_state=0)).fit(x, y)
    grouped = EarlyStoppingRegressor(LGBMRegressor(**LGBM_DEFAULTS, random_state=0)).fit(
        x, y, groups=city
    )
    mse = {m: float(np.mean((y_new - m.predict(x_new)) ** 2)) for m in (rows, grouped)}
    assert grouped.n_rounds_ < rows.n_rounds_
    assert mse[grouped] <= mse[rows]
