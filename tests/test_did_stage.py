"""The staggered DiD stage end to end: config checks, tables, tracking, report, truth."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from vaer.config import validate_config
from vaer.config.did import DidConfig
from vaer.config.loader import ConfigError
from vaer.data.synthetic import PANEL_ROLES
from vaer.did.stage import DML_WITHHELD, dml_withheld
from vaer.pipeline import run_experiment

PANEL = {"n_firms": 3000, "n_cities": 60, "n_industries": 20}


def did_config(tmp_path: Path, **panel: Any) -> dict[str, Any]:
    """A panel run with only the estimation and DiD stages, over 2012-2018."""
    return {
        "name": "did",
        "seed": 7,
        "data": {"source": "synthetic", "mode": "panel", "panel": {**PANEL, **panel}},
        "roles": copy.deepcopy(PANEL_ROLES),
        "estimators": [{"kind": "linear_dml", "params": {"cv": 3}}],
        "heterogeneity": {"enabled": False},
        "attribution": {"enabled": False},
        "did": {"enabled": True, "first_year": 2012, "last_year": 2018, "n_boot": 199},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"},
        "report": {"out": str(tmp_path / "reports" / "{run_name}")},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"source": "synthetic", "mode": "table"}}, "needs the firm-year panel"),
        ({"roles": {"policy": None}}, "needs `roles.policy`"),
        ({"did": {"enabled": True, "first_year": 2018, "last_year": 2012}}, "must come before"),
        ({"did": {"enabled": True, "min_e": 3, "max_e": 1}}, "must not exceed"),
        ({"did": {"enabled": True, "estimators": ["twfe"]}}, "must include cs_did"),
        ({"did": {"enabled": True, "estimators": ["cs_did", "sunab"]}}, "event_study"),
        ({"did": {"enabled": True, "estimators": ["cs_did", "twfe", "twfe"]}}, "twice"),
    ],
)
def test_the_did_config_is_checked(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    raw = did_config(tmp_path)
    for key, value in change.items():
        raw[key] = {**raw[key], **value} if key == "roles" else value
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


@pytest.mark.integration
def test_a_did_run_recovers_the_pilot_effect_and_reports_it(tmp_path: Path) -> None:
    raw = did_config(tmp_path, pilot_effect=0.2)
    raw["did"]["estimators"] = ["cs_did", "twfe", "event_study"]
    result = run_experiment(validate_config(raw))
    did = result.did
    assert did is not None and did.pretrend is not None
    tables = result.out_dir / "tables"
    aggregates = pd.read_csv(tables / "did_aggregates.csv")
    assert set(aggregates["aggregation"]) == {"simple", "dynamic", "group", "calendar"}
    assert set(pd.read_csv(tables / "att_gt.csv")["group"]) == {2014, 2015, 2016}
    # every panel row is either estimated on or counted as left out, by reason
    dropped = pd.read_csv(tables / "did_dropped.csv")
    rows = dropped[dropped["step"] == "panel rows"].set_index("reason")["count"]
    assert rows["outside_years"] > 0 and rows["zero_exports"] > 0
    assert len(did.sample) + rows.sum() == result.data_summary["panel_rows"]
    # the truth (2012-2018 is outside the shock windows: exact): 4 SE tolerance
    assert result.truth is not None
    simple = did.aggregates["simple"]
    assert result.truth["did.att_gt.cells_checked"] == len(did.att_gt.att)
    assert abs(result.truth["did.simple.bias"]) < 4 * simple.overall_se
    assert result.truth["did.simple.true"] > 0.2  # the effect grows with years since adoption
    # small-cluster inference (the default): every interval and the pre-trend test are
    # printed, with t degrees of freedom; only the band over all cells is withheld
    # (did_validity: it under-covers with few adopting cities per cohort)
    cells = pd.read_csv(tables / "att_gt.csv")
    assert cells[["se", "df", "ci_low", "ci_high"]].notna().all().all()
    assert cells[["band_low", "band_high"]].isna().all().all()
    assert cells["inference"].str.startswith("band withheld").all()
    assert (cells["df"] <= did.att_gt.n_clusters).all()
    callaway = aggregates["estimator"] == "cs_did"
    overall = aggregates["overall"].astype(bool)
    assert aggregates.loc[callaway, ["se", "ci_low", "ci_high"]].notna().all().all()
    path = aggregates[callaway & (aggregates["aggregation"] == "dynamic") & ~overall]
    assert path[["band_low", "band_high"]].notna().all().all()
    assert pd.read_csv(tables / "pretrend.csv")["p_value"].notna().all()
    metrics = (
        MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        .get_run(result.run_id)
        .data.metrics
    )
    assert metrics["did.pretrend.p_value"] == pytest.approx(did.pretrend.p_value)
    assert metrics["did.simple.estimate"] == pytest.approx(simple.overall_estimate)
    assert "truth.did.simple.bias" in metrics and "time.stage.did" in metrics
    assert result.report_path is not None
    html = result.report_path.read_text(encoding="utf-8")
    assert 'id="did"' in html and "The policy (difference-in-differences)." in html
    assert "Event study" in html and "2,014" not in html
    # TWFE beside CS, its and Sun-Abraham's intervals withheld (not checked on this panel),
    # the Bacon decomposition with its left-out firms counted
    assert set(aggregates["estimator"]) == {"cs_did", "twfe", "event_study"}
    twfe_row = aggregates[(aggregates["estimator"] == "twfe") & overall]
    assert len(twfe_row) == 1 and twfe_row["aggregation"].item() == "simple"
    assert twfe_row["estimate"].item() == pytest.approx(did.twfe.estimate)
    regressions = aggregates[~callaway]
    assert regressions[["se", "ci_low", "ci_high"]].isna().all().all()
    assert regressions["inference"].str.startswith("withheld: TWFE/Sun-Abraham").all()
    assert did.twfe.ci[0] < did.twfe.estimate < did.twfe.ci[1]
    assert metrics["did.twfe.estimate"] == pytest.approx(did.twfe.estimate)
    assert "did.twfe.se" not in metrics
    study = aggregates[aggregates["estimator"] == "event_study"]
    assert (study["aggregation"] == "dynamic").all()
    assert (aggregates["n_clusters"] == 60).all()
    bacon = pd.read_csv(tables / "bacon.csv")
    assert list(bacon.columns) == [
        "comparison_type", "treated_cohort", "control_cohort", "estimate", "weight"
    ]  # fmt: skip
    assert bacon["weight"].sum() == pytest.approx(1.0)
    assert did.bacon is not None and not did.bacon.balanced
    assert (bacon["weight"] * bacon["estimate"]).sum() == pytest.approx(did.bacon.twfe)
    assert metrics["did.bacon.forbidden_weight"] == pytest.approx(did.bacon.forbidden_weight)
    bacon_rows = dropped[dropped["step"].str.startswith("bacon")].set_index("reason")["count"]
    assert bacon_rows["firms not observed in every year"] == did.bacon.n_units_left_out > 0
    assert any("balanced subpanel" in note for note in did.notes)
    assert "TWFE beside Callaway-Sant&#39;Anna" in html and "Goodman-Bacon decomposition" in html
    assert "Sun-Abraham" in html
    assert did.event_study is not None and "did.twfe.bias" in result.truth
    assert result.truth["did.event_study.max_abs_bias"] < 4 * did.event_study.se.max()
    latex = (result.out_dir / "latex" / "event_study.tex").read_text(encoding="utf-8")
    assert "CS & SA & TWFE" in latex and "Clusters (cities) & 60 & 60 & 60" in latex


@pytest.mark.integration
def test_asymptotic_inference_prints_only_the_overall_intervals(tmp_path: Path) -> None:
    """did.inference: asymptotic (R did's CR1, normal, bootstrap bands) under-covers on
    this panel (did_validity), so by default only the overall aggregates carry intervals."""
    raw = did_config(tmp_path, pilot_effect=0.2)
    raw["did"].update(inference="asymptotic", n_boot=199)
    raw["tracking"] = {"enabled": False}
    result = run_experiment(validate_config(raw))
    tables = result.out_dir / "tables"
    cells = pd.read_csv(tables / "att_gt.csv")
    assert cells["se"].isna().all() and cells["inference"].str.startswith("withheld").all()
    aggregates = pd.read_csv(tables / "did_aggregates.csv")
    overall = aggregates["overall"].astype(bool)
    assert aggregates.loc[overall, "se"].notna().all()
    assert aggregates.loc[~overall, "se"].isna().all()
    assert pd.read_csv(tables / "pretrend.csv")["p_value"].isna().all()
    assert result.did is not None and result.did.att_gt.inference == "asymptotic"
    assert np.isinf(result.did.aggregates["simple"].overall_df)


@pytest.mark.integration
def test_truth_checks_follow_the_event_window_and_skip_reference_cells(tmp_path: Path) -> None:
    """With a universal base period the reference cells (t = base) are fixed at 0 and not
    checked; with ``max_e`` the truth of every aggregation uses the same window."""
    raw = did_config(tmp_path, pilot_effect=0.2, pilot_dynamics=0.5)
    raw["did"].update(base_period="universal", max_e=0, unvalidated_inference=True)
    raw["tracking"] = {"enabled": False}
    result = run_experiment(validate_config(raw))
    assert result.did is not None and result.truth is not None
    cells = result.did.att_gt
    assert result.truth["did.att_gt.cells_checked"] == int((cells.time != cells.base_period).sum())
    for name in ("simple", "group", "dynamic", "calendar"):
        se = result.did.aggregates[name].overall_se
        assert abs(result.truth[f"did.{name}.bias"]) < 4 * se, name
    # max_e = 0: simple and group average the adoption-year cells only, like dynamic
    assert result.truth["did.simple.true"] == pytest.approx(result.truth["did.dynamic.true"])
    assert result.report_path is not None
    assert "uniform band" in result.report_path.read_text(encoding="utf-8")
    # cs_did alone (the default): no TWFE, Sun-Abraham or Bacon output
    tables = result.did.tables()
    assert set(tables["did_aggregates"]["estimator"]) == {"cs_did"} and "bacon" not in tables


@pytest.mark.integration
def test_a_pilot_city_trend_is_caught_by_the_pretrend_test(tmp_path: Path) -> None:
    """Pilot cities' log exports trend 0.08 a year faster. With the varying base period
    each pre-adoption ATT compares a year with the one before, so each is about 0.08. With
    150 cities (about 15 adopting per cohort) each lead's SE is about 0.01 and its t
    degrees of freedom at least 4, so each lead's t is about 8 and its two-sided p below
    0.004 (t_4): the Bonferroni-t test over the 3 leads rejects at 1%. (With 60 cities,
    about 6 adopting per cohort and 2 degrees of freedom, the same trend gave p = 0.09:
    few adopting cities leave a pre-trend test little power.)"""
    panel = {"n_cities": 150, "pilot_effect": 0.0, "pretrend": 0.08}
    result = run_experiment(validate_config(did_config(tmp_path, **panel)))
    assert result.did is not None and result.did.pretrend is not None
    test = result.did.pretrend
    assert test.test == "bonferroni_t" and test.df_denom >= 4
    assert test.p_value < 0.01
    dynamic = result.did.aggregates["dynamic"]
    pre = dynamic.keys < 0
    assert (np.abs(dynamic.estimate[pre] - 0.08) < 4 * dynamic.se[pre]).all()


def _toy_panel(cohort_of_city: dict[str, int]) -> pd.DataFrame:
    """Two firms per city over 2010-2016, exports 100."""
    rows = [
        {"firm_id": f"{city}{k}", "year": year, "city": city, "exports": 100.0, "pilot_year": g}
        for city, g in cohort_of_city.items()
        for k in range(2)
        for year in range(2010, 2017)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("cities", "change", "message"),
    [
        ({"A": 2013, "B": 2013, "C": 0}, {"row": 0, "pilot_year": 2014}, "more than one adoption"),
        ({"A": 2010, "B": 2010, "C": 0}, {}, r"adoption years \[2010\] fall outside"),
        ({"A": 2020, "B": 2020, "C": 0}, {}, r"adoption years \[2020\] fall outside"),
        ({"A": 2013, "B": 2014, "C": 0}, {}, r"cohorts \[2013, 2014\] have one city each"),
    ],
)
def test_bad_adoption_years_are_refused_before_fitting(
    cities: dict[str, int], change: dict[str, int], message: str
) -> None:
    from vaer.config.did import DidConfig
    from vaer.config.models import Roles
    from vaer.did.stage import did_sample

    frame = _toy_panel(cities)
    if change:
        frame.loc[change["row"], "pilot_year"] = change["pilot_year"]
    roles = Roles(
        unit="firm_id", outcome="r", treatment="t", modifiers=["x"], cluster="city",
        time="year", exports="exports", policy="pilot_year",
    )  # fmt: skip
    with pytest.raises(ValueError, match=message):
        did_sample(frame, roles, DidConfig(enabled=True))


def test_every_left_out_row_is_counted() -> None:
    from vaer.config.did import DidConfig
    from vaer.config.models import Roles
    from vaer.did.stage import did_sample

    frame = _toy_panel({"A": 2013, "B": 2013, "C": 0, "D": 0})
    frame["growth"] = 1.0
    frame.loc[[0, 1, 2], "growth"] = np.inf
    frame.loc[3, "growth"] = np.nan
    roles = Roles(
        unit="firm_id", outcome="r", treatment="t", modifiers=["x"], cluster="city",
        time="year", exports="exports", policy="pilot_year",
    )  # fmt: skip
    kept, dropped = did_sample(frame, roles, DidConfig(enabled=True, outcome="growth"))
    assert dropped == {"missing_growth": 1, "infinite_growth": 3}
    assert len(kept) + sum(dropped.values()) == len(frame)


@pytest.mark.integration
def test_dml_did_runs_beside_cs_and_finds_the_pilot_effect(tmp_path: Path) -> None:
    """did.estimators: dml_did estimates the same cells with cross-fitted LightGBM
    nuisances, overall and by firm type; its small-cluster intervals are printed."""
    raw = did_config(tmp_path, pilot_effect=0.2)
    raw["did"].update(
        estimators=["cs_did", "dml_did"], covariates=["productivity", "firm_age", "city_dev"]
    )
    raw["tracking"] = {"enabled": False}
    # plumbing: small fixed LightGBM nuisances, two firm-type dimensions (the default
    # learners' statistics: benchmarks/dml_did_validity.py)
    raw["nuisance"] = {"early_stopping": False, "params": {"n_estimators": 60}}
    raw["heterogeneity"]["dimensions"] = ["ownership", "trade_mode"]
    result = run_experiment(validate_config(raw))
    did = result.did
    assert did is not None and did.dml is not None and did.dml.method == "dml"
    tables = result.out_dir / "tables"
    cells = pd.read_csv(tables / "att_gt.csv")
    assert set(cells["estimator"]) == {"cs_did", "dml_did"}
    dml_cells = cells[cells["estimator"] == "dml_did"]
    assert len(dml_cells) == (cells["estimator"] == "cs_did").sum()
    assert dml_cells["se"].notna().all() and dml_cells["ci_low"].notna().all()
    assert not dml_cells["inference"].str.startswith("withheld").any()
    aggregates = pd.read_csv(tables / "did_aggregates.csv")
    dml_simple = aggregates.query("estimator == 'dml_did' and aggregation == 'simple'")
    assert dml_simple["se"].notna().all() and len(dml_simple) == 1
    # the same cells and the truth: within 4 SEs
    simple = did.dml_aggregates["simple"]
    assert result.truth is not None
    true_simple = result.truth["did.simple.true"]
    assert abs(simple.overall_estimate - true_simple) < 4 * simple.overall_se
    cs_simple = did.aggregates["simple"].overall_estimate
    assert abs(simple.overall_estimate - cs_simple) < 2 * simple.overall_se
    # the bias and the coverage of its printed intervals are checked
    assert "did.dml_did.simple.bias" in result.truth
    assert "did.dml_did.simple.covered" in result.truth
    # ATT by firm type: dml_did rows beside cs_did's, one per level and aggregation key
    types = pd.read_csv(tables / "did_types.csv")
    assert set(types["estimator"]) == {"cs_did", "dml_did"}
    dml_types = types[types["estimator"] == "dml_did"]
    assert len(dml_types) == (types["estimator"] == "cs_did").sum()
    assert dml_types["estimate"].notna().all()
    assert dml_types["se"].notna().all() and dml_types["p_adj"].notna().all()
    assert did.types is not None and set(did.types.dml_results) == set(did.types.results)
    checked = result.truth["did.types.dml_did.truth.checked"]
    assert checked == (dml_types["overall"].astype(bool)).sum()
    assert result.truth["did.types.dml_did.truth.max_abs_t"] < 4.5


def test_dml_did_intervals_are_withheld_in_the_asymptotic_mode_only() -> None:
    assert dml_withheld(DidConfig(estimators=["cs_did", "dml_did"], covariates=["x"])) is None
    asymptotic = DidConfig(
        estimators=["cs_did", "dml_did"], covariates=["x"], inference="asymptotic"
    )
    assert dml_withheld(asymptotic) == DML_WITHHELD
    assert dml_withheld(asymptotic.model_copy(update={"unvalidated_inference": True})) is None


def test_dml_did_needs_covariates(tmp_path: Path) -> None:
    raw = did_config(tmp_path)
    raw["did"]["estimators"] = ["cs_did", "dml_did"]
    with pytest.raises(ConfigError, match=r"did\.covariates. is empty"):
        validate_config(raw)
