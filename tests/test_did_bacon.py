"""Goodman-Bacon decomposition (vaer.did.bacon): a two-cohort example computed by hand,
and the exact identity sum(weight * estimate) = TWFE coefficient (pyfixest) on a simulated
staggered panel with heterogeneous dynamic effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaer.did import PanelColumns
from vaer.did.bacon import bacon_decomposition
from vaer.did.simulate import simulate_staggered
from vaer.did.twfe import twfe

COLUMNS = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


def _two_cohorts() -> pd.DataFrame:
    """Periods 1-4; two firms each adopting in 2 (early), in 4 (late) and never. The early
    firms' effect grows, t - 1 in period t >= 2 (1, 2, 3); the late firms' is 2 in period
    4. Firm and year effects are added (they cancel from every 2x2)."""
    rows = []
    for firm, cohort in enumerate([2, 2, 4, 4, 0, 0]):
        for year in range(1, 5):
            effect = (year - 1.0) if cohort == 2 and year >= 2 else 0.0
            effect += 2.0 if cohort == 4 and year >= 4 else 0.0
            rows.append(
                {"firm": firm, "city": firm, "year": year, "cohort": cohort,
                 "y": 0.7 * firm - 0.3 * year**2 + effect}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_a_two_cohort_panel_decomposes_as_computed_by_hand() -> None:
    """Shares n = 1/3 each; treated shares of periods D_early = 3/4, D_late = 1/4.
    Weights before dividing by V (Goodman-Bacon 2021, eq. 10a-c):
    early vs never (2/3)^2 (1/4) (3/4)(1/4) = 1/48; late vs never (2/3)^2 (1/4) (1/4)(3/4)
    = 1/48; early vs late ((2/3)(3/4))^2 (1/4) ((1/2)/(3/4)) ((1/4)/(3/4)) = 1/72;
    late vs early ((2/3)(3/4))^2 (1/4) ((1/4)/(3/4)) ((1/2)/(3/4)) = 1/72; they sum to
    V = 5/72, so the weights are 3/10, 3/10, 1/5, 1/5.
    2x2s: early vs never: mean effect over 2-4 = 2; late vs never: 2; early vs late
    (periods 1-3): (1 + 2)/2 = 1.5; late vs early (periods 2-4): late's 2 - 0 minus
    early's change 3 - (1 + 2)/2 = 1.5: 0.5. TWFE = 0.6 + 0.6 + 0.3 + 0.1 = 1.6."""
    frame = _two_cohorts()
    result = bacon_decomposition(frame, COLUMNS)
    table = result.table.set_index(["comparison_type", "treated_cohort", "control_cohort"])
    expected = {
        ("treated_vs_never", 2, 0): (2.0, 0.3),
        ("treated_vs_never", 4, 0): (2.0, 0.3),
        ("earlier_vs_later", 2, 4): (1.5, 0.2),
        ("later_vs_earlier", 4, 2): (0.5, 0.2),
    }
    assert sorted(table.index) == sorted(expected)
    for key, (estimate, weight) in expected.items():
        assert table.loc[key, "estimate"] == pytest.approx(estimate, abs=1e-12), key
        assert table.loc[key, "weight"] == pytest.approx(weight, abs=1e-12), key
    assert result.twfe == pytest.approx(1.6, abs=1e-12)
    assert result.forbidden_weight == pytest.approx(0.2, abs=1e-12)
    assert twfe(frame, COLUMNS).estimate == pytest.approx(1.6, abs=1e-10)
    assert result.balanced and result.n_units == 6


@pytest.mark.parametrize("never", [True, False])
def test_weights_sum_to_one_and_reproduce_twfe_on_a_simulated_panel(never: bool) -> None:
    frame, _ = simulate_staggered(
        1500, 40, cohorts=(2012, 2014, 2015, 2017), random_state=4, trend=0.2
    )
    if not never:
        frame = frame[frame["cohort"] > 0]
    result = bacon_decomposition(frame, COLUMNS)
    table = result.table
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-10)
    assert (table["weight"] > 0).all()
    assert (table["weight"] * table["estimate"]).sum() == pytest.approx(result.twfe, abs=1e-10)
    fitted = twfe(frame, COLUMNS)
    assert result.twfe == pytest.approx(fitted.estimate, abs=1e-10)
    kinds = table["comparison_type"].value_counts()
    assert kinds["earlier_vs_later"] == kinds["later_vs_earlier"] == 6  # 4 cohorts: 6 pairs
    assert kinds.get("treated_vs_never", 0) == (4 if never else 0)
    # effects grow with time since adoption: the already-treated controls pull the
    # forbidden comparisons below the clean ones
    forbidden = table[table["comparison_type"] == "later_vs_earlier"]
    clean = table[table["comparison_type"] != "later_vs_earlier"]
    assert forbidden["estimate"].mean() < clean["estimate"].mean() - 0.5
    assert 0 < result.forbidden_weight < 1


def test_an_unbalanced_panel_is_decomposed_on_its_balanced_subpanel() -> None:
    frame, _ = simulate_staggered(1200, 30, random_state=2, unbalanced=True)
    result = bacon_decomposition(frame, COLUMNS)
    observed = frame.groupby("firm")["year"].count()
    full = observed.index[observed == frame["year"].nunique()]
    assert result.n_units == len(full)
    assert result.n_units_left_out == frame["firm"].nunique() - len(full) > 0
    assert result.n_rows_left_out == int((~frame["firm"].isin(full)).sum())
    assert not result.balanced
    balanced = frame[frame["firm"].isin(full)]
    assert result.twfe == pytest.approx(twfe(balanced, COLUMNS).estimate, abs=1e-10)
    assert (result.table["weight"] * result.table["estimate"]).sum() == pytest.approx(
        result.twfe, abs=1e-10
    )


def test_bad_panels_are_refused() -> None:
    frame = _two_cohorts()
    with pytest.raises(ValueError, match="always treated"):
        bacon_decomposition(frame.assign(cohort=frame["cohort"].replace(2, 1)), COLUMNS)
    with pytest.raises(ValueError, match="no unit is observed in every period"):
        bacon_decomposition(frame[frame["year"] != frame["firm"] % 4 + 1], COLUMNS)
    with pytest.raises(ValueError, match="no treated cohort"):
        bacon_decomposition(frame.assign(cohort=0), COLUMNS)
    with pytest.raises(ValueError, match=r"cohorts \[2\] are treated from the first period"):
        bacon_decomposition(frame, COLUMNS, anticipation=1)  # cohort 2 switches on in 1


def test_anticipation_shifts_the_timing_groups_and_keeps_the_cohort_labels() -> None:
    frame = _two_cohorts()
    plain = bacon_decomposition(frame, COLUMNS).table
    shifted = frame.assign(cohort=frame["cohort"].replace({2: 3, 4: 5}))
    early = bacon_decomposition(shifted, COLUMNS, anticipation=1).table
    np.testing.assert_allclose(early[["estimate", "weight"]], plain[["estimate", "weight"]])
    relabel = {0: 0, 2: 3, 4: 5}
    assert early["treated_cohort"].tolist() == plain["treated_cohort"].map(relabel).tolist()
    assert early["control_cohort"].tolist() == plain["control_cohort"].map(relabel).tolist()
