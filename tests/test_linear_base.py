"""The linear CATE the causal forest starts from (``causal_forest_dml.linear_base``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from econml.dml import CausalForestDML
from pydantic import ValidationError

from vaer.config.estimators import CausalForestDMLParams
from vaer.estimators.learners import ZeroRegressor
from vaer.estimators.linear_base import LinearBaseCausalForestDML, LinearCate, ShiftedForest
from vaer.estimators.registry import forest_kwargs, halves, oob_effect

N = 4000


def _residuals(slopes: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Residuals of a partially linear model with effect ``1 + x @ slopes``, unit noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, len(slopes)))
    t_res = rng.normal(size=N)
    y_res = t_res * (1.0 + x @ slopes) + rng.normal(size=N)
    return x, y_res, t_res, np.arange(N) % 40


def test_linear_cate_recovers_a_linear_effect() -> None:
    slopes = np.array([0.5, -0.3, 0.0, 0.0, 0.0])
    x, y_res, t_res, groups = _residuals(slopes, seed=0)
    base = LinearCate(random_state=0).fit(x, y_res, t_res, groups)
    # least squares would have SE about 1 / sqrt(N) = 0.016 per coefficient; the lasso
    # shrinks by at most its penalty, which cross-validation keeps small at this N
    assert base.b0_ == pytest.approx(1.0, abs=0.08)
    np.testing.assert_allclose(base.coefficients, slopes, atol=0.08)
    tau = 1.0 + x @ slopes
    assert np.sqrt(np.mean((base.predict(x) - tau) ** 2)) < 0.1


def test_linear_cate_keeps_a_constant_effect_flat() -> None:
    x, y_res, t_res, groups = _residuals(np.zeros(5), seed=1)
    base = LinearCate(random_state=0).fit(x, y_res, t_res, groups)
    assert base.b0_ == pytest.approx(1.0, abs=0.08)  # b0 is not shrunk
    assert np.max(np.abs(base.coefficients)) < 0.064  # 4 SE of least squares


def test_linear_cate_errors() -> None:
    x, y_res, t_res, groups = _residuals(np.zeros(2), seed=2)
    with pytest.raises(ValueError, match="not fitted"):
        LinearCate().predict(x)
    with pytest.raises(ValueError, match="not all zero"):
        LinearCate().fit(x, y_res, np.zeros(N), groups)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        LinearCate().fit(x, y_res, t_res, np.zeros(N))


def _forest(cls: type, share: float = 0.0, base: LinearCate | None = None) -> CausalForestDML:
    params = CausalForestDMLParams(n_estimators=40)
    model = cls(
        model_y=ZeroRegressor(),
        model_t=ZeroRegressor(),
        cv=halves(N),
        inference=True,
        **forest_kwargs(params, 0, N),
    )
    if base is not None:
        model.linear_base_, model.linear_base_share_ = base, share
    return model


def test_forest_on_what_the_base_leaves_plus_the_base() -> None:
    x, y_res, t_res, groups = _residuals(np.array([0.5, -0.3, 0.0]), seed=3)
    base = LinearCate(random_state=0).fit(x, y_res, t_res, groups)
    share = 0.7
    shift = share * base.predict(x)
    model = _forest(LinearBaseCausalForestDML, share, base).fit(y_res, t_res, X=x)
    plain = _forest(CausalForestDML).fit(y_res - shift * t_res, t_res, X=x)
    assert isinstance(model.model_final_, ShiftedForest)
    np.testing.assert_allclose(model.effect(x), shift + plain.effect(x), rtol=1e-12)
    np.testing.assert_allclose(oob_effect(model, x), shift + oob_effect(plain, x), rtol=1e-12)
    ours, theirs = model.effect_inference(X=x[:50]), plain.effect_inference(X=x[:50])
    np.testing.assert_allclose(ours.point_estimate, shift[:50] + theirs.point_estimate)
    np.testing.assert_allclose(ours.stderr, theirs.stderr, rtol=1e-12)
    low, high = model.effect_interval(x[:50])
    plain_low, plain_high = plain.effect_interval(x[:50])
    np.testing.assert_allclose(low, shift[:50] + plain_low, rtol=1e-12)
    np.testing.assert_allclose(high, shift[:50] + plain_high, rtol=1e-12)
    np.testing.assert_allclose(
        model.const_marginal_effect_interval(x[:50])[0].ravel(), shift[:50] + plain_low
    )
    bounds = model.model_final_.predict(x[:50], interval=True)
    plain_bounds = plain.model_final_.predict(x[:50], interval=True)
    for ours_part, theirs_part in zip(bounds, plain_bounds, strict=True):
        np.testing.assert_allclose(np.ravel(ours_part), shift[:50] + np.ravel(theirs_part))
    assert len(model.model_final_.estimators_[0].estimators_) == 40
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.effect(x[:50]), model.effect(x[:50]))


def test_without_a_base_the_forest_is_econml_s_own() -> None:
    x, y_res, t_res, _ = _residuals(np.array([0.5, 0.0]), seed=4)
    model = _forest(LinearBaseCausalForestDML).fit(y_res, t_res, X=x)
    plain = _forest(CausalForestDML).fit(y_res, t_res, X=x)
    assert not isinstance(model.model_final_, ShiftedForest)
    np.testing.assert_array_equal(model.effect(x), plain.effect(x))


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_linear_base_share_is_validated(share: float) -> None:
    with pytest.raises(ValidationError, match="linear_base"):
        CausalForestDMLParams(linear_base=share)
