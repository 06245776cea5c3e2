"""Honest DiD (Rambachan-Roth): closed forms, the ``honestdid`` peer, the synthetic truth,
input errors, the simulator's known violation, and the stage's table and report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaer.did import CellOptions, PanelColumns, att_gt
from vaer.did.honest import (
    event_study_inputs,
    honest_did,
    relative_magnitude_ci,
    smoothness_ci,
)
from vaer.did.honest_arp import truncnorm_ppf
from vaer.did.honest_flci import combination_df, flci, folded_normal_critical, folded_t_critical
from vaer.did.inference import satterthwaite_df
from vaer.did.simulate import simulate_staggered

GOLDEN = Path(__file__).parent / "golden" / "honest_did_peer.json"


def _random_sigma(n: int, seed: int, block: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    root = rng.normal(size=(n, n)) * 0.1
    sigma = root @ root.T + 0.01 * np.eye(n)
    if block is not None:  # pre and post estimates uncorrelated
        sigma[:block, block:] = 0.0
        sigma[block:, :block] = 0.0
    return sigma


@pytest.mark.parametrize("n_pre", [2, 3, 5])
def test_smoothness_at_m0_is_the_gls_extrapolation_of_a_linear_pretrend(n_pre: int) -> None:
    n_post = 3
    sigma = _random_sigma(n_pre + n_post, seed=n_pre, block=n_pre)
    beta = np.random.default_rng(10 + n_pre).normal(size=n_pre + n_post)
    t_pre = np.arange(-n_pre, 0) - 0.0  # event times of the pre periods, reference 0
    t_pre = t_pre.astype(float)
    t_post = np.arange(1, n_post + 1, dtype=float)
    inv = np.linalg.inv(sigma[:n_pre, :n_pre])
    slope = (t_pre @ inv @ beta[:n_pre]) / (t_pre @ inv @ t_pre)  # GLS through the origin
    slope_var = 1.0 / (t_pre @ inv @ t_pre)
    z = stats.norm.ppf(0.975)
    for l_vec in (np.eye(n_post)[2], np.full(n_post, 1.0 / n_post)):
        estimate = l_vec @ beta[n_pre:] - (l_vec @ t_post) * slope
        sd = np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec + (l_vec @ t_post) ** 2 * slope_var)
        low, high = smoothness_ci(beta, sigma, n_pre, l_vec, 0.0)
        assert low == pytest.approx(estimate - z * sd, abs=1e-9)
        assert high == pytest.approx(estimate + z * sd, abs=1e-9)


def test_the_flci_removes_linear_trends_and_beats_the_extrapolation_when_m_is_positive() -> None:
    n_pre, n_post = 4, 3
    sigma = _random_sigma(n_pre + n_post, seed=1)
    beta = np.zeros(n_pre + n_post)
    l_vec = np.array([0.0, 1.0, 0.0])
    at_zero = flci(beta, sigma, n_pre, l_vec, 0.0)
    at_m = flci(beta, sigma, n_pre, l_vec, 0.05)
    # any linear trend through the reference period cancels: t' w = 0
    t_full = np.arange(-n_pre, n_post + 1, dtype=float)
    t_beta = np.delete(t_full, n_pre)
    assert at_m.weights @ t_beta == pytest.approx(0.0, abs=1e-8)
    # the optimum is no longer than the M = 0 estimator with its worst-case bias at M
    from vaer.did.honest_flci import _problem

    problem = _problem(sigma, n_pre, l_vec)
    bias0 = 0.05 * problem.bias(at_zero.weights[:n_pre])
    extrapolation = at_zero.sd * folded_normal_critical(0.05, bias0 / at_zero.sd)
    assert at_m.half_length <= extrapolation + 1e-9
    assert at_m.half_length >= at_zero.half_length - 1e-9


def test_folded_normal_and_truncated_normal_quantiles() -> None:
    for t in (0.0, 0.3, 2.0, 8.0):
        assert folded_normal_critical(0.05, t) == pytest.approx(
            stats.foldnorm.ppf(0.95, t), abs=1e-9
        )
    low = np.array([-np.inf, -1.0, 3.0, 30.0, -40.0])
    high = np.array([np.inf, 2.0, np.inf, 35.0, -30.0])
    np.testing.assert_allclose(
        truncnorm_ppf(0.9, low, high), stats.truncnorm.ppf(0.9, low, high), rtol=1e-9
    )


@pytest.mark.parametrize("df", [2.5, 8.0, 30.0])
def test_folded_t_quantiles(df: float) -> None:
    """``P(|t + T_df| <= c) = 1 - alpha`` by scipy's t distribution; t = 0 is the two-sided
    t quantile, df = inf the folded normal."""
    for t in (0.0, 0.3, 2.0, 8.0):
        c = folded_t_critical(0.05, t, df)
        assert stats.t.cdf(c - t, df) - stats.t.cdf(-c - t, df) == pytest.approx(0.95, abs=1e-9)
        assert c > folded_normal_critical(0.05, t)
        assert folded_t_critical(0.05, -t, df) == c
    assert folded_t_critical(0.05, 0.0, df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-9)
    assert folded_t_critical(0.05, 1.3, np.inf) == folded_normal_critical(0.05, 1.3)
    with pytest.raises(ValueError, match="`df` must be > 0"):
        folded_t_critical(0.05, 0.0, 0.0)


def test_the_small_cluster_flci_is_the_t_interval_of_its_estimator(violated: tuple) -> None:
    """With the event study's cluster sums, the M = 0 FLCI is the same estimator with a
    Student t critical value whose df is the Satterthwaite df of ``v' beta_hat`` (that of
    its influence function, :func:`vaer.did.inference.satterthwaite_df`); at M > 0 it is
    wider than the folded-normal one; the usual intervals do not change."""
    study, _ = violated
    sums = study.cluster_sums
    np.testing.assert_allclose(sums.T @ sums, study.sigma, rtol=1e-12)
    n_pre = int(np.sum(study.event_times < study.reference))
    n_post = len(study.beta) - n_pre
    for l_vec in (np.eye(n_post)[1], np.full(n_post, 1.0 / n_post)):
        normal = flci(study.beta, study.sigma, n_pre, l_vec, 0.0)
        small = flci(study.beta, study.sigma, n_pre, l_vec, 0.0, cluster_sums=sums)
        np.testing.assert_allclose(small.weights, normal.weights, rtol=0, atol=1e-12)
        df = combination_df(sums, small.weights)
        # the peer: satterthwaite_df of the combined influence function, unit by unit
        assert df == pytest.approx(satterthwaite_df(sums @ small.weights[:, None], np.arange(
            len(sums)), len(sums))[0], rel=1e-12)  # fmt: skip
        assert 2.0 < df < len(sums)
        centre = (normal.low + normal.high) / 2.0
        half = small.sd * stats.t.ppf(0.975, df)
        assert small.low == pytest.approx(centre - half, abs=1e-10)
        assert small.high == pytest.approx(centre + half, abs=1e-10)
        wider = flci(study.beta, study.sigma, n_pre, l_vec, 0.05, cluster_sums=sums)
        assert wider.half_length > flci(study.beta, study.sigma, n_pre, l_vec, 0.05).half_length
    options = {"methods": ["smoothness"], "m": (0.0, 0.05), "breakdown": False}
    plain = honest_did(study.beta, study.sigma, study.event_times, **options).table
    small_table = honest_did(
        study.beta, study.sigma, study.event_times, cluster_sums=sums, **options
    ).table
    same = plain["method"] != "smoothness"
    pd.testing.assert_frame_equal(plain[same], small_table[same])
    width = small_table["ci_high"] - small_table["ci_low"]
    assert (width[~same] > (plain["ci_high"] - plain["ci_low"])[~same]).all()
    with pytest.raises(ValueError, match="one column per estimate"):
        flci(study.beta, study.sigma, n_pre, l_vec, 0.0, cluster_sums=sums[:, 1:])


@pytest.mark.parametrize("n_pre", [2, 4])
def test_relative_magnitudes_at_mbar0_with_one_post_period_has_the_hybrid_closed_form(
    n_pre: int,
) -> None:
    """Mbar = 0 forces delta_1 = 0, so the moments are ``+/-(beta_1 - theta)``: the
    least-favourable value is ``z_{1-kappa/2}`` and the conditional test's truncation is
    ``[0, c_LF]``, so the interval is ``beta_1 +/- sd q`` with
    ``Phi(q) - 1/2 = (1 - alpha') (Phi(c_LF) - 1/2)``, ``alpha' = (alpha - kappa)/(1 - kappa)``
    (ARP's hybrid). Tolerance: 4 Monte Carlo SDs of ``c_LF`` (10,000 draws) through
    ``dq/dc_LF``."""
    sigma = _random_sigma(n_pre + 1, seed=5)
    beta = np.random.default_rng(6).normal(size=n_pre + 1)
    alpha, kappa = 0.05, 0.005
    level = (alpha - kappa) / (1 - kappa)
    c_lf = stats.norm.ppf(1 - kappa / 2)
    q = stats.norm.ppf(0.5 + (1 - level) * (stats.norm.cdf(c_lf) - 0.5))
    sd = np.sqrt(sigma[n_pre, n_pre])
    density = 2 * stats.norm.pdf(c_lf)
    mc_sd = np.sqrt((1 - kappa) * kappa / 10_000) / density
    tol = 4 * mc_sd * (1 - level) * stats.norm.pdf(c_lf) / stats.norm.pdf(q) * sd + 1e-6 * sd
    low, high = relative_magnitude_ci(beta, sigma, n_pre, np.array([1.0]), 0.0, random_state=1)
    assert low == pytest.approx(beta[n_pre] - q * sd, abs=tol)
    assert high == pytest.approx(beta[n_pre] + q * sd, abs=tol)


@pytest.fixture(scope="module")
def peer() -> dict:
    data = json.loads(GOLDEN.read_text())
    if data["peer"] is None:
        pytest.fail("tests/golden/honest_did_peer.json has no peer values: run step 2 of "
                    "benchmarks/honest_did_peer.py")  # fmt: skip
    return data


def test_smoothness_matches_honestdid(peer: dict) -> None:
    """Lengths agree to 0.5% and centres to 1% of the length. The peer draws its
    folded-normal quantile by simulation (1e6 draws: ~0.1% of the length at M = 0, where
    both are the same GLS extrapolation) and searches the bias-variance frontier on a
    100-point grid, so where M > 0 it lands on a slightly longer interval (never shorter
    here) centred on a nearby estimator: the half-length is flat near its minimum."""
    for case in peer["cases"]:
        beta, sigma = np.array(case["beta"]), np.array(case["sigma"])
        for row in case["smoothness"]:
            low, high = smoothness_ci(beta, sigma, case["n_pre"], np.array(row["l"]), row["m"])
            peer_low, peer_high = row["ci"]
            length = peer_high - peer_low
            assert high - low == pytest.approx(length, rel=0.005), (case["name"], row)
            assert high - low <= length * 1.0015, (case["name"], row)  # peer's MC error
            centre = (low + high) / 2 - (peer_low + peer_high) / 2
            assert abs(centre) <= 0.01 * length, (case["name"], row)


def test_relative_magnitudes_match_honestdid_on_its_grid(peer: dict) -> None:
    """Same grid of null values as the peer (no refinement): the accepted range agrees to
    one grid step (a null value within Monte Carlo error of the least-favourable critical
    value, 1,000 draws in the peer, may flip). honestdid 0.1.1 raises a TypeError on some
    targets with a nuisance parameter (``float()`` of a 2-d array in its LICQ branch);
    those are stored as errors and skipped."""
    compared = 0
    for case in peer["cases"]:
        beta, sigma = np.array(case["beta"]), np.array(case["sigma"])
        for row in case["relative_magnitude"]:
            if row["ci"] is None:  # the peer failed here (its error is stored)
                continue
            compared += 1
            grid = tuple(row["grid"])
            step = (grid[1] - grid[0]) / (case["grid_points"] - 1)
            low, high = relative_magnitude_ci(
                beta, sigma, case["n_pre"], np.array(row["l"]), row["mbar"], grid=grid,
                grid_points=case["grid_points"], refine=False,
            )  # fmt: skip
            assert low == pytest.approx(row["ci"][0], abs=step * 1.001), (case["name"], row)
            assert high == pytest.approx(row["ci"][1], abs=step * 1.001), (case["name"], row)
    assert compared >= 6


@pytest.fixture(scope="module")
def violated() -> tuple:
    """An event study with parallel trends broken by a known slope (0.15 a year)."""
    frame, truth = simulate_staggered(trend=0.0, pretrend_slope=0.15, random_state=11)
    cells = att_gt(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
        options=CellOptions(base_period="universal"),
    )
    return event_study_inputs(cells), truth


def test_the_simulated_violation_is_the_known_linear_trend(violated: tuple) -> None:
    study, truth = violated
    target = np.array([truth.dynamic(int(e)) + truth.violation(int(e)) for e in study.event_times])
    se = np.sqrt(np.diag(study.sigma))
    assert np.all(np.abs(study.beta - target) < 4 * se)
    pre = study.event_times < -1
    assert np.all(study.beta[pre] < 0)  # the slope shows up before adoption


def test_honest_intervals_cover_the_truth_where_the_usual_ones_do_not(violated: tuple) -> None:
    """At the true bounds (a linear violation: M = 0, Mbar = 1) the robust intervals of the
    late event times contain the true effect, which the usual ones miss by several SEs."""
    study, truth = violated
    result = honest_did(
        study.beta, study.sigma, study.event_times, mbar=(1.0,), m=(0.0,), breakdown=False
    )
    table = result.table
    late = table[table["event_time"] >= 3]
    true = late["event_time"].map(lambda e: truth.dynamic(int(e)))
    covered = (late["ci_low"] <= true) & (true <= late["ci_high"])
    assert not covered[late["method"] == "original"].any()
    assert covered[late["method"] != "original"].all()
    # Mbar = 1 is wider than the usual interval
    for target, rows in table.groupby("target"):
        width = (rows["ci_high"] - rows["ci_low"]).set_axis(rows["method"])
        assert width["relative_magnitude"] > width["original"], target


def test_breakdown_values_are_where_the_interval_reaches_zero() -> None:
    n_pre, n_post = 3, 2
    sigma = _random_sigma(n_pre + n_post, seed=2) * 0.1
    beta = np.array([-0.05, 0.02, -0.03, 0.6, 0.8])
    times = [-4, -3, -2, 0, 1]
    result = honest_did(beta, sigma, times, mbar=(0.0, 1.0), m=(0.0, 0.1))
    for row in result.breakdown.itertuples():
        l_vec = np.eye(n_post)[int(row.event_time)] if row.target != "average" else np.full(2, 0.5)
        ci = relative_magnitude_ci if row.method == "relative_magnitude" else smoothness_ci
        value = row.breakdown
        assert 0 < value < np.inf
        low, high = ci(beta, sigma, n_pre, l_vec, value)
        assert low <= 0 <= high
        low, high = ci(beta, sigma, n_pre, l_vec, value * 0.97)  # bisection to 1%
        assert not low <= 0 <= high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_times": [-2, 0, 1, 2, 3]}, "pre periods"),
        ({"event_times": [-5, -3, 0, 1, 2]}, "consecutive"),
        ({"methods": ["bounds"]}, "methods must be among"),
        ({"mbar": (-1.0,)}, ">= 0"),
        ({"event_times": [-3, -2, 0, 1]}, "entries for"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict, message: str) -> None:
    beta, sigma = np.zeros(5), np.eye(5) * 0.01
    args = {"event_times": [-4, -3, -2, 0, 1], **kwargs}
    with pytest.raises(ValueError, match=message):
        honest_did(beta, sigma, **args)


def test_other_errors() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        flci(np.zeros(4), np.eye(4), 2, np.ones(2), -0.1)
    with pytest.raises(ValueError, match="one weight per post period"):
        relative_magnitude_ci(np.zeros(4), np.eye(4), 2, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="square matrix"):
        smoothness_ci(np.zeros(4), np.eye(3), 2, np.ones(2), 1.0)
    frame, _ = simulate_staggered(n_units=300, n_clusters=20, random_state=0)
    cells = att_gt(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
    )
    with pytest.raises(ValueError, match="base_period='universal'"):
        event_study_inputs(cells)


def test_the_violation_only_adds_the_slope_to_the_adopting_cohorts() -> None:
    """The RNG stream is untouched: the panel with a slope is the default panel plus
    ``slope * (t - t_0)`` on firms of adopting cohorts."""
    base, truth0 = simulate_staggered(n_units=400, unbalanced=True, random_state=4)
    sloped, truth = simulate_staggered(
        n_units=400, unbalanced=True, random_state=4, pretrend_slope=0.2
    )
    pd.testing.assert_frame_equal(base.drop(columns="y"), sloped.drop(columns="y"))
    expected = 0.2 * (base["year"] - 2010) * (base["cohort"] > 0)
    np.testing.assert_allclose(sloped["y"] - base["y"], expected, atol=1e-12)
    assert truth0.pretrend_slope == 0.0 and truth.violation(2) == pytest.approx(0.6)


@pytest.mark.integration
def test_the_did_stage_writes_honest_tables_metrics_and_a_report_figure(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from test_did_stage import did_config
    from vaer.config import validate_config
    from vaer.pipeline import run_experiment

    raw = did_config(tmp_path, pilot_effect=0.2)
    raw["did"]["honest"] = {
        "enabled": True, "methods": ["relative_magnitude", "smoothness"], "mbar": [0.0, 1.0],
        "m": [0.0, 0.02],
    }  # fmt: skip
    result = run_experiment(validate_config(raw))
    did = result.did
    assert did is not None and did.honest is not None
    tables = result.out_dir / "tables"
    honest = pd.read_csv(tables / "honest_did.csv")
    assert list(honest.columns) == [
        "method", "bound_name", "bound", "target", "event_time", "estimate", "ci_low",
        "ci_high", "outcome", "inference",
    ]  # fmt: skip
    # printed: relative magnitudes and the small-cluster (folded t) smoothness FLCIs;
    # withheld: the normal intervals of the original rows (did_aggregates has the t ones)
    assert did.honest.smoothness_critical == "folded_t"
    printed = honest["method"] != "original"
    assert honest.loc[printed, ["ci_low", "ci_high"]].notna().all().all()
    assert honest.loc[~printed, ["ci_low", "ci_high"]].isna().all().all()
    assert honest.loc[~printed, "inference"].str.startswith("withheld").all()
    post = sorted(did.honest.event_times[did.honest.event_times >= 0].tolist())
    assert post == [0, 1, 2, 3, 4]  # 2012-2018 with cohorts 2014-2016
    assert set(honest["target"]) == {f"e={e}" for e in post} | {"average"}
    assert len(honest) == 6 * (1 + 2 + 2)  # original + two bounds per method, per target
    # the post-period estimates are the stage's own (a universal base changes only the pre)
    dynamic = pd.read_csv(tables / "did_aggregates.csv")
    dynamic = dynamic[(dynamic["aggregation"] == "dynamic") & (dynamic["estimator"] == "cs_did")]
    first = honest[(honest["method"] == "original") & (honest["target"] == "e=0")]
    row = dynamic[dynamic["key"] == 0]
    assert first["estimate"].item() == pytest.approx(row["estimate"].item(), abs=1e-10)
    breakdown = pd.read_csv(tables / "honest_did_breakdown.csv")
    assert len(breakdown) == 2 * 6
    assert (breakdown["breakdown"] >= 0).all()
    metrics = (
        MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        .get_run(result.run_id)
        .data.metrics
    )
    key = "did.honest.breakdown.relative_magnitude.average"
    average = breakdown[(breakdown["method"] == "relative_magnitude")]
    assert metrics[key] == pytest.approx(
        average[average["target"] == "average"]["breakdown"].item()
    )
    assert "did.honest.breakdown.smoothness.average" in metrics
    # did.honest.smoothness_critical: folded_normal withholds the smoothness rows
    normal = dataclasses.replace(
        did, honest=dataclasses.replace(did.honest, smoothness_critical="folded_normal")
    )
    table = normal.tables()["honest_did"]
    smooth = table["method"] == "smoothness"
    assert table.loc[smooth, ["ci_low", "ci_high"]].isna().all().all()
    assert table.loc[smooth, "inference"].str.contains("folded_t").all()
    assert not any(k.startswith("did.honest.breakdown.smoothness") for k in normal.metrics())
    assert result.report_path is not None
    html = result.report_path.read_text(encoding="utf-8")
    assert 'id="did-honest"' in html and "Relative magnitudes: average" in html


def test_the_stage_skips_honest_did_with_one_pre_period() -> None:
    from types import SimpleNamespace

    from vaer.config.did import DidConfig
    from vaer.did.stage import honest_stage

    frame, _ = simulate_staggered(n_units=600, n_clusters=30, random_state=2)
    sample = frame.rename(columns={"firm": "unit", "city": "cluster", "cohort": "cohort"})
    cells = att_gt(
        sample,
        PanelColumns(unit="unit", period="year", cohort="cohort", cluster="cluster", outcome="y"),
        options=CellOptions(base_period="universal"),
    )
    config = DidConfig(enabled=True, min_e=-2, base_period="universal", honest={"enabled": True})
    ctx = SimpleNamespace(progress=lambda message: None, seed=0)
    result, notes = honest_stage(ctx, sample, cells, config)  # type: ignore[arg-type]
    assert result is None and "honest DiD skipped" in notes[0] and "1 pre-period" in notes[0]
    with pytest.raises(ValueError, match="must be >= 0"):
        DidConfig(honest={"enabled": True, "mbar": [-1.0]})


def test_every_pre_period_change_can_be_the_largest() -> None:
    """Delta^RM is the union over all T_pre pre-period changes (and signs) of the
    polyhedra in which that change is the largest, as in R HonestDiD (``s`` in
    ``-(T_pre - 1), ..., 0``); moderndid 0.2.0 loops over one change fewer (not the
    earliest). The Mbar-row of each piece names its change."""
    from vaer.did.honest import relative_magnitude_pieces

    n_pre, n_post = 3, 2
    pieces = relative_magnitude_pieces(n_pre, n_post, 1.0)
    assert len(pieces) == 2 * n_pre
    named = set()
    for rows in pieces:
        pre_part = rows[0, :n_pre]  # - Mbar * sign * (delta_{s+1} - delta_s), pre columns
        named.add(tuple(np.abs(pre_part).round(12)))
    # changes d_-2 - d_-3, d_-1 - d_-2 and d_0 - d_-1 (d_0 = 0 is not a column)
    assert named == {(1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (0.0, 0.0, 1.0)}
    assert len(relative_magnitude_pieces(n_pre, n_post, 0.0)) == 1  # Mbar = 0: one set
