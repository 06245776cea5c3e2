"""dml_did by firm type (vaer.did.dml_types) and the folds that deal each arm's cities.

Exact identities: with one level, every cell, SE, df and aggregation equals dml_att_gt's;
with linear nuisances and no cross-fitting, the level estimates equal Callaway-Sant'Anna
by type (pooled nuisances) to 1e-6. Truth: the simulated types' exact ATTs within 4 SE
with cross-fitted LightGBM. Coverage and size over seeds: benchmarks/dml_did_validity.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from vaer.did import PanelColumns, aggregate
from vaer.did.aggregate import AGGREGATIONS
from vaer.did.dml_did import CrossFitting, dml_att_gt
from vaer.did.dml_types import dml_att_gt_by_type, level_indicators
from vaer.did.folds import deal_city_folds
from vaer.did.simulate import HETEROGENEOUS_TYPES, simulate_staggered
from vaer.did.type_tables import type_frames
from vaer.did.types import att_gt_by_type

ROLES = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


def _linear() -> dict[str, object]:
    return {
        "propensity_model": LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000),
        "outcome_model": LinearRegression(),
    }


@pytest.fixture(scope="module")
def typed() -> tuple[pd.DataFrame, object]:
    frame, truth = simulate_staggered(2000, 50, type_effects=HETEROGENEOUS_TYPES, random_state=11)
    frame["everyone"] = "all"
    return frame, truth


def test_one_level_equals_dml_att_gt(typed: tuple[pd.DataFrame, object]) -> None:
    frame, _ = typed
    options = {"covariates": ["x1", "x2"]}
    crossfit = CrossFitting(n_folds=3, random_state=4, **_linear())
    overall = dml_att_gt(frame, ROLES, crossfit=crossfit, **options)
    by_type = dml_att_gt_by_type(frame, ROLES, types=["everyone"], crossfit=crossfit, **options)[
        "everyone"
    ]
    assert by_type.nuisance == "crossfit"
    cells = by_type.cells["all"]
    assert cells.method == "dml"
    np.testing.assert_array_equal(cells.att, overall.att)
    np.testing.assert_allclose(cells.se, overall.se, rtol=1e-12)
    np.testing.assert_allclose(cells.df, overall.df, rtol=1e-12)
    for name in AGGREGATIONS:
        mine, theirs = by_type.aggregates["all"][name], aggregate(overall, name)
        np.testing.assert_allclose(mine.estimate, theirs.estimate, atol=1e-12)
        assert mine.overall_se == pytest.approx(theirs.overall_se, rel=1e-12)


def test_linear_nuisances_without_crossfitting_reproduce_cs_by_type(
    typed: tuple[pd.DataFrame, object],
) -> None:
    frame, _ = typed
    options = {"types": ["firm_type"], "covariates": ["x1", "x2"]}
    cs = att_gt_by_type(frame, ROLES, **options)["firm_type"]
    crossfit = CrossFitting(n_folds=1, **_linear())
    dml = dml_att_gt_by_type(frame, ROLES, crossfit=crossfit, **options)["firm_type"]
    for level in cs.levels:
        np.testing.assert_allclose(dml.cells[level].att, cs.cells[level].att, atol=1e-6)
        # the orthogonal score leaves out the linear models' estimation terms: same order
        estimated = np.isfinite(cs.cells[level].se)
        ratio = dml.cells[level].se[estimated] / cs.cells[level].se[estimated]
        assert np.all((ratio > 0.8) & (ratio < 1.25)), (level, ratio)


def test_crossfitted_lightgbm_recovers_the_types_truth(
    typed: tuple[pd.DataFrame, object],
) -> None:
    frame, truth = typed
    learners = {
        "propensity_model": LGBMClassifier(n_estimators=60, verbose=-1, n_jobs=1),
        "outcome_model": LGBMRegressor(n_estimators=60, verbose=-1, n_jobs=1),
    }
    result = dml_att_gt_by_type(
        frame, ROLES, types=["firm_type"], covariates=["x1", "x2"],
        crossfit=CrossFitting(n_folds=3, random_state=1, **learners),
    )["firm_type"]  # fmt: skip
    z = []
    for level in result.levels:
        for name in AGGREGATIONS:
            agg = result.aggregates[level][name]
            _, true = truth.type_aggregate(level, name)  # type: ignore[attr-defined]
            z.append((agg.overall_estimate - true) / agg.overall_se)
    # 12 correlated t-statistics: each within 4 SE (two-sided 4-SE tail < 1e-3 with df >= 10)
    assert np.max(np.abs(z)) < 4.0, z
    levels, tests = type_frames(result, estimator="dml_did", n_draws=100)
    assert set(levels["estimator"]) == {"dml_did"}
    simple = tests[(tests["test"] == "equality") & (tests["aggregation"] == "simple")]
    assert float(simple["p_value"].iloc[-1]) < 1e-3  # effects x0.5 / x1 / x1.5


def test_level_indicators_drop_each_dimensions_first_level() -> None:
    labels = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": ["p", "p", "q", "q"]})
    expected = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=float)
    np.testing.assert_array_equal(level_indicators(labels), expected)


def test_folds_deal_every_stratum_over_the_folds() -> None:
    rng = np.random.default_rng(0)
    n_cities, n_folds = 23, 5
    city = rng.integers(0, n_cities, 900)
    treated_cities = np.array([3, 17])  # a two-city cohort
    stratum = np.isin(city, treated_cities).astype(np.int64)
    for seed in range(20):
        folds = deal_city_folds(city, stratum, seed, n_folds)
        per_city = pd.Series(folds).groupby(city).nunique()
        assert (per_city == 1).all()  # whole cities
        counts = np.bincount(pd.Series(folds).groupby(city).first(), minlength=n_folds)
        assert counts.max() - counts.min() <= 1
        # the two treated cities never share a fold: every training set has one
        assert len({int(folds[city == c][0]) for c in treated_cities}) == 2


def test_a_two_city_cohort_is_crossfitted(typed: tuple[pd.DataFrame, object]) -> None:
    frame, _ = typed
    cities = frame.loc[frame["cohort"] == 2014, "city"].unique()
    keep = (frame["cohort"] != 2014) | frame["city"].isin(cities[:2])
    crossfit = CrossFitting(n_folds=5, **_linear())
    result = dml_att_gt(frame[keep], ROLES, crossfit=crossfit, covariates=["x1"])
    assert np.isfinite(result.att[result.group == 2014]).all()


def test_errors(typed: tuple[pd.DataFrame, object]) -> None:
    frame, _ = typed
    options = {"covariates": ["x1"]}
    with pytest.raises(ValueError, match="`n_folds` must be >= 1"):
        dml_att_gt_by_type(
            frame, ROLES, types=["firm_type"], crossfit=CrossFitting(n_folds=0, **_linear()),
            **options,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"ATT by firm_type: cells .*needs >= 51 clusters"):
        dml_att_gt_by_type(
            frame, ROLES, types=["firm_type"], crossfit=CrossFitting(n_folds=51, **_linear()),
            **options,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"`types` columns \['sector'\] are not in the data"):
        dml_att_gt_by_type(
            frame, ROLES, types=["sector"], crossfit=CrossFitting(n_folds=2, **_linear()),
            **options,
        )  # fmt: skip
