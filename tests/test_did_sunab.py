"""Sun-Abraham event study (vaer.did.sunab) against Callaway-Sant'Anna (vaer.did.att_gt),
an OLS with dummies (statsmodels) and the simulated truth; the plain TWFE event study's
bias under heterogeneous dynamic effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from vaer.did import CellOptions, PanelColumns, aggregate, att_gt
from vaer.did.simulate import simulate_staggered
from vaer.did.sunab import sun_abraham
from vaer.did.twfe import twfe_event_study

COLUMNS = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


def _cs_dynamic(frame: pd.DataFrame, base_period: str = "universal") -> pd.Series:
    cells = att_gt(
        frame, COLUMNS, options=CellOptions(control_group="never", base_period=base_period)
    )
    dynamic = aggregate(cells, "dynamic")
    return pd.Series(dynamic.estimate, index=dynamic.keys)


def test_on_a_balanced_panel_sa_equals_cs_with_never_treated_and_a_universal_base() -> None:
    """Theory (Sun and Abraham 2021, section 4; the module docstring): each interaction
    coefficient is the cohort's mean change from g - 1 minus the never treated's, CS's
    ATT(g, g + l) with the universal base, and both weight cohorts by their shares. Exact up
    to the fixed-effects solver's tolerance; after adoption the varying base agrees too."""
    frame, _ = simulate_staggered(3000, 40, random_state=3)
    study = sun_abraham(frame, COLUMNS)
    assert study.control == "never"
    universal = _cs_dynamic(frame).drop(index=-1)  # the reference, 0 by construction
    np.testing.assert_array_equal(study.keys, universal.index)
    np.testing.assert_allclose(study.estimate, universal.to_numpy(), atol=1e-7)
    varying = _cs_dynamic(frame, "varying")
    post = study.keys >= 0
    np.testing.assert_allclose(study.estimate[post], varying[study.keys[post]], atol=1e-7)
    cells = att_gt(frame, COLUMNS, options=CellOptions(base_period="universal"))
    by_cell = pd.Series(cells.att, index=pd.MultiIndex.from_arrays([cells.group, cells.event_time]))
    sa_cells = study.cells.set_index(["group", "event_time"])["estimate"]
    np.testing.assert_allclose(sa_cells, by_cell[sa_cells.index], atol=1e-7)
    # the weights are the cohorts' shares at each event time
    assert study.cells.groupby("event_time")["weight"].sum().to_numpy() == pytest.approx(1.0)


def test_on_an_unbalanced_panel_sa_and_cs_agree_closely() -> None:
    """With entry and exit the two use different firm-years (the regression all of them,
    CS each cell's firms observed in both years), so they agree only approximately: within
    a quarter of a standard error here."""
    frame, _ = simulate_staggered(3000, 40, random_state=8, unbalanced=True)
    study = sun_abraham(frame, COLUMNS)
    varying = _cs_dynamic(frame, "varying")
    post = study.keys >= 0
    gap = np.abs(study.estimate[post] - varying[study.keys[post]].to_numpy())
    assert (gap < 0.25 * study.se[post]).all(), gap / study.se[post]


def test_sa_recovers_the_truth_where_the_plain_twfe_event_study_is_biased() -> None:
    """Effects grow with time since adoption and differ by cohort (tau(g, e) = (1 + 0.3 e)
    (1 + 0.25 rank)); with little noise SA's event-time effects sit on the truth (the
    sample-share weighted tau, 0 before adoption) while the pooled TWFE leads and lags
    mix other event times in: its earliest leads are far below 0 (about -0.3)."""
    frame, truth = simulate_staggered(
        4000, 60, random_state=5, trend=0.0, cluster_sd=0.05, noise_sd=0.1
    )
    study = sun_abraham(frame, COLUMNS)
    plain = twfe_event_study(frame, COLUMNS)
    size = frame.drop_duplicates("firm")["cohort"].value_counts()

    def true_effect(e: int) -> float:
        cohorts = [g for g in truth.cohorts if g + e in truth.periods]
        weights = np.array([size[g] for g in cohorts], dtype=float)
        return float(weights @ [truth.tau(g, g + e) for g in cohorts] / weights.sum())

    expected = np.array([true_effect(int(e)) for e in study.keys])
    # SA: within 4 SEs of the truth at every event time (the firm-level effect varies
    # around tau, so the sample truth is not exactly tau)
    assert (np.abs(study.estimate - expected) < 4 * study.se).all()
    np.testing.assert_array_equal(plain.keys, study.keys)
    plain_error = np.abs(plain.estimate - expected)
    assert plain_error.max() > 0.25 and plain_error.max() > 5 * plain.se[plain_error.argmax()]
    assert plain_error.max() > 4 * np.abs(study.estimate - expected).max()


def test_the_delta_method_ses_equal_ols_with_interaction_dummies() -> None:
    frame, _ = simulate_staggered(240, 16, random_state=11, unbalanced=True)
    study = sun_abraham(frame, COLUMNS)
    cells = study.cells
    relative = frame["year"] - frame["cohort"]
    regressors = pd.DataFrame(
        {
            f"g{g}e{e}": ((frame["cohort"] == g) & (relative == e)).astype(float)
            for g, e in zip(cells["group"], cells["event_time"], strict=True)
        }
    )
    dummies = pd.get_dummies(frame[["firm", "year"]].astype(str), drop_first=True, dtype=float)
    fit = sm.OLS(frame["y"], sm.add_constant(pd.concat([regressors, dummies], axis=1))).fit(
        cov_type="cluster", cov_kwds={"groups": frame["city"], "use_correction": False}
    )
    n, g = len(frame), frame["city"].nunique()
    k = regressors.shape[1] + frame["year"].nunique()  # firm effects nested in cities
    vcov = fit.cov_params().loc[regressors.columns, regressors.columns].to_numpy()
    vcov = vcov * g / (g - 1) * (n - 1) / (n - k)
    np.testing.assert_allclose(cells["estimate"], fit.params[regressors.columns], atol=1e-6)
    for row, event in enumerate(study.keys):
        weights = np.where(cells["event_time"] == event, cells["weight"], 0.0)
        assert study.estimate[row] == pytest.approx(
            weights @ fit.params[regressors.columns], abs=1e-6
        )
        assert study.se[row] == pytest.approx(np.sqrt(weights @ vcov @ weights), abs=1e-6)


def test_without_never_treated_the_last_cohort_is_the_comparison() -> None:
    """Equals CS with never-treated controls on the panel cut before the last cohort adopts,
    with that cohort relabelled never treated."""
    frame, _ = simulate_staggered(3000, 40, cohorts=(2013, 2015, 2017), random_state=6)
    treated = frame[frame["cohort"] > 0]
    study = sun_abraham(treated, COLUMNS)
    assert study.control == "last"
    cut = treated[treated["year"] < 2017]
    cut = cut.assign(cohort=cut["cohort"].replace(2017, 0))
    expected = _cs_dynamic(cut).drop(index=-1)
    np.testing.assert_array_equal(study.keys, expected.index)
    np.testing.assert_allclose(study.estimate, expected.to_numpy(), atol=1e-7)
    with pytest.raises(ValueError, match="needs never-treated"):
        sun_abraham(treated, COLUMNS, control="never")
    with pytest.raises(ValueError, match="at least two treated cohorts"):
        sun_abraham(treated[treated["cohort"] == 2013], COLUMNS)
    with pytest.raises(ValueError, match="`control` must be one of"):
        sun_abraham(treated, COLUMNS, control="notyet")  # type: ignore[arg-type]
