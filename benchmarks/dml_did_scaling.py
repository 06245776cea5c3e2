r"""dml_did at scale: vaer's cross-fitted ML DiD beside DoubleML's ``DoubleMLDIDMulti``.

Design: :func:`vaer.did.simulate.simulate_staggered` with ``n_units`` firms (default
10,000 and 100,000: 0.1 and 1.0 million firm-years) in 150 cities, 10 years, cohorts
2014/2015/2016 + never treated, balanced, seed 0, covariates ``x1`` (drives the trend)
and ``x2``. Each tool runs in its own subprocess reading the same Parquet file
(:func:`did_scaling.run_tool`), so its peak RSS is its own.

Both estimate every ATT(g, t) with never-treated controls and the doubly robust DiD score
with normalised weights, five cross-fitting folds and the same LightGBM learners
(``LEARNER``: 100 trees, learning rate 0.05, one thread: with two OpenMP threads on a
loaded 2-core machine both tools ran about 10x slower), then the event-time aggregation:

``vaer``
    :func:`vaer.did.dml_did.dml_att_gt` (folds of cities; the propensity fitted once per
    cohort's sample, the outcome change per cell; small-cluster SEs by city), then
    :func:`vaer.did.aggregate` ``"dynamic"``.
``doubleml``
    ``DoubleMLDIDMulti(DoubleMLPanelData(...), gt_combinations="standard",
    control_group="never_treated", n_folds=5)`` (folds of firms; nuisances fitted per
    cell; unclustered SEs), then ``aggregate("eventstudy")``.

Target (issue 20): vaer on 1 million firm-years within 15 minutes on this 2-core machine.

Usage::

    PYTHONPATH=src python benchmarks/dml_did_scaling.py                  # 10k and 100k firms
    PYTHONPATH=src python benchmarks/dml_did_scaling.py --firms 3000 --no-write
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log_benchmark, update_results_section
from did_scaling import _max_rss_gib, compare, run_tool

TOOLS = ("vaer", "doubleml")
N_CITIES = 150
SEED = 0
N_FOLDS = 5
LEARNER = {"n_estimators": 100, "learning_rate": 0.05, "n_jobs": 1, "verbose": -1}
TARGET_S = 15 * 60.0
TARGET_ROWS = 1_000_000


def worker(tool: str, data: Path, out: Path) -> None:
    """Run one tool on the Parquet panel in this (fresh) process and write its numbers."""
    import numpy as np
    import pandas as pd
    from lightgbm import LGBMClassifier, LGBMRegressor

    frame = pd.read_parquet(data)
    loaded = _max_rss_gib()
    learners = {"ml_m": LGBMClassifier(**LEARNER), "ml_g": LGBMRegressor(**LEARNER)}
    start = time.perf_counter()
    if tool == "vaer":
        from vaer.did import PanelColumns, aggregate
        from vaer.did.dml_did import CrossFitting, dml_att_gt

        result = dml_att_gt(
            frame,
            PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
            covariates=["x1", "x2"],
            crossfit=CrossFitting(
                propensity_model=learners["ml_m"],
                outcome_model=learners["ml_g"],
                n_folds=N_FOLDS,
                random_state=SEED,
            ),
        )
        fitted = time.perf_counter()
        dyn = aggregate(result, "dynamic")
        keys, est, se = dyn.keys, dyn.estimate, dyn.se
        overall, overall_se, cells = dyn.overall_estimate, dyn.overall_se, len(result.att)
    else:
        import warnings

        import doubleml

        warnings.filterwarnings("ignore")
        frame["first_treated"] = frame["cohort"].astype(float).replace(0.0, np.inf)
        panel = doubleml.DoubleMLPanelData(
            frame, y_col="y", d_cols="first_treated", t_col="year", id_col="firm",
            x_cols=["x1", "x2"],
        )  # fmt: skip
        model = doubleml.did.DoubleMLDIDMulti(
            panel, gt_combinations="standard", control_group="never_treated", n_folds=N_FOLDS,
            **learners,
        )  # fmt: skip
        model.fit()
        fitted = time.perf_counter()
        dyn = model.aggregate("eventstudy")
        effects = dyn.aggregated_frameworks
        keys = np.asarray(dyn.aggregation_names, dtype=float)
        est, se = np.asarray(effects.thetas), np.asarray(effects.ses)
        overall = float(dyn.overall_aggregated_framework.thetas[0])
        overall_se = float(dyn.overall_aggregated_framework.ses[0])
        cells = len(model.gt_combinations)
    done = time.perf_counter()
    out.write_text(
        json.dumps(
            {
                "tool": tool, "rows": int(frame.shape[0]), "cells": cells,
                "fit_s": fitted - start, "aggregate_s": done - fitted,
                "estimation_s": done - start, "rss_loaded_gib": loaded,
                "peak_rss_gib": _max_rss_gib(), "keys": [int(k) for k in keys],
                "dynamic": [float(v) for v in est], "dynamic_se": [float(v) for v in se],
                "overall": overall, "overall_se": overall_se,
            }
        )
    )  # fmt: skip


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every size: simulate, write Parquet, run each tool in its own subprocess."""
    from vaer.did.simulate import simulate_staggered

    rows = []
    with tempfile.TemporaryDirectory(prefix="vaer-dmldid-") as tmp:
        folder = Path(tmp)
        for n_units in args.firms:
            frame, truth = simulate_staggered(n_units, N_CITIES, random_state=SEED)
            data = folder / f"panel_{n_units}.parquet"
            frame[["firm", "city", "year", "cohort", "x1", "x2", "y"]].to_parquet(data, index=False)
            n_rows = len(frame)
            del frame
            tools = [t for t in args.tools if t == "vaer" or n_units * 10 <= args.peer_max_rows]
            for tool in tools:
                found = run_tool(
                    tool, data, folder, args.mem_cap_gib, args.time_limit_s, script=__file__
                )
                found.update(n_units=n_units, n_rows=n_rows, true_overall=truth_overall(truth))
                rows.append(found)
                shown = {k: v for k, v in found.items() if k not in ("dynamic", "dynamic_se")}
                print(json.dumps(shown), flush=True)
            data.unlink()
    return rows


def truth_overall(truth: Any) -> float:
    """The true overall event-study ATT: the mean of the true theta(e) over e = 0..5."""
    return float(sum(truth.dynamic(e) for e in range(6)) / 6)


def section(rows: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    lines = [
        "## ML DiD at scale: dml_did beside DoubleML 0.11 (`dml_did_scaling.py`)",
        "",
        f"`simulate_staggered(n_units, {N_CITIES} cities, 10 years, cohorts 2014/2015/2016 + "
        f"never, seed {SEED})`, covariates x1 (drives the trend) and x2; every run in its own "
        "subprocess reading the same Parquet file. Both: every ATT(g, t) with never-treated "
        f"controls, DR-DiD score with normalised weights, {N_FOLDS} cross-fitting folds, "
        f"LightGBM {LEARNER} for the propensity and the outcome change, then the event-time "
        "aggregation. vaer: folds of cities, one propensity fit per cohort sample, SEs clustered "
        "by city (small-cluster); DoubleML `DoubleMLDIDMulti`: folds of firms, nuisances per "
        "cell, unclustered SEs. Estimation s excludes reading and imports. Target: vaer on "
        f"{TARGET_ROWS:,} firm-years within {TARGET_S / 60:.0f} minutes.",
        "",
        "| firm-years | tool | status | estimation s (fit + aggregate) | peak RSS GiB "
        "(after load) | cells | overall event-study ATT (SE) | truth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    metrics: dict[str, float] = {}
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_size.setdefault(r["n_units"], {})[r["tool"]] = r
        if r["status"] != "ok":
            lines.append(
                f"| {r['n_rows']:,} | {r['tool']} | FAILED: {r['note']} "
                f"| ({r['process_s']:.0f} s in the process) | {r['peak_rss_gib']:.2f} seen | | | |"
            )
            continue
        lines.append(
            f"| {r['n_rows']:,} | {r['tool']} | ok "
            f"| {r['estimation_s']:.1f} ({r['fit_s']:.1f} + {r['aggregate_s']:.1f}) "
            f"| {r['peak_rss_gib']:.2f} ({r['rss_loaded_gib']:.2f}) | {r['cells']} "
            f"| {r['overall']:.4f} ({r['overall_se']:.4f}) | {r['true_overall']:.4f} |"
        )
        metrics[f"{r['tool']}.{r['n_units']}.seconds"] = r["estimation_s"]
        metrics[f"{r['tool']}.{r['n_units']}.peak_rss_gib"] = r["peak_rss_gib"]
    lines += ["", "| firm-years | time vaer / DoubleML | memory ratio | max abs d event-time ATT |"]
    lines.append("|---|---|---|---|")
    for n_units, tools in by_size.items():
        ours, peer = tools.get("vaer"), tools.get("doubleml")
        found = compare(ours, peer) if ours is not None and peer is not None else {}
        if found:
            lines.append(
                f"| {ours['n_rows']:,} | {found['time_ratio']:.2f} | {found['memory_ratio']:.2f} "
                f"| {found['max_d_dynamic']:.3g} |"
            )
            metrics.update({f"doubleml.{n_units}.{k}": v for k, v in found.items()})
    big = [r for r in rows if r["tool"] == "vaer" and r["status"] == "ok"]
    big = [r for r in big if r["n_rows"] >= TARGET_ROWS]
    if big:
        seconds = big[0]["estimation_s"]
        verdict = "PASS" if seconds <= TARGET_S else "FAIL"
        metrics["vaer.target_met"] = float(verdict == "PASS")
        lines += ["", f"Target {TARGET_S / 60:.0f} min at {TARGET_ROWS:,} firm-years: "
                  f"{seconds / 60:.1f} min, **{verdict}**."]  # fmt: skip
    return "\n".join(lines), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--peer-max-rows", type=int, default=100_000)
    parser.add_argument("--mem-cap-gib", type=float, default=14.0)
    parser.add_argument("--time-limit-s", type=float, default=1800.0)
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    parser.add_argument("--from-json", type=Path, help="rebuild the section from --json output")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md/MLflow")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.out)
        return
    rows = json.loads(args.from_json.read_text()) if args.from_json else run(args)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    text, metrics = section(rows)
    print(text)
    if args.no_write:
        return
    config = f"firms {args.firms}, {N_CITIES} cities, 10 years, tools {args.tools}, seed {SEED}"
    update_results_section("dml_did_scaling", text, config=config)
    log_benchmark("dml_did_scaling", metrics, {"config": config})


if __name__ == "__main__":
    main()
