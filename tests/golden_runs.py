"""Two small runs whose tables are committed under ``tests/golden/`` (behaviour guard).

``make golden`` (``python tests/golden_runs.py`` with the Makefile's float pinning)
rewrites the committed tables from the current code; run it only when a change is *meant*
to change numbers, and say so in the commit message.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"

# tables whose content is wall-clock or machine dependent
VOLATILE_COLUMNS = {"seconds", "fit_seconds", "time", "elapsed"}


def golden_configs(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """A panel run with every stage (tuning included) and a table run with an instrument."""
    from vaer.data.synthetic import PANEL_ROLES

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import small_config

    panel_roles = copy.deepcopy(PANEL_ROLES)
    panel = {
        "name": "golden_panel",
        "seed": 11,
        "data": {
            "source": "synthetic",
            "mode": "panel",
            "panel": {
                "n_firms": 1500,
                "n_cities": 40,
                "n_industries": 20,
                "missing_rate": 0.0,
            },
        },
        "roles": panel_roles,
        "estimators": [
            {"kind": "causal_forest_dml", "params": {"n_estimators": 48, "cv": 3}},
            {"kind": "linear_dml", "params": {"cv": 3}},
        ],
        "tune": {"enabled": True, "forest_grid": [{}, {"min_samples_leaf": 20}]},
        "robustness": {
            "enabled": True,
            "placebo_shock": {"enabled": True},
            "alternative_measures": {"enabled": True},
            # one firm type: every level of all five took 12 more refits (35 s)
            "leave_one_group_out": {"dimensions": ["ownership"]},
        },
        "attribution": {"n_units": 300, "refit_trees": 24},
        "tracking": {"enabled": False},
        "report": {"out": str(tmp_path / "panel"), "formats": ["csv"]},
    }
    table = small_config(tmp_path, name="golden_table", seed=12)
    table["data"]["synthetic"] = {"n_units": 2000, "n_clusters": 40}
    mechanisms = copy.deepcopy(PANEL_ROLES["mechanisms"])
    table["roles"].update(
        instrument="pilot",
        mechanisms=mechanisms,
        mediators={c: [f"d_{p}" for p in proxies] for c, proxies in mechanisms.items()},
    )
    table["estimators"] = [
        {"kind": "causal_forest_dml", "params": {"n_estimators": 48, "cv": 3}},
        {"kind": "linear_dml", "params": {"cv": 3}},
        {"kind": "orthoiv", "params": {"cv": 3}},
        {"kind": "causal_iv_forest", "params": {"n_estimators": 48, "cv": 3}},
        {"kind": "dr_learner", "params": {"cv": 3}},
    ]
    table["robustness"] = {
        "enabled": True,
        "leave_one_group_out": {"enabled": True, "dimensions": ["ownership"]},
    }
    table["tracking"] = {"enabled": False}
    table["report"] = {"out": str(tmp_path / "table"), "formats": ["csv"]}
    table["attribution"] = {"n_units": 300, "refit_trees": 24}
    return {"panel": panel, "table": table}


def run_golden(name: str, tmp_path: Path) -> dict[str, pd.DataFrame]:
    """Run one golden experiment and return its tables by name (volatile columns dropped)."""
    from vaer.config import validate_config
    from vaer.pipeline import run_experiment

    result = run_experiment(validate_config(golden_configs(tmp_path)[name]))
    tables = {}
    for path in sorted((result.out_dir / "tables").glob("*.csv")):
        frame = pd.read_csv(path)
        tables[path.stem] = frame.drop(columns=[c for c in frame if c in VOLATILE_COLUMNS])
    return tables


def main() -> None:
    import tempfile

    for name in ("panel", "table"):
        with tempfile.TemporaryDirectory() as tmp:
            tables = run_golden(name, Path(tmp))
        target = GOLDEN / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for stem, frame in tables.items():
            # mtime 0: the same table gives the same bytes
            gzip = {"method": "gzip", "mtime": 0}
            frame.to_csv(target / f"{stem}.csv.gz", index=False, compression=gzip)
        print(f"{name}: {len(tables)} tables -> {target}")


if __name__ == "__main__":
    main()
