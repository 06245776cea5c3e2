from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from vaer.compute import LocalBackend, Observed, check_tracking_for, chunk_seeds, get_backend
from vaer.compute.local_cluster import LocalCluster
from vaer.compute.loopback import is_loopback, pin_ray_to_loopback
from vaer.config.compute import ComputeConfig
from vaer.config.estimators import NuisanceConfig
from vaer.estimators.nuisance import crossfit_predict, grouped_folds, make_regressor
from vaer.heterogeneity.rate import rank_average_treatment_effect


def _square(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_map_keeps_input_order_and_reports_progress(n_jobs: int) -> None:
    seen: list[tuple[int, int]] = []
    results = LocalBackend(n_jobs).map(_square, range(7), on_done=lambda d, t: seen.append((d, t)))
    assert [r[0] for r in results] == [i * i for i in range(7)]
    assert seen[-1] == (7, 7)
    assert [d for d, _ in seen] == list(range(1, 8))


def test_local_backend_rejects_bad_n_jobs() -> None:
    with pytest.raises(ValueError, match=r"`n_jobs` must be an int >= 1; got 0"):
        LocalBackend(0)


def test_get_backend_defaults_to_local() -> None:
    backend = get_backend(ComputeConfig(n_jobs=2))
    assert backend.name == "local" and backend.n_jobs == 2


def test_auto_jobs_use_every_core_only_for_large_runs() -> None:
    from vaer.config.estimators import AUTO_JOBS_MIN_ROWS

    auto = ComputeConfig()
    assert auto.n_jobs == "auto"
    assert get_backend(auto).n_jobs == 1  # size unknown
    assert get_backend(auto, n_units=AUTO_JOBS_MIN_ROWS - 1).n_jobs == 1
    assert get_backend(auto, n_units=AUTO_JOBS_MIN_ROWS).n_jobs == (os.cpu_count() or 1)
    assert get_backend(ComputeConfig(n_jobs=3), n_units=10).n_jobs == 3
    with pytest.raises(ValueError, match=r"`n_jobs` must be an int >= 1 or 'auto'; got 0"):
        ComputeConfig(n_jobs=0)


def test_ray_backend_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray shows
    with pytest.raises(ImportError, match=r"pip install 'vaer\[ray\]'"):
        get_backend(ComputeConfig(backend="ray", address="127.0.0.1:1"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (None, True),
        ("127.0.0.1:6379", True),
        ("localhost:1", True),
        ("ray://127.0.0.1:10001", True),
        ("10.0.0.5:6379", False),
        ("head.cluster.internal:6379", False),
    ],
)
def test_is_loopback(address: str | None, expected: bool) -> None:
    assert is_loopback(address) is expected


def test_local_as_completed_yields_every_position_once() -> None:
    found = dict(LocalBackend(2).as_completed(_square, [3, 1, 2]))
    assert sorted(found) == [0, 1, 2]
    assert [found[p][0] for p in range(3)] == [9, 1, 4]


def test_observed_reports_start_and_every_task() -> None:
    seen: list[tuple[int, int]] = []
    inner: list[tuple[int, int]] = []
    backend = Observed(LocalBackend(1), lambda d, t: seen.append((d, t)))
    results = backend.map(_square, [1, 2, 3], on_done=lambda d, t: inner.append((d, t)))
    assert [r[0] for r in results] == [1, 4, 9]
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert inner == [(1, 3), (2, 3), (3, 3)]
    assert [p for p, _ in backend.as_completed(_square, [5, 6])] == [0, 1]
    assert seen[-3:] == [(0, 2), (1, 2), (2, 2)]


def test_with_local_jobs_resizes_local_and_keeps_the_observer() -> None:
    local = LocalBackend(1)
    assert local.with_local_jobs(1) is local
    assert local.with_local_jobs(3).n_jobs == 3
    seen: list[tuple[int, int]] = []
    observed = Observed(local, lambda d, t: seen.append((d, t))).with_local_jobs(2)
    assert observed.n_jobs == 2
    observed.map(_square, [1])
    assert seen == [(0, 1), (1, 1)]


def test_chunk_seeds_depend_only_on_seed_and_sizes() -> None:
    chunks = chunk_seeds(7, 60, 25)
    assert [size for size, _ in chunks] == [25, 25, 10]
    assert chunks == chunk_seeds(7, 60, 25)
    assert len({seed for _, seed in chunks}) == 3
    assert chunks != chunk_seeds(8, 60, 25)
    assert chunk_seeds(7, 0, 25) == []


@pytest.mark.parametrize(
    ("n_items", "chunk", "message"),
    [(-1, 5, r"`n_items` must be an int >= 0; got -1"), (5, 0, r"`chunk` must be an int >= 1")],
)
def test_chunk_seeds_rejects_bad_sizes(n_items: int, chunk: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_seeds(1, n_items, chunk)


@pytest.mark.parametrize("uri", ["sqlite:///mlruns/mlflow.db", "file:///tmp/mlruns", "./mlruns"])
def test_ray_needs_a_tracking_server(uri: str) -> None:
    with pytest.raises(ValueError, match=r"compute.backend: ray needs an MLflow tracking server"):
        check_tracking_for(ComputeConfig(backend="ray"), uri)


def test_tracking_check_passes_servers_and_local_runs() -> None:
    check_tracking_for(ComputeConfig(backend="ray"), "http://127.0.0.1:5000")
    check_tracking_for(ComputeConfig(backend="ray"), "https://mlflow.example.org")
    check_tracking_for(ComputeConfig(), "sqlite:///mlruns/mlflow.db")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_cpus": 0}, r"`num_cpus` must be an int >= 1; got 0"),
        ({"worker_nodes": -1}, r"`worker_nodes` must be an int >= 0; got -1"),
    ],
)
def test_local_cluster_rejects_bad_sizes(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalCluster(**kwargs)


def test_crossfit_is_the_same_on_any_local_backend() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x[:, 0] + rng.normal(size=400)
    folds = grouped_folds(np.repeat(np.arange(20), 20), 4, random_state=1)
    model = make_regressor(NuisanceConfig(), 1)
    serial = crossfit_predict(model, x, y, folds)
    parallel = crossfit_predict(model, x, y, folds, backend=LocalBackend(2))
    np.testing.assert_array_equal(serial, parallel)
    assert np.corrcoef(serial, x[:, 0])[0, 1] > 0.8


def test_rate_bootstrap_is_the_same_on_any_backend() -> None:
    rng = np.random.default_rng(2)
    clusters = np.repeat(np.arange(30), 10)
    priority = rng.normal(size=300)
    scores = priority + rng.normal(size=300)
    one = rank_average_treatment_effect("e", priority, scores, clusters, n_bootstrap=60)
    two = rank_average_treatment_effect(
        "e", priority, scores, clusters, n_bootstrap=60, backend=LocalBackend(2)
    )
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_frame_equal(one.toc, two.toc)
    assert one.table["se"].gt(0).all()


def test_loopback_pin_reaches_a_ray_imported_before_it() -> None:
    pytest.importorskip("ray")
    import econml.dml  # noqa: F401  (imports Ray, reading the environment once)
    import ray._private.ray_constants as constants
    import ray._private.services as services

    previous = constants.ENABLE_RAY_CLUSTER
    try:
        constants.ENABLE_RAY_CLUSTER = True  # what a driver sees without the pin
        pin_ray_to_loopback()
        assert constants.ENABLE_RAY_CLUSTER is False
        assert services.get_node_ip_address() == "127.0.0.1"
    finally:
        constants.ENABLE_RAY_CLUSTER = previous
