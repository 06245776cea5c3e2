"""Measures on small hand-computed panels: exact values (DESIGN.md section 5)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vaer.config.models import Roles
from vaer.config.panel import MeasuresConfig, ShockWindow
from vaer.measures import build_analysis_table
from vaer.measures.expected import industry_expected, national_expected
from vaer.measures.growth import dhs_growth, growth, log_growth, window_levels
from vaer.measures.resilience import composite, martin_ratio, survival, winsorize
from vaer.measures.va_index import (
    binarise,
    city_index,
    entropy_index,
    location_quotient,
    pca_index,
)

WINDOW = ShockWindow(pre=[2000, 2001], trough=[2002], recovery=[2003])


def test_dhs_growth_exact_values_exits_entries_and_zero_bases() -> None:
    x0 = np.array([100.0, 100.0, 0.0, 0.0, 50.0])
    x1 = np.array([150.0, 0.0, 20.0, 0.0, 50.0])
    got = dhs_growth(x0, x1)
    np.testing.assert_allclose(got[:3], [50 / 125, -2.0, 2.0])
    assert math.isnan(got[3])  # 0 -> 0 is undefined
    assert got[4] == 0.0


def test_log_growth_is_undefined_for_exits_and_zero_bases() -> None:
    got = log_growth(np.array([100.0, 100.0, 0.0]), np.array([200.0, 0.0, 5.0]))
    assert got[0] == pytest.approx(math.log(2))
    assert np.isnan(got[1:]).all()


def test_growth_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"`growth` must be 'dhs' or 'log'; got 'pct'"):
        growth(np.ones(2), np.ones(2), "pct")


def _panel(rows: list[tuple[str, int, float]], **extra: dict[str, object]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["firm", "year", "exports"])
    for column, values in extra.items():
        frame[column] = frame["firm"].map(values)
    return frame


def test_window_levels_average_pre_years_present_and_count_exits_as_zero() -> None:
    panel = _panel(
        [
            ("a", 2000, 100.0),
            ("a", 2001, 300.0),
            ("a", 2002, 100.0),
            ("a", 2003, 400.0),
            ("b", 2001, 50.0),  # entrant: base is its single pre year
            ("b", 2002, 10.0),
            ("c", 2000, 80.0),
            ("c", 2001, 40.0),  # exits after 2001: trough and recovery are 0
        ]
    )
    levels = window_levels(
        panel,
        unit="firm",
        time="year",
        exports="exports",
        pre=[2000, 2001],
        trough=[2002],
        recovery=[2003],
    )
    assert levels.loc["a", "base"] == 200.0
    assert levels.loc["b", "base"] == 50.0
    assert levels.loc["c", "base"] == 60.0
    assert levels.loc["c", "trough"] == 0.0 and levels.loc["b", "recovery"] == 0.0
    assert dhs_growth(levels["base"], levels["trough"])[2] == -2.0
    assert levels["in_base_year"].all()


def test_national_and_industry_leave_one_out_expected_growth() -> None:
    x0 = np.array([100.0, 100.0, 200.0, 50.0])
    x1 = np.array([50.0, 150.0, 100.0, 80.0])
    industry = np.array(["A", "A", "A", "B"])
    assert national_expected(x0, x1, "log") == pytest.approx(math.log(380 / 450))
    assert national_expected(x0, x1, "dhs") == pytest.approx((380 - 450) / 415)
    got = industry_expected(x0, x1, industry, "dhs")
    # firm 0: rest of A has 300 -> 250; firm 1: 300 -> 150; firm 2: 200 -> 200
    np.testing.assert_allclose(got[:3], [-50 / 275, -150 / 225, 0.0])
    assert math.isnan(got[3])  # alone in its industry: no benchmark
    log = industry_expected(x0, x1, industry, "log")
    assert log[0] == pytest.approx(math.log(250 / 300))


def test_martin_ratio_survival_composite_and_winsorize() -> None:
    np.testing.assert_allclose(martin_ratio(np.array([-0.3, 0.1]), -0.2), [-0.5, 1.5])
    assert np.isnan(martin_ratio(np.array([0.1]), 0.0)).all()
    np.testing.assert_array_equal(survival(np.array([0.0, 3.0])), [0.0, 1.0])
    values, sd_res, sd_rec = composite(np.array([1.0, 3.0]), np.array([0.0, 10.0]))
    assert (sd_res, sd_rec) == (1.0, 5.0)
    np.testing.assert_allclose(values, [-1.0, 1.0])
    clipped, n = winsorize(np.arange(101, dtype=float), 0.05, 0.95)
    assert (clipped.min(), clipped.max(), n) == (5.0, 95.0, 10)


def test_composite_and_winsorize_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="the composite needs resistance and recovery that vary"):
        composite(np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"0 <= low < high <= 1; got 0.9, 0.1"):
        winsorize(np.arange(5.0), 0.9, 0.1)


def test_va_indices_on_hand_computed_cities() -> None:
    comps = pd.DataFrame({"ict": [1.0, 2.0, 3.0], "bb": [10.0, 10.0, 40.0]}, index=["x", "y", "z"])
    np.testing.assert_allclose(location_quotient(comps["ict"]), [0.5, 1.0, 1.5])
    # min-max: ict -> 0, .5, 1; bb -> 0, 0, 1. p_ict = 0, 1/3, 2/3; p_bb = 0, 0, 1
    e_ict = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(3)
    d = np.array([1 - e_ict, 1.0])
    w = d / d.sum()
    np.testing.assert_allclose(entropy_index(comps), [0.0, 0.5 * w[0], w[0] + w[1]])
    pca = pca_index(comps)
    assert pca.sum() == pytest.approx(0.0) and pca["z"] > pca["y"] > pca["x"]
    # two perfectly correlated components: PC1 is their normalised sum, centred
    twin = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [0.0, 2.0, 4.0]})
    np.testing.assert_allclose(pca_index(twin), np.array([-1.0, 0.0, 1.0]) / math.sqrt(2))
    with pytest.raises(ValueError, match="`va_index` must be 'lq', 'entropy' or 'pca'"):
        city_index(comps, "mean")
    with pytest.raises(ValueError, match="the entropy index needs at least 2 cities"):
        entropy_index(comps.iloc[:1])
    with pytest.raises(ValueError, match="positive mean share"):
        location_quotient(pd.Series([0.0, 0.0]))


def test_binarise_is_strictly_above_the_cut() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    d, cut = binarise(values, "median")  # the median itself is a unit: it stays 0
    assert cut == 4.0
    np.testing.assert_array_equal(d, [0, 0, 0, 0, 1, 1, 1])
    d, cut = binarise(values, "top_tercile")  # 2/3 quantile of 7 values is the 5th: 0
    assert cut == 5.0
    np.testing.assert_array_equal(d, [0, 0, 0, 0, 0, 1, 1])


ROLES = Roles(
    unit="firm",
    time="year",
    exports="exports",
    industry="ind",
    cluster="city",
    va_components=["ict"],
    va_firm="platform",
    outcome="resilience",
    treatment="va",
    controls=["size"],
    modifiers=["proxy"],
    mechanisms={"channel": ["proxy"]},
)


def _study_panel() -> pd.DataFrame:
    """Five firms, two cities, two industries; window 2000-01 / 2002 / 2003."""
    rows = [
        # firm a: 100, 300 -> 100 -> 400
        ("a", 2000, 100.0), ("a", 2001, 300.0), ("a", 2002, 100.0), ("a", 2003, 400.0),
        # firm b: exits after 2001 (DHS -2, log undefined)
        ("b", 2000, 50.0), ("b", 2001, 50.0),
        # firm c: zero base exports
        ("c", 2000, 0.0), ("c", 2001, 0.0), ("c", 2002, 10.0), ("c", 2003, 10.0),
        # firm d: enters in 2002 (no row in the pre-shock year)
        ("d", 2002, 30.0), ("d", 2003, 30.0),
        # firm e: 200, 200 -> 100 -> 200
        ("e", 2000, 200.0), ("e", 2001, 200.0), ("e", 2002, 100.0), ("e", 2003, 200.0),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["firm", "year", "exports"])
    meta = {
        "a": ("X", "I1", 1.0), "b": ("X", "I1", 2.0), "c": ("Y", "I2", 3.0),
        "d": ("Y", "I2", 4.0), "e": ("Y", "I1", 5.0),
    }  # fmt: skip
    frame["city"] = frame["firm"].map(lambda f: meta[f][0])
    frame["ind"] = frame["firm"].map(lambda f: meta[f][1])
    frame["size"] = frame["firm"].map(lambda f: meta[f][2])
    frame["ict"] = frame["city"].map({"X": 2.0, "Y": 6.0})
    frame["platform"] = 0.1 * frame["size"]
    frame["proxy"] = frame["year"] - 2000.0 + frame["size"]
    return frame


def test_analysis_table_dhs_national_exact_values_and_drop_counts() -> None:
    measures = MeasuresConfig(shock=WINDOW, growth="dhs", expected="national")
    table = build_analysis_table(_study_panel(), ROLES, measures)
    frame = table.frame.set_index("firm")
    assert list(frame.index) == ["a", "b", "e"]
    assert table.dropped == {"no_row_in_base_year": 1, "zero_base_exports": 1}
    assert table.panel_firms == 5
    # benchmark firms a, b, e: base 200 + 50 + 200 = 450, trough 100 + 0 + 100 = 200
    expected = (200 - 450) / 325
    g = {"a": (100 - 200) / 150, "b": -2.0, "e": (100 - 200) / 150}
    for firm, value in g.items():
        assert frame.loc[firm, "resilience"] == pytest.approx(value - expected)
    # VA: LQ of the city's ICT share at 2001 (mean over cities X, Y = 4) + platform
    assert frame.loc["a", "va"] == pytest.approx(2 / 4 + 0.1)
    assert frame.loc["e", "va"] == pytest.approx(6 / 4 + 0.5)
    # mediator: proxy at 2002 minus proxy at 2001 (NaN for the exited firm)
    assert frame.loc["a", "d_proxy"] == 1.0 and np.isnan(frame.loc["b", "d_proxy"])
    assert table.outcome_weights == (1.0, 0.0)
    counts = table.to_frame().set_index("reason")["firms"]
    assert counts.to_dict() == {"kept": 3, "no_row_in_base_year": 1, "zero_base_exports": 1}
    assert table.metrics()["data.dropped.zero_base_exports"] == 1.0


def test_analysis_table_log_growth_drops_exits_and_industry_benchmarks() -> None:
    measures = MeasuresConfig(shock=WINDOW, growth="log", expected="industry")
    table = build_analysis_table(_study_panel(), ROLES, measures)
    frame = table.frame.set_index("firm")
    assert list(frame.index) == ["a", "e"]
    assert table.dropped["undefined_growth"] == 1  # firm b exited: log growth undefined
    # industry I1 = {a, b, e}; leave-one-out for a: b + e = 250 -> 100
    assert frame.loc["a", "expected_trough"] == pytest.approx(math.log(100 / 250))
    assert frame.loc["a", "resilience"] == pytest.approx(math.log(0.5) - math.log(0.4))
    # for e: a + b = 250 -> 100 as well
    assert frame.loc["e", "resilience"] == pytest.approx(math.log(0.5) - math.log(0.4))


def test_analysis_table_recovery_ratio_survival_and_composite() -> None:
    panel = _study_panel()
    recovery = build_analysis_table(
        panel, ROLES, MeasuresConfig(shock=WINDOW, outcome="recovery", growth="log")
    ).frame.set_index("firm")
    national = math.log((400 + 0 + 200) / 450)
    assert recovery.loc["a", "resilience"] == pytest.approx(math.log(2.0) - national)
    ratio = build_analysis_table(
        panel, ROLES, MeasuresConfig(shock=WINDOW, outcome="ratio", growth="dhs")
    )
    e = (200 - 450) / 325
    assert ratio.frame.set_index("firm").loc["b", "resilience"] == pytest.approx((-2 - e) / -e)
    assert ratio.outcome_weights == (pytest.approx(1 / abs(e)), 0.0)
    alive = build_analysis_table(
        panel, ROLES, MeasuresConfig(shock=WINDOW, outcome="survival", growth="dhs")
    ).frame.set_index("firm")
    assert alive["resilience"].to_dict() == {"a": 1.0, "b": 0.0, "e": 1.0}
    comp = build_analysis_table(
        panel, ROLES, MeasuresConfig(shock=WINDOW, outcome="composite", growth="dhs")
    )
    assert comp.frame["resilience"].mean() == pytest.approx(0.0)
    assert comp.outcome_weights is not None


def test_analysis_table_binarize_and_winsorize() -> None:
    table = build_analysis_table(
        _study_panel(),
        ROLES,
        MeasuresConfig(shock=WINDOW, growth="dhs", binarize="median", winsorize=(0.5, 1.0)),
    )
    assert set(table.frame["va"]) == {0.0, 1.0}
    assert table.winsorized == 1 and table.outcome_weights is None


def test_analysis_table_counts_missing_features_by_column() -> None:
    panel = _study_panel()
    panel.loc[(panel["firm"] == "e") & (panel["year"] == 2001), "proxy"] = np.nan
    table = build_analysis_table(panel, ROLES, MeasuresConfig(shock=WINDOW, growth="dhs"))
    assert table.dropped["missing_proxy"] == 1
    assert "e" not in set(table.frame["firm"])


def test_analysis_table_errors_name_the_fix() -> None:
    panel = _study_panel()
    with pytest.raises(ValueError, match=r"needs years \[2009, 2010\] that are not in the panel"):
        build_analysis_table(
            panel,
            ROLES,
            MeasuresConfig(shock=ShockWindow(pre=[2000], trough=[2009], recovery=[2010])),
        )
    no_time = ROLES.model_copy(update={"time": None})
    with pytest.raises(ValueError, match=r"panel mode needs `roles.time`"):
        build_analysis_table(panel, no_time, MeasuresConfig(shock=WINDOW))
    no_comp = ROLES.model_copy(update={"va_components": []})
    with pytest.raises(ValueError, match=r"list them in `roles.va_components`"):
        build_analysis_table(panel, no_comp, MeasuresConfig(shock=WINDOW))
    no_city = ROLES.model_copy(update={"cluster": None})
    with pytest.raises(ValueError, match=r"needs `roles.cluster`"):
        build_analysis_table(panel, no_city, MeasuresConfig(shock=WINDOW))
    no_ind = ROLES.model_copy(update={"industry": None})
    with pytest.raises(ValueError, match=r"needs `roles.industry`"):
        build_analysis_table(panel, no_ind, MeasuresConfig(shock=WINDOW, expected="industry"))
    empty = panel.assign(exports=0.0)
    with pytest.raises(ValueError, match="no firm is left for shock window"):
        build_analysis_table(empty, ROLES, MeasuresConfig(shock=WINDOW))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shock": "sars2003"}, "shock"),
        ({"shock": {"pre": [2005], "trough": [2004], "recovery": [2006]}}, "must all come before"),
        ({"shock": {"pre": [2005], "trough": [2006], "recovery": [2006]}}, "must all come before"),
        ({"winsorize": (0.99, 0.01)}, "two quantiles 0 <= low < high <= 1"),
        ({"outcome": "speed"}, "outcome"),
    ],
)
def test_measures_config_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MeasuresConfig(**changes)  # type: ignore[arg-type]


def test_named_windows() -> None:
    covid = MeasuresConfig(shock="covid2020")
    assert covid.window.base_year == 2018 and covid.window.trough == [2020]
    assert covid.window_name == "covid2020"
    custom = MeasuresConfig(shock=WINDOW)
    assert custom.window_name == "custom2002"
