"""The benchmark designs (``benchmarks/designs.py``): truth, nuisances and input checks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from designs import DESIGNS, DesignData, draw, ihdp, nie_wager, synthetic_table, wager_athey
from vaer.config.models import SyntheticTableConfig
from vaer.data.synthetic_table import SyntheticTable, make_synthetic_table


def _large(name: str) -> DesignData:
    if name.startswith("nw_"):
        return nie_wager(name[-1].upper(), n=40_000, random_state=1)
    if name == "wa":
        return wager_athey(n=40_000, random_state=1)
    if name == "ihdp":
        return ihdp(random_state=1)
    return synthetic_table(n=40_000, n_clusters=800, hard=name == "table_hard", random_state=1)


def _cluster_mean_z(values: np.ndarray, clusters: np.ndarray) -> float:
    """|mean| / cluster-robust SE of a mean."""
    sums = np.bincount(clusters, weights=values - values.mean())
    se = np.sqrt(np.sum(sums**2)) / len(values)
    return abs(float(values.mean())) / se


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_truth_shapes_and_ate(name: str) -> None:
    data = draw(name, 0)
    n = data.n
    for array in (data.y, data.t, data.tau, data.m, data.e, data.clusters):
        assert array.shape == (n,)
    assert data.x.shape[0] == n and data.w.shape[0] == n
    assert np.all(np.isfinite(data.x)) and np.all(np.isfinite(data.y))
    assert data.ate == pytest.approx(float(np.mean(data.tau)))
    if data.binary:
        assert set(np.unique(data.t)) == {0.0, 1.0}
        assert np.all((data.e >= 0) & (data.e <= 1))


@pytest.mark.parametrize("name", [n for n in sorted(DESIGNS) if n != "ihdp"])
def test_nuisances_match_monte_carlo(name: str) -> None:
    """With the true m, e, tau: E[T - e | X] = 0, E[Y - m | X] = 0, and the partially
    linear residual Y - m - tau (T - e) is uncorrelated with T - e and with each feature.
    Each moment is checked at |z| < 4 with cluster-robust SEs."""
    data = _large(name)
    t_res = data.t - data.e
    y_res = data.y - data.m
    eps = y_res - data.tau * t_res
    features = np.column_stack([data.x, data.w])
    moments = [t_res, y_res, eps * t_res]
    for j in range(features.shape[1]):
        f = (features[:, j] - features[:, j].mean()) / (features[:, j].std() or 1.0)
        moments += [t_res * f, y_res * f]
    z = [_cluster_mean_z(v, data.clusters) for v in moments]
    assert max(z) < 4.5, f"largest |z| {max(z):.2f} at moment {int(np.argmax(z))}"


def test_wrong_nuisance_is_detected() -> None:
    """The check above has power: dropping the confounding term from e(x) fails it."""
    data = _large("table")
    wrong = data.e - 0.4 * data.w[:, 1]  # productivity's share of E[VA | X, W] removed
    z = _cluster_mean_z((data.t - wrong) * (data.w[:, 1] - data.w[:, 1].mean()), data.clusters)
    assert z > 10


def test_ihdp_effect_on_treated_is_four_and_nuisances_exact() -> None:
    data = ihdp(random_state=3)
    assert data.n == 747
    assert float(np.mean(data.tau[data.t == 1])) == pytest.approx(4.0, abs=1e-10)
    white = data.w[:, 0] == 1
    assert np.all(data.e[~white] == 0)
    assert data.e[white][0] == pytest.approx(float(np.mean(data.t[white])))
    # no noise in m beyond eps: within each arm, Y - m - tau (T - e) is pure N(0, 1) noise
    eps = data.y - data.m - data.tau * (data.t - data.e)
    assert abs(float(np.mean(eps))) < 4 / np.sqrt(data.n)
    assert float(np.std(eps)) == pytest.approx(1.0, abs=0.1)


def test_ihdp_draws_differ_by_seed() -> None:
    assert not np.allclose(ihdp(random_state=0).tau, ihdp(random_state=1).tau)


@pytest.mark.parametrize(
    ("setup", "column", "expected"),
    [("A", 0, None), ("C", None, 1.0)],
)
def test_nie_wager_effects(setup: str, column: int | None, expected: float | None) -> None:
    data = nie_wager(setup, n=500, random_state=0)
    if expected is not None:
        assert np.all(data.tau == expected)
    else:
        assert np.allclose(data.tau, (data.x[:, 0] + data.x[:, 1]) / 2)
        assert data.e.min() >= 0.1 and data.e.max() <= 0.9


def test_wager_athey_effect_range() -> None:
    data = wager_athey(n=2000, random_state=0)
    assert data.tau.min() >= 1.0 and data.tau.max() <= 4.0
    assert np.all(data.m == 0)


def test_table_gates_and_hard_setting() -> None:
    easy = synthetic_table(n=2000, n_clusters=40, random_state=0)
    hard = synthetic_table(n=2000, n_clusters=40, hard=True, random_state=0)
    gates = easy.gates()
    assert set(gates.index) == {"SOE", "private", "foreign"}
    assert gates["private"] > gates["SOE"]
    assert hard.tau.std() == pytest.approx(0.5 * easy.tau.std(), rel=1e-9)
    assert np.std(hard.e) > 1.5 * np.std(easy.e)


def test_exact_nuisances_need_config() -> None:
    table = make_synthetic_table(SyntheticTableConfig(n_units=300, n_clusters=10))
    bare = SyntheticTable(frame=table.frame, truth=table.truth)
    with pytest.raises(ValueError, match="exact_nuisances needs the generator's parameters"):
        bare.exact_nuisances()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: nie_wager("A", n=10), r"`n` must be an int >= 50 for design 'nw_a'; got 10"),
        (lambda: nie_wager("B", d=3), r"`d` must be an int >= 5 for design 'nw_b'; got 3"),
        (lambda: nie_wager("E"), r"`setup` must be one of 'A', 'B', 'C', 'D'; got 'E'"),
        (lambda: nie_wager("A", sigma=0.0), r"`sigma` must be > 0; got 0.0"),
        (lambda: wager_athey(n=2.5), r"`n` must be an int >= 50 for design 'wa'; got 2.5"),
        (lambda: wager_athey(d=1), r"`d` must be an int >= 2 for design 'wa'; got 1"),
        (lambda: synthetic_table(n=100), r"`n` must be an int >= 200 for design 'table'"),
        (lambda: synthetic_table(n_clusters=5), r"`n_clusters` must be an int >= 10; got 5"),
        (lambda: draw("nope", 0), r"unknown design 'nope'; known designs: nw_a"),
        (lambda: nie_wager("A").__class__.gates(nie_wager("A")), r"has no groups"),
    ],
)
def test_bad_input_raises(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_unit_coverage_counts_intervals_holding_the_truth() -> None:
    from accuracy import unit_coverage

    tau = np.zeros(4)
    tau_hat = np.array([0.0, 1.0, 2.5, -1.9])
    se = np.ones(4)  # half-width 1.96: units 0, 1 and 3 are covered, unit 2 is not
    assert unit_coverage(tau_hat, se, tau) == pytest.approx(0.75)
    assert np.isnan(unit_coverage(tau_hat, None, tau))
    assert np.isnan(unit_coverage(tau_hat, np.array([1.0, np.nan, 1.0, 1.0]), tau))


def test_tuning_family_is_the_synthetic_table() -> None:
    from accuracy import TUNING, family

    assert {"table", "table_hard"} == TUNING
    assert {name for name in DESIGNS if family(name) == "tuning"} == TUNING
    assert family("nw_a") == "held apart"
