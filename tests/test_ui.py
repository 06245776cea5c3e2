"""The MLflow UI: experiment kind and saved view, each run's headline, ``vaer ui`` stopping
its whole process group, and the experiment page in headless Chromium (Playwright)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import vaer
from browser_setup import chromium_page
from conftest import ROOT, small_config
from vaer.compute.local_cluster import free_port
from vaer.config import validate_config
from vaer.pipeline import RunResult, run_experiment
from vaer.reporting import ReportBundle
from vaer.tracking.headline import NOTE_TAG, run_headline, sweep_description
from vaer.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    VIEW_KEY,
    VIEW_TAG,
    WORKFLOW_QUERY,
    ensure_experiment,
)

SRC = Path(vaer.__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DR = "cluster-robust (DR scores)"


# --- the headline, from tables with known values ----------------------------------------


def test_headline_lists_every_estimator_and_the_top_channel() -> None:
    ate = pd.DataFrame(
        {
            "estimator": ["causal_forest_dml", "linear_dml", "linear_dml"],
            "estimand": ["APE"] * 3,
            "estimate": [0.5, 0.25, 0.3],
            "ci_low": [0.3, 0.1, 0.2],
            "ci_high": [0.7, 0.4, 0.4],
            "se_type": [DR, DR, "econml (not cluster-robust)"],
        }
    )
    channels = pd.DataFrame(
        {
            "estimator": ["causal_forest_dml"] * 2 + ["linear_dml"],
            "channel": ["export_cost", "knowledge_spillover", "export_cost"],
            "share": [0.2, 0.8, 0.9],
            "ci_low": [0.0, 0.6, 0.7],
            "ci_high": [0.4, 1.0, 1.0],
        }
    )
    headline = run_headline({"ate": ate, "shap_channels": channels})
    text = headline.description()
    first, rest = text.split("\n\n")
    assert first == "ATE 0.5 [0.3, 0.7] (causal_forest_dml); top channel knowledge_spillover"
    assert "- causal_forest_dml: 0.5 [0.3, 0.7]" in rest
    assert "- linear_dml: 0.25 [0.1, 0.4]" in rest and "0.3 [0.2" not in rest
    assert "**Top channel**: knowledge_spillover, share 0.8 [0.6, 1]" in rest
    assert headline.metrics() == {
        "headline.ate": 0.5,
        "headline.ate_ci_low": 0.3,
        "headline.ate_ci_high": 0.7,
        "headline.top_share": 0.8,
    }


def test_headline_of_a_run_without_tables_is_empty() -> None:
    headline = run_headline({})
    assert headline.description() == "" and headline.metrics() == {}


def test_sweep_description_gives_the_ate_across_variants() -> None:
    text = sweep_description(
        4, 1, {"sweep.ate.linear_dml.estimate.mean": 0.61, "sweep.ate.linear_dml.estimate.sd": 0.02}
    )
    assert text.startswith("**Sweep** of 4 variants (1 failed)")
    assert "- ATE linear_dml: mean 0.61 (SD 0.02 across variants)" in text


# --- the experiment's kind and saved view -----------------------------------------------


def test_experiments_are_model_training_unless_the_user_chose(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    created = ensure_experiment(uri, "new")
    assert client.get_experiment(created).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    view = json.loads(client.get_experiment(created).tags[VIEW_TAG])
    assert "metrics.`headline.ate`" in json.loads(view["state"])["selectedColumns"]
    plain = client.create_experiment("made elsewhere")  # no kind: vaer reusing it sets one
    chosen = client.create_experiment("genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert ensure_experiment(uri, "made elsewhere") == plain
    assert ensure_experiment(uri, "genai") == chosen
    assert client.get_experiment(plain).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"
    assert VIEW_TAG in client.get_experiment(chosen).tags


# --- a real run, and `vaer ui` on its store ---------------------------------------------


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, str]:
    """One small tracked run (linear DML, two mechanism channels) and its store's URI."""
    tmp_path = tmp_path_factory.mktemp("ui")
    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 600, "n_clusters": 20}},
        estimators=[{"kind": "linear_dml", "params": {"cv": 2}}],
    )
    raw["roles"]["mechanisms"] = {
        "knowledge_spillover": ["knowledge_spillover"],
        "export_cost": ["export_cost"],
    }
    result = run_experiment(validate_config(raw))
    return result, raw["tracking"]["uri"]


@pytest.mark.integration
def test_run_carries_its_headline(one_run: tuple[RunResult, str]) -> None:
    result, uri = one_run
    run = MlflowClient(tracking_uri=uri).get_run(result.run_id)
    tables = ReportBundle.read(result.out_dir).tables
    assert run.data.tags[NOTE_TAG] == run_headline(tables).description()
    dr = tables["ate"][tables["ate"]["se_type"] == DR].iloc[0]
    assert run.data.metrics["headline.ate"] == pytest.approx(dr["estimate"])
    assert run.data.metrics["headline.ate_ci_low"] == pytest.approx(dr["ci_low"])
    assert run.data.metrics["headline.ate_ci_high"] == pytest.approx(dr["ci_high"])
    channels = tables["shap_channels"]
    assert run.data.metrics["headline.top_share"] == pytest.approx(channels["share"].max())
    top = channels.loc[channels["share"].idxmax(), "channel"]
    assert f"top channel {top}" in run.data.tags[NOTE_TAG].split("\n")[0]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of a live process, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _descendants(root: int) -> set[int]:
    parents = {pid: stat[0] for pid in _all_pids() if (stat := _stat(pid)) is not None}
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _port_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (connections the stopped server left in
    TIME_WAIT do not count: servers bind with SO_REUSEADDR, as uvicorn does)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def vaer_ui(uri: str, port: int, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``vaer ui`` on ``port`` as a subprocess (this checkout's code); yields it and its
    output once the server answers; kills whatever is left afterwards."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "300"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-c", "from vaer.cli import main; main()", "ui"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--uri", uri], stdout=out, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vaer ui did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.5)
        yield process, log.read_text(errors="replace")
    finally:
        for pid in [process.pid, *_descendants(process.pid)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


@pytest.mark.integration
@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: str(s.name)
)
def test_ui_stops_its_whole_process_group(sig: signal.Signals, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    port = free_port()
    with vaer_ui(uri, port, tmp_path / "ui.log") as (process, _):
        tree = _descendants(process.pid)
        groups = {stat[1] for pid in tree if (stat := _stat(pid)) is not None}
        (server_group,) = groups - {os.getpgid(process.pid)}  # the server's own session
        in_group = [pid for pid in tree if (_stat(pid) or (0, 0))[1] == server_group]
        assert len(in_group) >= 2, in_group  # uvicorn and the workers it started
        process.send_signal(sig)  # to `vaer ui` alone, as a terminal or a supervisor would
        assert process.wait(timeout=90) == 0, (tmp_path / "ui.log").read_text()
        left = [pid for pid in _all_pids() if (_stat(pid) or (0, 0))[1] == server_group]
        assert left == []
        assert [pid for pid in tree if _stat(pid) is not None] == []
        assert _port_free(port)
    assert f"MLflow UI stopped ({sig.name})" in (tmp_path / "ui.log").read_text()


@pytest.mark.integration
@pytest.mark.slow
def test_experiment_page_shows_the_run_and_its_ate(
    one_run: tuple[RunResult, str], tmp_path: Path
) -> None:
    result, uri = one_run
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    ate = run.data.metrics["headline.ate"]
    port = free_port()
    with vaer_ui(uri, port, tmp_path / "ui.log") as (_, printed):
        page_url = re.search(
            rf"http://127\.0\.0\.1:{port}/#/experiments/{run.info.experiment_id}/runs\S*", printed
        )
        assert page_url is not None, printed
        assert page_url.group(0).endswith(f"?{WORKFLOW_QUERY}&viewStateShareKey={VIEW_KEY}")
        experiment = f"http://127.0.0.1:{port}/#/experiments/{run.info.experiment_id}"
        with chromium_page(offline=False) as page:
            page.set_viewport_size({"width": 2200, "height": 900})
            # MLflow 3.17 opens an experiment on the GenAI overview whatever its kind tag ...
            page.goto(experiment)
            page.wait_for_url(re.compile(r".*/overview.*"), timeout=120_000)
            # ... and on its runs in the Model training workflow, as vaer ui links it
            page.goto(f"{experiment}?{WORKFLOW_QUERY}")
            page.get_by_text(result.run_name).first.wait_for(timeout=120_000)
            assert f"/experiments/{run.info.experiment_id}/runs" in page.url
            # the printed page: the run with its description and headline columns
            page.goto(page_url.group(0))
            page.get_by_text("vaer: headline").first.wait_for(timeout=120_000)
            page.get_by_text(f"{ate:.6f}"[:7]).first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "mlflow_ui.png"))
    assert result.run_name in body
    assert "headline.ate" in body
    assert run.data.tags[NOTE_TAG].split("\n")[0][:30] in body  # the Description column
    assert f"{ate:.6f}"[:7] in body
