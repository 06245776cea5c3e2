"""The report in a real browser: headless Chromium, network blocked, opened from disk."""

from __future__ import annotations

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
async () => {
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
}
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
def test_report_opens_offline_in_chromium(full_report: Path) -> None:
    requests: list[str] = []
    failed: list[str] = []
    console: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda request: requests.append(request.url))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: console.append(str(error)))
        page.set_viewport_size({"width": 1100, "height": 900})
        page.goto(full_report.as_uri(), wait_until="load")
        found = json.loads(page.evaluate(CHECK_PAGE))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)

    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    assert failed == []
    assert console == []
    expected = ["summary", "data", *(s.id for s in SECTIONS), "truth", "reproducibility"]
    assert found["ids"] == expected
    kinds = {item["kind"] for item in found["images"]}
    assert {"svg", "svg-image"} <= kinds
    assert all(item["ok"] for item in found["images"]), found["images"]
    figures = full_report.read_text(encoding="utf-8").count("<svg")
    assert figures >= 6  # treatment, CATE, GATE forest, TOC, channel shares and heatmap, ...
    assert len([i for i in found["images"] if i["kind"] == "svg"]) == figures
