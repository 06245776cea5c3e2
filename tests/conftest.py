"""Shared fixtures: a temporary MLflow store and small experiment configs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The slowest modules, slowest first (summed seconds of a whole-suite run, 2026-12-03):
# pytest-xdist's workers take whole modules in collection order (`--dist loadfile` with
# `--no-loadscope-reorder`, as the Makefile runs it), so the long ones start early and the
# many short ones fill in at the end, instead of a 200-second module starting last.
SLOWEST_MODULES = (
    "test_ray_cluster.py",  # 210 s
    "test_robustness.py",  # 163 s
    "test_golden_tables.py",  # 144 s (before its leave-one-group-out cut; 154 s beside Ray)
    "test_ui.py",  # 139 s
    "test_estimators_statistical.py",  # 131 s
    "test_tracking_robust.py",  # 88 s
    "test_wheel_install.py",  # 80 s
    "test_tracking_server.py",  # 73 s
    "test_attribution_statistical.py",  # 65 s
    "test_report.py",  # 63 s (155 s with apt-get installing LaTeX)
    "test_attribution_pipeline.py",  # 61 s
    "test_did_stage.py",  # 53 s
    "test_statistical.py",  # 52 s
    "test_pipeline.py",  # 48 s
    "test_estimators.py",  # 43 s
    "test_heterogeneity_statistical.py",  # 42 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules of ``SLOWEST_MODULES`` first, in its order (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


BASE_ROLES: dict[str, Any] = {
    "unit": "firm_id",
    "outcome": "resilience",
    "treatment": "va_index",
    "cluster": "city",
    "controls": ["city_dev", "productivity", "geo_agglom", "firm_age"],
    "modifiers": [
        "ownership",
        "size_class",
        "trade_mode",
        "factor_intensity",
        "region",
        "knowledge_spillover",
        "congestion",
        "supply_chain_flex",
        "market_response",
        "export_cost",
        "smart_green",
    ],
    "firm_types": ["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
}


def small_config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A fast experiment on the synthetic table, tracked in a store under ``tmp_path``."""
    raw: dict[str, Any] = {
        "name": "small",
        "seed": 3,
        "data": {"source": "synthetic", "synthetic": {"n_units": 1500, "n_clusters": 40}},
        "roles": copy.deepcopy(BASE_ROLES),
        "estimators": [
            {"kind": "causal_forest_dml", "params": {"n_estimators": 100, "cv": 3}},
            {"kind": "linear_dml", "params": {"cv": 3}},
        ],
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"},
        "report": {"out": str(tmp_path / "reports" / "{run_name}-{run_id}")},
        # the package defaults switch robustness on; a small test run leaves it off
        "robustness": {"enabled": False},
    }
    for key, value in changes.items():
        raw[key] = value
    return raw


def write_yaml(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run inside ``tmp_path`` with no inherited MLflow settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path
