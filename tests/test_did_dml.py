"""dml_att_gt: cross-fitted ML nuisances and the orthogonal DR-DiD score."""

from __future__ import annotations

import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from vaer.did import CellOptions, PanelColumns, aggregate, att_gt
from vaer.did.dml_did import CrossFitting, dml_att_gt
from vaer.did.simulate import simulate_staggered

ROLES = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")
LINEAR = {
    "propensity_model": LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000),
    "outcome_model": LinearRegression(),
}


@pytest.fixture(scope="module")
def staggered():
    return simulate_staggered(3000, 60, random_state=3)


@pytest.mark.parametrize("control_group", ["never", "notyet"])
def test_linear_nuisances_without_crossfitting_reproduce_cs_dr(staggered, control_group):
    frame, _ = staggered
    options = {"covariates": ["x1", "x2"], "options": CellOptions(control_group=control_group)}
    cs = att_gt(frame, ROLES, method="dr", **options)
    dml = dml_att_gt(frame, ROLES, crossfit=CrossFitting(n_folds=1, **LINEAR), **options)
    assert dml.method == "dml"
    np.testing.assert_array_equal(dml.group, cs.group)
    np.testing.assert_array_equal(dml.time, cs.time)
    np.testing.assert_allclose(dml.att, cs.att, rtol=0, atol=1e-6)
    # the orthogonal score leaves out the linear models' estimation terms: same order
    estimated = ~np.isnan(cs.se)
    ratio = dml.se[estimated] / cs.se[estimated]
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio


def test_crossfitted_lightgbm_recovers_the_truth(staggered):
    frame, truth = staggered
    learners = {
        "propensity_model": LGBMClassifier(
            n_estimators=100, learning_rate=0.05, verbose=-1, n_jobs=1
        ),
        "outcome_model": LGBMRegressor(n_estimators=100, learning_rate=0.05, verbose=-1, n_jobs=1),
    }
    crossfit = CrossFitting(n_folds=5, random_state=1, **learners)
    dml = dml_att_gt(frame, ROLES, crossfit=crossfit, covariates=["x1", "x2"])
    dynamic = aggregate(dml, "dynamic")
    for e, estimate, se in zip(dynamic.keys, dynamic.estimate, dynamic.se, strict=True):
        if e >= 0:
            assert abs(estimate - truth.dynamic(int(e))) < 4 * se, (e, estimate, se)
    naive = att_gt(frame, ROLES, method="reg")  # no covariates: the x1 trend biases it
    simple = aggregate(dml, "simple")
    naive_simple = aggregate(naive, "simple")
    assert abs(simple.overall_estimate - truth.simple()) < abs(
        naive_simple.overall_estimate - truth.simple()
    )


def test_folds_never_split_a_city(staggered):
    frame, _ = staggered
    with pytest.raises(ValueError, match="needs >= 61 clusters"):
        dml_att_gt(frame, ROLES, crossfit=CrossFitting(n_folds=61, **LINEAR), covariates=["x1"])
    with pytest.raises(ValueError, match="n_folds"):
        dml_att_gt(frame, ROLES, crossfit=CrossFitting(n_folds=0, **LINEAR), covariates=["x1"])
    with pytest.raises(ValueError, match="control_group"):
        dml_att_gt(
            frame, ROLES, crossfit=CrossFitting(**LINEAR), covariates=["x1"],
            options=CellOptions(control_group="nevr"),
        )  # fmt: skip


def test_a_fold_with_one_arm_is_refused(staggered):
    """A cohort in one city: the fold that holds it out trains on comparison firms only."""
    frame, _ = staggered
    cities = frame.loc[frame["cohort"] == 2014, "city"].unique()
    keep = (frame["cohort"] != 2014) | frame["city"].isin(cities[:1])
    with pytest.raises(ValueError, match="one arm only"):
        dml_att_gt(
            frame[keep], ROLES, crossfit=CrossFitting(n_folds=2, **LINEAR), covariates=["x1"]
        )
