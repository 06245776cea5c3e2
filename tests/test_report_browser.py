"""The report in a real browser: headless Chromium, network blocked, opened from disk."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from browser_setup import chromium_page
from conftest import ROOT, small_config
from report_fixtures import add_missing_stages
from vaer.config import validate_config
from vaer.pipeline import run_experiment
from vaer.reporting import ReportBundle
from vaer.reporting.html import write_html
from vaer.reporting.sections import SECTIONS

ARTIFACTS = ROOT / "test-artifacts"

CHECK_PAGE = """
(async () => {
  const ids = [...document.querySelectorAll('section[id], footer[id]')].map(e => e.id);
  const images = [];
  for (const img of document.querySelectorAll('img')) {
    try { await img.decode(); } catch (e) {}
    images.push({kind: 'img', ok: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0});
  }
  for (const svg of document.querySelectorAll('figure svg')) {
    const box = svg.getBoundingClientRect();
    images.push({kind: 'svg', ok: box.width > 0 && box.height > 0});
  }
  for (const inner of document.querySelectorAll('svg image')) {
    const href = inner.getAttribute('xlink:href') || inner.getAttribute('href');
    const probe = new Image();
    probe.src = href;
    let ok = true;
    try { await probe.decode(); } catch (e) { ok = false; }
    images.push({kind: 'svg-image', ok: ok && probe.naturalWidth > 0});
  }
  return JSON.stringify({ids, images, height: document.documentElement.scrollHeight});
})()
"""


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run's report with every other stage's tables added to its bundle."""
    tmp_path = tmp_path_factory.mktemp("browser")
    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 800, "n_clusters": 25}},
        estimators=[{"kind": "linear_dml", "params": {"cv": 3}}],
        tracking={"enabled": False},
    )
    result = run_experiment(validate_config(raw))
    bundle = ReportBundle.read(result.out_dir)
    bundle = ReportBundle(tables=add_missing_stages(bundle.tables), meta=bundle.meta)
    return write_html(bundle, tmp_path / "full")


@pytest.mark.slow
@pytest.mark.integration
def test_report_opens_offline_in_chromium(full_report: Path, tmp_path: Path) -> None:
    with chromium_page(tmp_path / "profile") as page:
        for domain in ("Page", "Network", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1100, height=900,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        page.call("Page.navigate", url=full_report.as_uri())
        page.wait_for("Page.loadEventFired")
        checked = page.call(
            "Runtime.evaluate", expression=CHECK_PAGE, awaitPromise=True, returnByValue=True
        )
        found = json.loads(checked["result"]["value"])
        page.call("Emulation.setDeviceMetricsOverride", width=1100, height=found["height"],
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        events = list(page.events)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.png").write_bytes(base64.b64decode(shot["data"]))

    requests = [e["params"]["request"]["url"] for e in events
                if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    failed = [e["params"] for e in events if e.get("method") == "Network.loadingFailed"]
    assert failed == []
    console = [
        e["params"]
        for e in events
        if (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert console == []
    expected = ["summary", "data", *(s.id for s in SECTIONS), "truth", "reproducibility"]
    assert found["ids"] == expected
    kinds = {item["kind"] for item in found["images"]}
    assert {"svg", "svg-image"} <= kinds
    assert all(item["ok"] for item in found["images"]), found["images"]
    figures = full_report.read_text(encoding="utf-8").count("<svg")
    assert figures >= 6  # treatment, CATE, GATE forest, TOC, channel shares and heatmap, ...
    assert len([i for i in found["images"] if i["kind"] == "svg"]) == figures
