"""The synthetic firm panel: realism, exact truth for the built table, truth interface."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaer.config.models import Roles
from vaer.config.panel import SHOCK_WINDOWS, MeasuresConfig, SyntheticPanelConfig
from vaer.data.synthetic import (
    MODIFIERS,
    PANEL_ROLES,
    TYPE_COLUMNS,
    SyntheticPanel,
    make_synthetic_panel,
)
from vaer.estimators.inference import cluster_robust_mean
from vaer.measures import build_analysis_table

ROLES = Roles(**PANEL_ROLES)  # type: ignore[arg-type]
CONFIG = SyntheticPanelConfig(n_firms=3000, n_cities=60, n_industries=20)


@pytest.fixture(scope="module")
def panel() -> SyntheticPanel:
    return make_synthetic_panel(CONFIG, random_state=11)


def test_panel_looks_like_a_customs_panel(panel: SyntheticPanel) -> None:
    frame = panel.frame
    assert frame["year"].min() == 2005 and frame["year"].max() == 2022
    assert not frame.duplicated(["firm_id", "year"]).any()
    assert frame["city"].nunique() > 40 and frame["industry"].nunique() == 20
    assert (frame["exports"] >= 0).all() and (frame["exports"] == 0).mean() > 0.005
    positive = np.log(frame.loc[frame["exports"] > 0, "exports"])
    assert 7 < positive.median() < 11
    # entries and exits: not every firm spans every year
    span = frame.groupby("firm_id")["year"].agg(["min", "max"])
    assert (span["min"] > 2005).mean() > 0.2 and (span["max"] < 2022).mean() > 0.2
    assert frame["market_response"].isna().mean() == pytest.approx(0.03, abs=0.01)
    assert frame["export_cost"].notna().all()
    assert set(frame["ownership"]) == {"SOE", "private", "foreign"}
    assert set(frame["region"]) == {"east", "central", "west"}
    # pilot waves 2014-2016 raise the city ICT share
    pilots = frame.groupby("city")["pilot"].max()
    assert 0 < pilots.mean() < 0.7
    first = frame.loc[frame["pilot"] == 1].groupby("city")["year"].min()
    assert set(first) <= {2014, 2015, 2016}


def test_same_seed_same_panel_and_other_seed_differs() -> None:
    small = SyntheticPanelConfig(n_firms=300, n_cities=20)
    a = make_synthetic_panel(small, random_state=1).frame
    b = make_synthetic_panel(small, random_state=1).frame
    c = make_synthetic_panel(small, random_state=2).frame
    pd.testing.assert_frame_equal(a, b)
    assert not a["exports"].equals(c["exports"])


@pytest.mark.parametrize("shock", sorted(SHOCK_WINDOWS))
def test_default_measures_reproduce_the_generator_exactly(
    panel: SyntheticPanel, shock: str
) -> None:
    table = build_analysis_table(panel.frame, ROLES, MeasuresConfig(shock=shock)).frame
    drawn = panel.windows[shock].frame.set_index("firm_id").loc[table["firm_id"]]
    np.testing.assert_allclose(table["va_index"], drawn["va"], atol=1e-10)
    # resistance = const + g(W) + tau(X) * VA + e exactly, firm by firm
    rest = table["resilience"].to_numpy() - (
        drawn["g"] + drawn["tau"] * drawn["va"] + drawn["error"]
    )
    assert np.ptp(rest.to_numpy()) < 1e-9
    truth = panel.truth(shock, table["firm_id"].to_numpy())
    np.testing.assert_allclose(truth.tau, drawn["tau"])


def test_truth_interface_is_consistent(panel: SyntheticPanel) -> None:
    table = build_analysis_table(panel.frame, ROLES, MeasuresConfig()).frame
    units = table["firm_id"].to_numpy()
    truth = panel.truth("covid2020", units)
    assert truth.ate == pytest.approx(float(np.mean(truth.tau)))
    assert truth.ate == pytest.approx(CONFIG.ate, abs=0.05)
    shap = truth.shap_for(units[::-1])
    assert list(shap.columns) == MODIFIERS
    np.testing.assert_allclose(shap.sum(axis=1), truth.tau_for(units[::-1]) - truth.ate, atol=1e-12)
    for dimension in TYPE_COLUMNS:
        labels = table.set_index("firm_id").loc[units, dimension].to_numpy()
        expected = pd.Series(truth.tau).groupby(labels).mean()
        pd.testing.assert_series_equal(truth.gates(dimension), expected, check_names=False)
    shares = truth.channel_shares()
    assert shares.sum() == pytest.approx(1.0)
    for channel in ("market_responsiveness", "export_cost", "smart_green"):
        assert shares[channel] == 0.0
    assert truth.mediator_effects["d_smart_green"] == 0.0
    # recovery truth is recovery_ratio times the trough truth
    recovery = panel.truth("covid2020", units, weights=(0.0, 1.0))
    np.testing.assert_allclose(recovery.tau, CONFIG.recovery_ratio * truth.tau)


def test_mediator_changes_have_the_stated_effects(panel: SyntheticPanel) -> None:
    table = build_analysis_table(panel.frame, ROLES, MeasuresConfig(shock="gfc2009")).frame
    truth = panel.truth("gfc2009", table["firm_id"].to_numpy())
    design = np.column_stack(
        [np.ones(len(table)), table["va_index"], table["city_dev"], table["productivity"]]
    )
    for mediator, theta in truth.mediator_effects.items():
        ok = table[mediator].notna().to_numpy()
        coef, *_ = np.linalg.lstsq(design[ok], table.loc[ok, mediator], rcond=None)
        # OLS with the true controls; noise sd 1, n ~ 1800: SE of the slope < 0.03
        assert abs(coef[1] - theta) < 0.1, (mediator, coef[1], theta)


def test_truth_errors(panel: SyntheticPanel) -> None:
    with pytest.raises(ValueError, match=r"no truth for shock window 'sars2003'"):
        panel.truth("sars2003")
    with pytest.raises(ValueError, match=r"had no row in the pre-shock year of 'covid2020'"):
        panel.truth("covid2020", np.array([-1]))


def test_years_must_cover_the_windows() -> None:
    with pytest.raises(ValueError, match=r"must cover the shock windows \(2006-2022\)"):
        make_synthetic_panel(
            SyntheticPanelConfig(start_year=2005, end_year=2040).model_copy(
                update={"start_year": 2008}
            )
        )


def test_unobserved_confounder_biases_the_controlled_regression() -> None:
    """With gamma > 0 the truth stays the same but OLS given (W, VA) is biased upwards."""

    def slope(gamma: float) -> float:
        cfg = SyntheticPanelConfig(
            n_firms=4000, n_cities=60, heterogeneity=0.0, unobserved_confounding=gamma
        )
        data = make_synthetic_panel(cfg, random_state=5)
        table = build_analysis_table(data.frame, ROLES, MeasuresConfig()).frame
        x = np.column_stack(
            [
                np.ones(len(table)),
                table["va_index"],
                table["city_dev"],
                table["productivity"],
                np.sin(table["geo_agglom"]),
                table["firm_age"],
            ]
        )
        return float(np.linalg.lstsq(x, table["resilience"], rcond=None)[0][1])

    assert abs(slope(0.0) - 0.5) < 0.05
    assert slope(1.0) - 0.5 > 0.3


@pytest.mark.statistical
def test_pilot_instrument_gets_around_the_unobserved_confounder() -> None:
    """With gamma = 1, OLS given the true controls is biased; 2SLS with the Broadband
    China pilot as instrument covers the truth within 3 cluster-robust SEs."""
    cfg = SyntheticPanelConfig(
        n_firms=8000, n_cities=150, heterogeneity=0.0, unobserved_confounding=1.0
    )
    data = make_synthetic_panel(cfg, random_state=5)
    table = build_analysis_table(data.frame, ROLES, MeasuresConfig()).frame
    truth = data.truth("covid2020", table["firm_id"].to_numpy())
    controls = np.column_stack(
        [
            np.ones(len(table)),
            table["city_dev"],
            table["productivity"],
            np.sin(table["geo_agglom"]),
            table["firm_age"],
        ]
    )

    def residual(v: pd.Series) -> np.ndarray:
        values = v.to_numpy(dtype=np.float64)
        return values - controls @ np.linalg.lstsq(controls, values, rcond=None)[0]

    y, t, z = residual(table["resilience"]), residual(table["va_index"]), residual(table["pilot"])
    clusters = pd.factorize(table["city"])[0]
    iv = float(z @ y / (z @ t))
    iv_se = cluster_robust_mean(iv + len(y) * z * (y - iv * t) / (z @ t), clusters)
    ols = float(t @ y / (t @ t))
    ols_se = cluster_robust_mean(ols + len(y) * t * (y - ols * t) / (t @ t), clusters)
    assert abs(iv_se.estimate - truth.ate) < 3 * iv_se.se, (iv_se, truth.ate)
    assert ols_se.estimate - truth.ate > 3 * ols_se.se, (ols_se, truth.ate)


# ------------------------------------------------------- staggered pilots (DiD truth)


def _pilot_panel(**pilot: float) -> SyntheticPanel:
    return make_synthetic_panel(CONFIG.model_copy(update=pilot), random_state=11)


def test_pilot_effect_moves_only_treated_firm_years_by_exactly_the_truth(
    panel: SyntheticPanel,
) -> None:
    shifted = _pilot_panel(pilot_effect=0.2, pilot_dynamics=0.1, pilot_heterogeneity=2.0)
    assert shifted.pilot is not None and panel.pilot is not None
    assert not panel.pilot.active and shifted.pilot.active
    base, moved = panel.frame, shifted.frame
    pd.testing.assert_frame_equal(base.drop(columns="exports"), moved.drop(columns="exports"))
    assert set(base["pilot_year"]) == {0, 2014, 2015, 2016}
    delta = shifted.pilot.effect(base["firm_id"].to_numpy(), base["year"].to_numpy())
    treated = (base["pilot_year"] > 0) & (base["year"] >= base["pilot_year"])
    assert (delta[~treated.to_numpy()] == 0).all() and (delta[treated.to_numpy()] != 0).all()
    positive = base["exports"].to_numpy() > 0
    np.testing.assert_allclose(
        np.log(moved["exports"].to_numpy()[positive] / base["exports"].to_numpy()[positive]),
        delta[positive],
        atol=1e-12,
    )
    assert ((moved["exports"] == 0) == (base["exports"] == 0)).all()
    # the effect grows with years since adoption and varies by firm type
    row = treated.to_numpy()
    since = (base["year"] - base["pilot_year"]).to_numpy()[row]
    assert np.corrcoef(since, delta[row])[0, 1] > 0.3
    by_owner = pd.Series(delta[row]).groupby(base["ownership"].to_numpy()[row]).mean()
    assert by_owner["private"] > by_owner["SOE"]
    # the resilience truth is no longer exact once the pilots move exports
    assert not shifted.truth_is_exact(
        "covid2020", MeasuresConfig(), va_firm="platform", weights=(1.0, 0.0)
    )
    with pytest.raises(KeyError, match="not in the synthetic panel"):
        shifted.pilot.effect(np.array([1]), np.array([2015]))


def _two_by_two(frame: pd.DataFrame, cohort: int, before: int, after: int) -> tuple[float, float]:
    """DiD of mean log exports (cohort vs never-pilot cities, firms with positive exports in
    both years) and its cluster-robust SE (cities)."""
    wide = frame[frame["year"].isin([before, after]) & (frame["exports"] > 0)].pivot(
        index="firm_id", columns="year", values="exports"
    )
    wide = wide.dropna()
    info = frame.drop_duplicates("firm_id").set_index("firm_id").loc[wide.index]
    keep = info["pilot_year"].isin([0, cohort]).to_numpy()
    change = np.log(wide[after] / wide[before]).to_numpy()[keep]
    treated = (info["pilot_year"].to_numpy()[keep] == cohort).astype(float)
    design = np.column_stack([np.ones_like(treated), treated])
    coef, *_ = np.linalg.lstsq(design, change, rcond=None)
    resid = change - design @ coef
    bread = np.linalg.inv(design.T @ design)
    cities = info["city"].to_numpy()[keep]
    meat = sum(
        np.outer(s, s)
        for s in (design[cities == c].T @ resid[cities == c] for c in np.unique(cities))
    )
    return float(coef[1]), float(np.sqrt((bread @ meat @ bread)[1, 1]))


def test_a_two_by_two_did_recovers_the_pilot_truth_and_the_pretrend_biases_it() -> None:
    effect = _pilot_panel(pilot_effect=0.3)
    frame = effect.frame
    assert effect.pilot is not None
    post = frame[(frame["pilot_year"] == 2015) & (frame["year"] == 2017) & (frame["exports"] > 0)]
    true_att = float(
        effect.pilot.effect(post["firm_id"].to_numpy(), post["year"].to_numpy()).mean()
    )
    estimate, se = _two_by_two(frame, 2015, 2014, 2017)
    assert abs(estimate - true_att) < 4 * se, (estimate, true_att, se)
    # a pilot-city trend of 0.1 a year adds 0.3 over three years: the same DiD is biased
    trend = _pilot_panel(pilot_effect=0.3, pretrend=0.1).frame
    biased, se_b = _two_by_two(trend, 2015, 2014, 2017)
    assert abs(biased - true_att - 0.3) < 4 * se_b and biased - true_att > 2 * se_b
