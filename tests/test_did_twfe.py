"""Two-way fixed effects (vaer.did.twfe) against an independent computation: statsmodels OLS
with firm and year dummies and its cluster-robust sandwich, with the small-sample
correction written out here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from vaer.did import PanelColumns
from vaer.did.simulate import simulate_staggered
from vaer.did.twfe import twfe, twfe_event_study

COLUMNS = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


def _dummies_ols(frame: pd.DataFrame, regressors: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """OLS of y on ``regressors`` plus firm and year dummies; coefficients and SEs clustered
    by city with the correction G/(G-1) (N-1)/(N-K), K = regressors + years (the firm
    effects, nested in cities, not counted: R fixest's default)."""
    dummies = pd.get_dummies(frame[["firm", "year"]].astype(str), drop_first=True, dtype=float)
    design = sm.add_constant(pd.concat([regressors, dummies], axis=1))
    fit = sm.OLS(frame["y"], design).fit(
        cov_type="cluster", cov_kwds={"groups": frame["city"], "use_correction": False}
    )
    n, g = len(frame), frame["city"].nunique()
    k = regressors.shape[1] + frame["year"].nunique()
    factor = g / (g - 1) * (n - 1) / (n - k)
    names = list(regressors.columns)
    return fit.params[names], np.sqrt(fit.bse[names] ** 2 * factor)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    frame, _ = simulate_staggered(240, 16, random_state=11, unbalanced=True)
    return frame


def test_twfe_equals_ols_with_dummies_and_clustered_ses(panel: pd.DataFrame) -> None:
    result = twfe(panel, COLUMNS)
    treated = ((panel["cohort"] > 0) & (panel["year"] >= panel["cohort"])).astype(float)
    beta, se = _dummies_ols(panel, treated.rename("d").to_frame())
    assert result.estimate == pytest.approx(beta["d"], abs=1e-6)
    assert result.se == pytest.approx(se["d"], abs=1e-6)
    assert result.n_obs == len(panel) and result.n_clusters == 16 and result.df == 15
    low, high = result.ci
    half = stats.t.ppf(0.975, 15) * se["d"]
    assert (low, high) == pytest.approx((beta["d"] - half, beta["d"] + half), abs=1e-6)
    row = result.to_frame().iloc[0]
    assert row["aggregation"] == "simple" and bool(row["overall"]) and np.isnan(row["key"])


def test_anticipation_moves_the_treatment_switch(panel: pd.DataFrame) -> None:
    result = twfe(panel, COLUMNS, anticipation=1)
    treated = ((panel["cohort"] > 0) & (panel["year"] >= panel["cohort"] - 1)).astype(float)
    beta, se = _dummies_ols(panel, treated.rename("d").to_frame())
    assert result.estimate == pytest.approx(beta["d"], abs=1e-6)
    assert result.se == pytest.approx(se["d"], abs=1e-6)


def test_twfe_event_study_equals_ols_with_event_time_dummies(panel: pd.DataFrame) -> None:
    result = twfe_event_study(panel, COLUMNS)
    relative = np.where(panel["cohort"] > 0, panel["year"] - panel["cohort"], -1)
    keys = sorted(set(relative[panel["cohort"] > 0]) - {-1})
    regressors = pd.DataFrame({f"e{e}": (relative == e).astype(float) for e in keys})
    beta, se = _dummies_ols(panel, regressors)
    np.testing.assert_array_equal(result.keys, keys)
    np.testing.assert_allclose(result.estimate, beta.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(result.se, se.to_numpy(), atol=1e-6)


def test_bad_input_is_refused(panel: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="at least two clusters"):
        twfe(panel.assign(city=1), COLUMNS)
    with pytest.raises(ValueError, match="duplicate unit-period"):
        twfe(pd.concat([panel, panel.head(1)]), COLUMNS)
    with pytest.raises(ValueError, match="collinear"):
        twfe(panel.assign(cohort=0), COLUMNS)  # nobody treated: D is all zero
    with pytest.raises(ValueError, match="needs never-treated"):
        twfe_event_study(panel[panel["cohort"] > 0], COLUMNS)
