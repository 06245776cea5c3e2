"""On a real Ray cluster (a head and one worker node started from the command line on
127.0.0.1) with a real ``mlflow server``: tasks reach both nodes, a whole experiment and
a 4-variant sweep give the local backend's numbers, and every run lands on the server.

Run these alone: two Ray clusters on one machine at once hang ``ray.init``.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from conftest import small_config, write_yaml
from processes import children_of, mlflow_server
from vaer.cli import app
from vaer.compute.local_cluster import LocalCluster
from vaer.compute.ray_backend import RayBackend
from vaer.config import validate_config
from vaer.data.synthetic import PANEL_ROLES
from vaer.pipeline import RunResult, run_experiment

pytest.importorskip("ray", reason="the `ray` extra is part of the dev environment")
pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOLERANCE = 1e-8  # deterministic stages: the same numbers, up to float noise


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A Ray head and one more worker node, one CPU each, all on 127.0.0.1."""
    import ray

    started = LocalCluster(num_cpus=1, worker_nodes=1).start()
    try:
        yield started
    finally:
        ray.shutdown()
        started.stop()
        assert started.processes == []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="module")
def backend(cluster: LocalCluster) -> RayBackend:
    return RayBackend(address=cluster.address)


def test_tasks_run_on_both_nodes(backend: RayBackend) -> None:
    def where(item: int) -> tuple[int, str, int]:
        import time

        import ray

        time.sleep(1.0)  # long enough that the one-CPU head cannot take every task
        return item * item, ray.get_runtime_context().get_node_id(), os.getpid()

    seen: list[tuple[int, int]] = []
    results = backend.map(where, range(6), on_done=lambda d, t: seen.append((d, t)))
    assert [r[0] for r in results] == [i * i for i in range(6)]
    assert backend.workers() == 2
    assert len({node for _, node, _ in results}) == 2
    assert seen == [(k, 6) for k in range(1, 7)]
    positions = sorted(p for p, _ in backend.as_completed(where, [1, 2, 3]))
    assert positions == [0, 1, 2]


def _experiment(tmp_path: Path, uri: str, compute: dict[str, Any], **changes: Any) -> Any:
    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 800, "n_clusters": 24}},
        estimators=[
            {"kind": "causal_forest_dml", "params": {"n_estimators": 48, "cv": 3}},
            {"kind": "linear_dml", "params": {"cv": 3}},
        ],
        heterogeneity={"n_bootstrap": 60},
        robustness={
            "enabled": True,
            "placebo_treatment": {"repeats": 2},
            "data_subsets": {"repeats": 2},
            "leave_one_group_out": {"enabled": False},
        },
        attribution={"n_units": 300},
        compute=compute,
        **changes,
    )
    raw["roles"]["mechanisms"] = {
        "knowledge_spillover": ["knowledge_spillover"],
        "export_cost": ["export_cost"],
    }
    raw["roles"]["mediators"] = {"knowledge_spillover": ["d_knowledge_spillover"]}
    raw["tracking"] = {"uri": uri, "experiment": "ray-test"}
    return raw


@pytest.fixture(scope="module")
def runs(
    cluster: LocalCluster, server: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunResult, RunResult]:
    tmp_path = tmp_path_factory.mktemp("runs")
    local = _experiment(tmp_path, server, {"backend": "local"})
    on_ray = _experiment(tmp_path, server, {"backend": "ray", "address": cluster.address})
    return run_experiment(validate_config(local)), run_experiment(validate_config(on_ray))


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns without wall times."""
    keep = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and "seconds" not in c and "time" not in c
    ]
    return frame[keep].reset_index(drop=True).astype(np.float64)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    text = [c for c in a.columns if not pd.api.types.is_numeric_dtype(a[c])]
    pd.testing.assert_frame_equal(a[text].reset_index(drop=True), b[text].reset_index(drop=True))
    np.testing.assert_allclose(
        _numeric(a).to_numpy(), _numeric(b).to_numpy(), rtol=0, atol=TOLERANCE
    )


def test_experiment_on_ray_equals_local(runs: tuple[RunResult, RunResult]) -> None:
    local, on_ray = runs
    for a, b in zip(local.estimation.estimators, on_ray.estimation.estimators, strict=True):
        assert a.label == b.label
        assert abs(a.ate.estimate - b.ate.estimate) < TOLERANCE
        assert abs(a.ate.se - b.ate.se) < TOLERANCE
        np.testing.assert_allclose(a.tau_hat, b.tau_hat, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=TOLERANCE)
    assert local.heterogeneity is not None and on_ray.heterogeneity is not None
    for name, table in local.heterogeneity.tables().items():
        _same(table, on_ray.heterogeneity.tables()[name])
    assert local.attribution is not None and on_ray.attribution is not None
    for name, table in local.attribution.tables().items():
        _same(table, on_ray.attribution.tables()[name])
    for a_shap, b_shap in zip(
        local.attribution.explanations, on_ray.attribution.explanations, strict=True
    ):
        np.testing.assert_allclose(a_shap.values, b_shap.values, rtol=0, atol=TOLERANCE)
    assert local.robustness is not None and on_ray.robustness is not None
    _same(local.robustness.to_frame(), on_ray.robustness.to_frame())
    # the heterogeneity stage really bootstrapped: RATE SEs from 60 replicates
    assert (local.heterogeneity.tables()["rate"]["se"] > 0).all()


def test_both_runs_landed_on_the_server(server: str, runs: tuple[RunResult, RunResult]) -> None:
    client = MlflowClient(tracking_uri=server)
    for result, backend in zip(runs, ("local", "ray"), strict=True):
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["compute.backend"] == backend
        assert run.data.metrics["ate.linear_dml.estimate"] == pytest.approx(
            result.estimation.estimators[1].ate.estimate
        )


def test_ray_run_refuses_a_local_store(cluster: LocalCluster, tmp_path: Path) -> None:
    raw = _experiment(tmp_path, "x", {"backend": "ray", "address": cluster.address})
    raw["tracking"] = {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    path = write_yaml(tmp_path / "study.yaml", raw)
    done = CliRunner().invoke(app, ["run", str(path)])
    assert done.exit_code == 2
    assert "compute.backend: ray needs an MLflow tracking server" in done.output
    assert not (tmp_path / "mlflow.db").exists()


def test_sweep_on_ray_lands_every_child_with_local_numbers(
    cluster: LocalCluster, server: str, tmp_path: Path
) -> None:
    raw = _experiment(
        tmp_path, server, {"backend": "ray", "address": cluster.address}, name="ray-sweep"
    )
    raw["tracking"]["experiment"] = "ray-sweep"
    for stage in ("heterogeneity", "robustness", "attribution"):
        raw[stage] = {"enabled": False}  # the run above covers them
    raw["sweep"] = {"grid": {"estimators.0.params.min_samples_leaf": [5, 20]}, "seeds": [2]}
    path = write_yaml(tmp_path / "sweep.yaml", raw)
    done = CliRunner().invoke(app, ["sweep", str(path)])
    assert done.exit_code == 0, done.output
    parent_id = done.output.split("MLflow parent run id:")[1].split()[0]
    client = MlflowClient(tracking_uri=server)
    assert client.get_run(parent_id).data.metrics["sweep.finished"] == 2
    children = children_of(client, parent_id)
    assert len(children) == 2
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["vaer.sweep.backend"] == "ray"
        leaf, seed = (
            child.data.params["estimators.0.params.min_samples_leaf"],
            child.data.params["seed"],
        )
        local = copy.deepcopy(raw)
        del local["sweep"]
        local.update(seed=int(seed), compute={"backend": "local"}, tracking={"enabled": False})
        local["estimators"][0]["params"]["min_samples_leaf"] = int(leaf)
        expected = run_experiment(validate_config(local)).estimation.estimators
        for result in expected:
            key = f"ate.{result.label}.estimate"
            assert abs(child.data.metrics[key] - result.ate.estimate) < TOLERANCE


def test_run_with_no_address_starts_and_stops_its_own_cluster(
    cluster: LocalCluster, server: str, tmp_path: Path
) -> None:
    raw = _experiment(tmp_path, server, {"backend": "ray", "address": None}, name="own-cluster")
    for stage in ("heterogeneity", "robustness", "attribution"):
        raw[stage] = {"enabled": False}
    path = write_yaml(tmp_path / "own.yaml", raw)
    before = set(Path("/tmp").glob("vaer-ray-*"))
    vaer = Path(sys.executable).parent / "vaer"
    done = subprocess.run(
        [str(vaer), "run", str(path)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.split("MLflow run id:")[1].split()[0]
    run = MlflowClient(tracking_uri=server).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["compute.address"] == "None"
    # its one-node cluster is gone with it: no session folder of its own is left
    assert set(Path("/tmp").glob("vaer-ray-*")) <= before


class _Recording:
    """The run's real Ray backend, noting the task function of every ``map`` it is given."""

    def __init__(self, backend: RayBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.functions: list[str] = []

    def with_local_jobs(self, n_jobs: int) -> _Recording:
        return self

    def as_completed(self, function: Any, items: Any) -> Any:
        self.functions.append(type(function).__name__)
        return self.backend.as_completed(function, items)

    def map(self, function: Any, items: Any, *, on_done: Any = None) -> list[Any]:
        self.functions.append(type(function).__name__)
        return self.backend.map(function, items, on_done=on_done)


def test_did_cells_on_ray_equal_local(backend: RayBackend, tmp_path: Path) -> None:
    """cs_did's and dml_did's (g, t) cells, one Ray task per cell sample, give the local
    run's did tables bit for bit, and the progress bar follows the cell samples."""
    raw: dict[str, Any] = {
        "name": "did-ray",
        "seed": 5,
        "data": {
            "source": "synthetic",
            "mode": "panel",
            "panel": {"n_firms": 1500, "n_cities": 60, "n_industries": 10},
        },
        "roles": copy.deepcopy(PANEL_ROLES),
        "estimators": [{"kind": "linear_dml", "params": {"cv": 2}}],
        "nuisance": {"params": {"n_estimators": 30}},
        "heterogeneity": {"enabled": False, "dimensions": []},  # no ATT by type
        "attribution": {"enabled": False},
        "did": {
            "enabled": True,
            "first_year": 2012,
            "last_year": 2018,
            "estimators": ["cs_did", "dml_did"],
            "covariates": ["productivity", "firm_age"],
            "dml_folds": 3,
        },
        "tracking": {"enabled": False},
    }
    local = run_experiment(
        validate_config({**raw, "report": {"out": str(tmp_path / "local")}, "compute": {}})
    )
    on_ray = {**raw, "report": {"out": str(tmp_path / "ray")}}
    on_ray["compute"] = {"backend": "ray", "address": backend.address}
    recording = _Recording(backend)
    messages: list[str] = []
    tasks: list[tuple[int, int]] = []
    remote = run_experiment(
        validate_config(on_ray),
        backend=recording,
        progress=messages.append,
        on_task=lambda done, total: tasks.append((done, total)),
    )
    # every sample of cs_did's and of dml_did's cells was a Ray task
    assert recording.functions.count("_SampleFit") == 2
    assert local.did is not None and remote.did is not None
    assert remote.did.dml is not None and len(remote.did.dml.att) > 0
    local_tables, ray_tables = local.did.tables(), remote.did.tables()
    assert set(local_tables) == set(ray_tables) and "att_gt" in ray_tables
    for name, table in local_tables.items():
        pd.testing.assert_frame_equal(table, ray_tables[name], check_exact=True)
    np.testing.assert_array_equal(local.did.dml.influence, remote.did.dml.influence)
    # the progress bar: 0, 1, ..., n of dml_did's n cell samples, as they finished
    last = [m for m in messages if m.startswith("DiD: dml_did cell samples")][-1]
    samples = int(last.rsplit("/", 1)[1])
    assert samples > 3  # an unbalanced panel: more samples than cohorts
    start = tasks.index((0, samples))
    assert tasks[start : start + samples + 1] == [(k, samples) for k in range(samples + 1)]
