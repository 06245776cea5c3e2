"""The validity benchmark's pieces: the held-out generator's truth, the coverage and size
arithmetic, the commit line, and one tiny seed through the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaer.attribution.share_intervals import LINEAR_PROJECTION, WITHHELD

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import validity
from common import GitState, git_state, update_results_section
from heldout_designs import (
    CHANNELS,
    MEDIATORS,
    MODIFIERS,
    PILOT_SHARE,
    VA_CITY_SD,
    VA_FIRM_SD,
    ZERO_CHANNEL,
    HeldoutParams,
    binary_estimand,
    conditional_means,
    make_heldout_table,
    write_heldout,
)
from vaer.data.truth import Truth
from validity_claims import (
    TARGETS,
    Z95,
    ate_rows,
    cate_rows,
    cate_schema,
    channel_rows,
    heterogeneity_rows,
    holm_any,
    mean_and_se,
    mechanism_rows,
    refuter_rows,
    summarise,
    verdict,
)

# ------------------------------------------------------------ held-out generator


@pytest.fixture(scope="module")
def table():
    return make_heldout_table(HeldoutParams(n_firms=3000, n_cities=60), random_state=3)


def test_truth_is_additive_and_centred(table) -> None:
    truth, frame = table.truth, table.frame
    assert list(truth.shap.columns) == MODIFIERS
    assert np.mean(truth.tau) == pytest.approx(table.params.ate, abs=1e-12)
    np.testing.assert_allclose(truth.shap.sum(axis=1).to_numpy(), truth.tau - truth.tau.mean())
    np.testing.assert_allclose(truth.shap.mean().to_numpy(), 0.0, atol=1e-12)
    for column in ("size_band", "region", "local_promo"):
        assert (truth.shap[column] == 0).all()
    # the sample GATE equals the mean of tau in the group
    private = frame["ownership"].to_numpy() == "private"
    assert truth.gates("ownership")["private"] == pytest.approx(truth.tau[private].mean())


def test_channel_shares_and_zero_channel(table) -> None:
    shares = table.truth.channel_shares()
    assert list(shares.index) == list(CHANNELS)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[ZERO_CHANNEL] == 0.0
    assert (shares.drop(ZERO_CHANNEL) > 0.05).all()
    # the no-effect proxy tracks city GDP (a control) and little else
    frame = table.frame
    assert np.corrcoef(frame["local_promo"], frame["city_gdp"])[0, 1] > 0.85
    assert abs(np.corrcoef(frame["local_promo"], frame["supplier_div"])[0, 1]) < 0.1


def test_tau_and_mediator_effects_are_the_derivatives_in_va() -> None:
    """The same draws with the pilot switched off change VA by Z_c only, so the outcome
    moves by tau_i * Z_c and each mediator by theta * Z_c: the truth is exact."""
    on = make_heldout_table(HeldoutParams(n_firms=1000, n_cities=40), random_state=5)
    off = make_heldout_table(
        HeldoutParams(n_firms=1000, n_cities=40, instrument_strength=0.0), random_state=5
    )
    dva = on.frame["va_index"].to_numpy() - off.frame["va_index"].to_numpy()
    pilot = on.frame["pilot"].to_numpy()
    np.testing.assert_allclose(dva, pilot, atol=1e-12)
    moved = pilot == 1.0
    assert moved.sum() > 50
    dr = on.frame["resilience"].to_numpy() - off.frame["resilience"].to_numpy()
    np.testing.assert_allclose(dr[moved], on.truth.tau[moved], atol=1e-10)
    np.testing.assert_allclose(dr[~moved], 0.0, atol=1e-12)
    for column, theta in MEDIATORS.values():
        dm = on.frame[column].to_numpy() - off.frame[column].to_numpy()
        np.testing.assert_allclose(dm[moved], theta, atol=1e-10)
        assert on.truth.mediator_effects[column] == theta


def test_pilot_is_city_level(table) -> None:
    per_city = table.frame.groupby("city")["pilot"].nunique()
    assert (per_city == 1).all()
    assert 0.15 < table.frame.groupby("city")["pilot"].first().mean() < 0.6


def test_constant_effect_variant() -> None:
    flat = make_heldout_table(HeldoutParams(n_firms=800, n_cities=20, heterogeneity=0.0))
    np.testing.assert_allclose(flat.truth.tau, flat.params.ate)
    assert (flat.truth.shap.to_numpy() == 0).all()


def test_conditional_means_match_simulation(table) -> None:
    """Redraw VA from its law given (X, W) for firms whose threshold is not in a tail and
    compare the closed-form truncated means with simulated ones: the mean difference over
    firms within 4 Monte Carlo SEs, and every firm within 5 pooled per-firm SEs (600
    comparisons; SEs from 8 independent batches)."""
    rng = np.random.default_rng(11)
    q = float(np.median(table.frame["va_index"]))
    s = np.hypot(VA_CITY_SD, VA_FIRM_SD)
    mu = table.va_mean[np.abs(table.va_mean - q) < 1.0][:300]
    batches = []
    for _ in range(8):
        z = rng.random((len(mu), 4000)) < PILOT_SHARE
        va = mu[:, None] + z + s * rng.normal(size=z.shape)
        high = va > q
        batches.append(
            np.stack([(va * high).sum(1) / high.sum(1), (va * ~high).sum(1) / (~high).sum(1)])
        )
    simulated = np.mean(batches, axis=0)
    se = np.std(batches, axis=0, ddof=1) / np.sqrt(len(batches))
    closed = np.stack(conditional_means(mu, q, 1.0))
    batch_means = np.mean(np.asarray(batches) - closed, axis=2)  # (batches, 2)
    mean_se = np.std(batch_means, axis=0, ddof=1) / np.sqrt(len(batches))
    assert np.all(np.abs(np.mean(simulated - closed, axis=1)) < 4 * mean_se)
    pooled = np.sqrt(np.mean(se**2, axis=1))[:, None]
    assert np.all(np.abs(simulated - closed) < 5 * pooled)
    high_all, low_all = conditional_means(table.va_mean, q, 1.0)
    assert binary_estimand(table) == pytest.approx(np.mean(table.truth.tau * (high_all - low_all)))
    assert np.all(high_all > q) and np.all(low_all <= q)


def test_binary_estimand_errors(table) -> None:
    with pytest.raises(ValueError, match="`quantile` must be in"):
        binary_estimand(table, quantile=1.0)
    hidden = make_heldout_table(HeldoutParams(n_firms=800, n_cities=20, unobserved_confounding=1.0))
    with pytest.raises(ValueError, match="needs `unobserved_confounding` = 0"):
        binary_estimand(hidden)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_cities": 5}, "`n_cities` must be an int >= 10"),
        ({"n_firms": 500, "n_cities": 50}, "`n_firms` must be at least 20 per city"),
        ({"heterogeneity": -1.0}, "`heterogeneity` must be >= 0"),
        ({"noise": 0.0}, "`noise` must be > 0"),
    ],
)
def test_params_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        HeldoutParams(**kwargs)


def test_write_heldout_round_trip(table, tmp_path) -> None:
    path = write_heldout(table, tmp_path / "sub" / "t.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table.frame)


# ------------------------------------------------------------ claim arithmetic


def _truth(tau: np.ndarray, shap: pd.DataFrame | None = None, **extra) -> Truth:
    units = np.array([f"U{i}" for i in range(len(tau))])
    shap = shap if shap is not None else pd.DataFrame({"a": tau - tau.mean()})
    return Truth(units=units, tau=tau, shap=shap.set_index(pd.Index(units)), **extra)


def test_cate_rows_new_schema_counts_only_firm_intervals() -> None:
    tau = np.array([0.0, 1.0, 2.0, 3.0])
    truth = _truth(tau)
    units = truth.units
    cate = pd.DataFrame(
        {
            "estimator": ["causal_forest_dml"] * 4 + ["linear_dml"] * 4 + ["other"] * 4,
            "unit": list(units) * 3,
            "tau_hat": [0.0] * 12,
            "se": [0.1] * 12,
            # firm: covers tau = 0, 1 and 2 but not 3
            "ci_low": [-1, 0.5, 1.5, 3.5] + [-9] * 4 + [np.nan] * 4,
            "ci_high": [1, 1.5, 2.5, 4.0] + [9] * 4 + [np.nan] * 4,
            "interval": ["firm"] * 4 + ["blp"] * 4 + ["none"] * 4,
            "estimand": ["x"] * 12,
        }
    )
    assert cate_schema(cate) == "new"
    rows = {(r["claim"], r["estimator"]): r for r in cate_rows(cate, truth)}
    assert rows[("cate_coverage", "causal_forest_dml")]["value"] == pytest.approx(0.75)
    assert rows[("cate_blp_coverage", "linear_dml")]["value"] == 1.0
    assert ("cate_coverage", "other") not in rows  # `none`: nothing written, nothing claimed


def test_cate_rows_old_schema_and_missing_forest_interval() -> None:
    tau = np.array([0.0, 1.0])
    truth = _truth(tau)
    old = pd.DataFrame(
        {
            "estimator": "causal_forest_dml",
            "unit": truth.units,
            "tau_hat": [0.1, 1.5],
            "se": [0.1, 0.2],
            "estimand": "x",
        }
    )
    assert cate_schema(old) == "old"
    (row,) = cate_rows(old, truth)
    # 0 is inside 0.1 +- 0.196; 1 is outside 1.5 +- 0.392
    assert row["value"] == 0.5 and row["item"] == "old schema"
    assert row["se"] == pytest.approx(Z95 * 0.15)
    none = old.assign(ci_low=np.nan, ci_high=np.nan, interval="none")
    (row,) = cate_rows(none, truth)
    assert np.isnan(row["value"]) and row["claim"] == "cate_coverage"
    with pytest.raises(ValueError, match="neither `interval` nor `se`"):
        cate_schema(old.drop(columns="se"))


def test_mean_and_se() -> None:
    mean, se = mean_and_se(np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=float))
    # Laplace p~ = (2 + 1) / (10 + 2)
    assert mean == 0.2 and se == pytest.approx(np.sqrt(0.25 * 0.75 / 10))
    mean, se = mean_and_se(np.ones(6))
    assert mean == 1.0 and se == pytest.approx(np.sqrt(7 / 8 * 1 / 8 / 6))
    values = np.array([0.9, 0.95, 0.85, np.nan])
    mean, se = mean_and_se(values)
    assert mean == pytest.approx(0.9)
    assert se == pytest.approx(np.std([0.9, 0.95, 0.85], ddof=1) / np.sqrt(3))
    with pytest.raises(ValueError, match="no finite value"):
        mean_and_se(np.array([np.nan]))


def test_targets_and_verdicts() -> None:
    assert verdict("cate_coverage", 0.93, 0.005) == "PASS"
    assert verdict("cate_coverage", 0.65, 0.01) == "FAIL"
    assert verdict("cate_coverage", 0.905, 0.01) == "PASS*"
    assert verdict("het_size", 0.08, 0.001) == "FAIL"
    assert verdict("het_mean_t", -0.1, 0.01) == "PASS"
    assert verdict("het_mean_t", -0.5, 0.01) == "FAIL"
    assert verdict("het_power", 0.5, 0.01) == "info"
    assert verdict("ate_coverage", np.nan, np.nan) == "FAIL"
    assert TARGETS["refuter_false_alarm"].met(0.05)


def test_holm_any() -> None:
    assert holm_any([0.01, 0.5, 0.9])  # 0.01 <= 0.05 / 3
    assert not holm_any([0.02, 0.03, 0.04])  # 0.02 > 0.05 / 3
    assert not holm_any([])


def _het_tables(p: float, t: float) -> dict[str, pd.DataFrame]:
    return {
        "gate_tests": pd.DataFrame(
            {
                "estimator": "cf",
                "dimension": ["own", "own", "size"],
                "test": ["equality", "difference", "equality"],
                "contrast": "",
                "estimate": np.nan,
                "se": np.nan,
                "statistic": 1.0,
                "df": 1,
                "p_value": [p, p, 0.5],
                "p_holm": [p, p, 0.5],
                "p_romano_wolf": p,
            }
        ),
        "calibration": pd.DataFrame(
            {
                "estimator": "cf",
                "term": ["mean_forest_prediction", "differential_forest_prediction"],
                "estimate": 1.0,
                "se": 1.0,
                "ci_low": 0,
                "ci_high": 1,
                "t_stat": [9.0, t],
                "p_value": [0.0, p],
            }
        ),
        "rate": pd.DataFrame(
            {
                "estimator": "cf",
                "target": ["AUTOC"],
                "estimate": [t],
                "se": [1.0],
                "ci_low": 0,
                "ci_high": 1,
                "p_value": [p],
                "n_bootstrap": 200,
            }
        ),
    }


def test_heterogeneity_rows_and_summary_size_vs_power() -> None:
    rows = heterogeneity_rows(_het_tables(0.01, 2.5))
    items = {r["item"]: r for r in rows}
    assert items["wald:own"]["value"] == 1.0 and items["wald:size"]["value"] == 0.0
    assert items["wald:any (Holm)"]["value"] == 1.0  # 0.01 <= 0.05 / 2
    assert items["calibration:differential"]["t"] == 2.5
    assert "calibration:mean" not in items  # not a heterogeneity test
    frames = []
    for seed, (p, t) in enumerate([(0.01, 2.5), (0.5, -0.5), (0.6, -0.3), (0.7, 0.1)]):
        for h in (0.0, 1.0):
            part = pd.DataFrame(heterogeneity_rows(_het_tables(p, t)))
            frames.append(part.assign(design=f"h{h:g}", seed=seed, heterogeneity=h))
    summary = summarise(pd.concat(frames, ignore_index=True))
    size = summary[(summary["design"] == "h0") & (summary["item"] == "rate:AUTOC")]
    by_claim = size.set_index("claim")
    assert by_claim.loc["het_size", "measured"] == 0.25
    assert by_claim.loc["het_size", "mc_se"] == pytest.approx(np.sqrt(1 / 3 * 2 / 3 / 4))
    assert by_claim.loc["het_mean_t", "measured"] == pytest.approx((2.5 - 0.5 - 0.3 + 0.1) / 4)
    power = summary[(summary["design"] == "h1") & (summary["item"] == "rate:AUTOC")]
    assert list(power["claim"]) == ["het_power"]
    assert (power["verdict"] == "info").all()


def test_withheld_ranking_tests_make_no_size_claim() -> None:
    """A p-value the product withheld (NaN) is not a non-rejection: the test gets no size
    or power line, only its mean t for information on a constant-effect design."""
    frames = []
    for seed, t in enumerate([1.0, -0.5]):
        tables = _het_tables(0.5, t)
        tables["rate"]["p_value"] = np.nan
        for h in (0.0, 1.0):
            part = pd.DataFrame(heterogeneity_rows(tables))
            frames.append(part.assign(design=f"h{h:g}", seed=seed, heterogeneity=h))
    rows = pd.concat(frames, ignore_index=True)
    assert rows.loc[rows["item"] == "rate:AUTOC", "value"].isna().all()
    summary = summarise(rows)
    autoc = summary[summary["item"] == "rate:AUTOC"]
    assert list(autoc["claim"]) == ["het_withheld_mean_t"]
    assert autoc["measured"].iloc[0] == pytest.approx(0.25)
    assert (autoc["verdict"] == "info").all()


def test_channel_mechanism_ate_and_refuter_rows() -> None:
    tau = np.array([1.0, 2.0, 3.0, 4.0])
    shap = pd.DataFrame({"a": tau - tau.mean(), "b": 0.0})
    truth = _truth(
        tau, shap, mechanisms={"A": ["a"], "B": ["b"]}, mediator_effects={"m1": 0.3, "m0": 0.0}
    )
    channels = pd.DataFrame(
        {
            "estimator": "cf",
            "channel": ["A", "B"],
            "share": [0.9, 0.1],
            "ci_low": [0.8, 0.0],
            "ci_high": [0.95, 0.2],
            "mean_abs_shap": 1.0,
        }
    )
    covered = {r["item"]: r["value"] for r in channel_rows(channels, truth)}
    assert covered == {"A": 0.0, "B": 1.0}  # true shares are 1 and 0
    # a linear model's intervals name the best linear projection's shares; withheld ones
    # make no claim
    linear = channels.assign(estimator="ld", interval=LINEAR_PROJECTION)
    projected = {"A": 0.9, "B": 0.1}
    covered = {r["item"]: r["value"] for r in channel_rows(linear, truth, projected)}
    assert covered == {"A": 1.0, "B": 1.0}
    with pytest.raises(ValueError, match="projection's shares"):
        channel_rows(linear, truth)
    withheld = channels.assign(ci_low=np.nan, ci_high=np.nan, interval=WITHHELD)
    assert channel_rows(withheld, truth) == []
    mechanisms = pd.DataFrame(
        {
            "channel": "c",
            "mediator": ["m1", "m0", "m0"],
            "dimension": ["all", "all", "own"],
            "level": ["all", "all", "SOE"],
            "estimate": [0.31, 0.1, 0.0],
            "se": 0.04,
            "ci_low": [0.23, 0.02, -1],
            "ci_high": [0.39, 0.18, 1],
            "p_value": [0.0, 0.01, 0.9],
            "n": 10,
            "n_clusters": 5,
        }
    )
    rows = mechanism_rows(mechanisms, truth)
    assert [(r["claim"], r["item"], r["value"]) for r in rows] == [
        ("mechanism_coverage", "m1", 1.0),
        ("mechanism_coverage", "m0", 0.0),
        ("mechanism_zero_reject", "m0", 1.0),
    ]
    ate = pd.DataFrame(
        {
            "estimator": ["cf", "cf", "iv"],
            "estimand": "x",
            "estimate": [2.4, 2.4, 9.0],
            "se": [0.1, 0.01, 1.0],
            "ci_low": [2.2, 2.38, 7.0],
            "ci_high": [2.6, 2.42, 11.0],
            "n": 4,
            "se_type": [
                "cluster-robust (DR scores)",
                "econml default",
                "cluster-robust (CR2, t with G-1 df)",
            ],
        }
    )
    rows = ate_rows(ate, {"cf": 2.5, "iv": 2.5})
    assert [(r["estimator"], r["value"]) for r in rows] == [("cf", 1.0), ("iv", 0.0)]
    robustness = pd.DataFrame(
        {
            "check": ["placebo_treatment", "data_subsets", "data_subsets"],
            "variant": ["permutation 1", "subset 1", "all"],
            "estimator": "linear_dml",
            "estimate": 0.0,
            "se": 1.0,
            "ci_low": -1,
            "ci_high": 1,
            "reference": 0,
            "rule": "",
            "passed": [True, False, True],
        }
    )
    alarms = {(r["claim"], r["item"]): r["value"] for r in refuter_rows(robustness)}
    # one flagged subset flags the check; a table without family_p has no family verdict
    assert alarms == {
        ("refuter_false_alarm", "placebo_treatment"): 0.0,
        ("refuter_false_alarm", "data_subsets"): 1.0,
        ("refuter_any", "some check at its own level"): 1.0,
    }
    # the family verdict: flagged when a check's Holm p-value is at most its false-alarm rate
    for family_p, flagged in ((0.06, 0.0), (0.05, 1.0)):
        table = robustness.assign(false_alarm=0.05, family_p=[0.5, family_p, family_p])
        family = [r for r in refuter_rows(table) if r["claim"] == "refuter_family"]
        assert [(r["item"], r["value"]) for r in family] == [
            ("all checks together (Holm)", flagged)
        ]


def test_measure_keeps_claims_whose_table_is_missing() -> None:
    """A stage that ran but wrote no table fails its claim (NaN) instead of hiding it."""
    truth = _truth(np.array([1.0, 2.0]))
    rows = validity.measure(
        {}, truth, {}, estimators=("cf", "lin"), stages=("attribution", "robustness")
    )
    got = {(r["claim"], r["estimator"], r["item"]) for r in rows}
    assert got == {
        ("channel_coverage", "cf", "no shap_channels table"),
        ("channel_coverage", "lin", "no shap_channels table"),
        ("mechanism_coverage", "mechanisms", "no mechanisms table"),
        ("refuter_false_alarm", "linear_dml", "no robustness table"),
    }
    assert all(np.isnan(r["value"]) for r in rows)
    assert validity.measure({}, truth, {}, estimators=("cf",), stages=()) == []
    frame = pd.DataFrame(rows).assign(design="d", seed=1, heterogeneity=1.0, t=np.nan)
    assert (summarise(frame)["verdict"] == "FAIL").all()


def test_ate_bias_in_se_units() -> None:
    frame = pd.DataFrame(
        {
            "design": "d",
            "claim": "ate_coverage",
            "estimator": "cf",
            "item": "cluster",
            "seed": [1, 2, 3, 4],
            "heterogeneity": 1.0,
            "value": [1.0, 1.0, 0.0, 1.0],
            "estimate": [0.6, 0.4, 0.9, 0.5],
            "truth": 0.5,
            "se": 0.1,
            "t": np.nan,
        }
    )
    summary = summarise(frame).set_index("claim")
    assert summary.loc["ate_coverage", "measured"] == 0.75
    assert summary.loc["ate_bias_se", "measured"] == pytest.approx(0.1 / 0.1 * 1.0)
    assert summary.loc["ate_bias_se", "verdict"].startswith("FAIL")


def test_external_refuter_rows(monkeypatch) -> None:
    calls = []

    def fake(seed, name):
        calls.append((seed, name))
        return {"placebo_treatment": False, "data_subsets": True}, False

    monkeypatch.setattr(validity, "refuter_hook", lambda: fake)
    rows = validity.external_refuter_rows("panel_40", 1003)
    alarms = {(r["claim"], r["item"]): r["value"] for r in rows if "refuter" in r["claim"]}
    assert alarms == {
        ("refuter_false_alarm", "placebo_treatment"): 0.0,
        ("refuter_false_alarm", "data_subsets"): 1.0,
        ("refuter_any", "some check at its own level"): 1.0,
        ("refuter_family", "all checks together (Holm)"): 0.0,
    }
    assert calls == [(1003, "panel_40")]
    assert {r["claim"] for r in rows} == {
        "refuter_false_alarm",
        "refuter_any",
        "refuter_family",
        "seconds",
        "cpu_seconds",
    }
    monkeypatch.setattr(validity, "refuter_hook", lambda: None)
    rows = validity.external_refuter_rows("panel_40", 1003)
    (error,) = [r for r in rows if r["claim"] == "error"]
    assert "has no `false_alarms`" in error["note"]


# ------------------------------------------------------------ commit line


def test_git_state_describes_commit_and_changes(tmp_path) -> None:
    assert GitState("abc", ()).describe() == "commit abc (clean)"
    text = GitState("abc", ("a.py", "b.py")).describe()
    assert text == "commit abc (dirty: 2 tracked files changed: a.py, b.py)"
    assert git_state(tmp_path) == GitState("unknown", ())
    here = git_state(Path(__file__).resolve().parents[1])
    assert len(here.commit) == 40


def test_section_footer_states_the_measured_code(tmp_path) -> None:
    frame = pd.DataFrame({"commit": ["abc", "abc"], "dirty": [False, False]})
    assert validity.measured_code(frame) == "commit abc (clean)"
    frame = pd.DataFrame({"commit": ["abc", "def"], "dirty": [False, True]})
    code = validity.measured_code(frame)
    assert code == "commits abc, def (dirty: uncommitted changes to tracked files)"
    path = tmp_path / "RESULTS.md"
    update_results_section("x", "## X", path, config="designs a, b", code=code)
    text = path.read_text()
    assert f"Code: {code}. Config: designs a, b. Machine:" in text
    update_results_section("x", "## X again", path)
    text = path.read_text()
    assert text.count("<!-- begin:x -->") == 1 and "## X again" in text
    assert "Code: commit " in text


# ------------------------------------------------------------ one tiny seed


@pytest.mark.slow
@pytest.mark.integration
def test_one_tiny_seed_end_to_end(monkeypatch) -> None:
    """A small held-out table through run_experiment: every claim of the table design is
    measured from the run's tables, and the section builds from the rows."""
    tiny = validity.Design(
        name="tiny", source="table", n_firms=800, n_cities=20, heterogeneity=1.0,
        stages=("heterogeneity", "attribution"), extra=("dr_learner",), seeds_full=1,
        seeds_quick=1, purpose="test",
    )  # fmt: skip
    monkeypatch.setitem(validity.DESIGNS, "tiny", tiny)
    rows = validity.run_seed("tiny", 1000)
    frame = pd.DataFrame(rows)
    assert "error" not in set(frame["claim"]), frame.get("note")
    claims = set(frame["claim"])
    for claim in (
        "cate_coverage",
        "ate_coverage",
        "het_test",
        "channel_coverage",
        "mechanism_coverage",
        "mechanism_zero_reject",
        "seconds",
    ):
        assert claim in claims
    cate = frame[frame["claim"].str.startswith("cate_")]
    assert "dr_learner" not in set(cate["estimator"])  # high vs low VA is not tau(x_i)
    ate = frame[frame["claim"] == "ate_coverage"].set_index("estimator")
    assert set(ate.index) == {"causal_forest_dml", "linear_dml", "dr_learner"}
    assert ate.loc["causal_forest_dml", "truth"] == pytest.approx(0.4)
    assert ate.loc["dr_learner", "truth"] > 0.4  # high vs low VA differ by more than 1
    assert frame["commit"].nunique() == 1
    text, config = validity.markdown(frame, quick=True, seconds=1.0, designs=["tiny"])
    assert text.startswith("## Validity on current defaults (quick)")
    assert "| 1. per-firm 95% intervals" in text and "tiny" in config
    assert "### Power of the heterogeneity tests" in text
    assert "| tiny | causal_forest_dml | " in text
    assert "| 3. channel shares: coverage of the share the interval names" in text


def test_summary_name_follows_the_per_seed_file() -> None:
    summary_name = validity.summary_name
    assert summary_name("seeds_full.csv.gz") == "summary_full.csv.gz"
    assert summary_name("seeds_ate_outcome_model.csv.gz") == "summary_ate_outcome_model.csv.gz"
    assert summary_name("runs.csv.gz") == "summary_runs.csv.gz"
