r"""vaer.did beside moderndid 0.2 at 1 and 5 million firm-years: wall time and peak memory.

Design: :func:`vaer.did.simulate.simulate_staggered` with ``n_units`` firms (default
100,000 and 500,000) in 150 cities, 10 years (2010-2019), cohorts 2014/2015/2016 + never
treated, balanced, seed 0: 1.0 and 5.0 million firm-years. The panel is simulated once per
size and written to a Parquet file; every tool then runs in its own fresh Python
subprocess that reads the file (vaer as pandas, moderndid as polars, its native frame),
so the peak memory (the subprocess's max RSS) is that tool's alone (it includes the
interpreter, the imports and the loaded panel; ``RSS after load`` is the max RSS just
before estimating).

Every run estimates Callaway-Sant'Anna ATT(g, t) with the doubly robust estimator
(``method="dr"`` / ``est_method="dr"``), one covariate (``x1``), never-treated controls,
varying base period, then the dynamic (event-time) aggregation. Runs (``--tools``):

``vaer``
    ``vaer.did.att_gt(..., cluster="city", n_boot=999)`` then
    ``aggregate(result, "dynamic", n_boot=999)``: analytic SEs clustered by city and
    999-draw city multiplier-bootstrap uniform bands of the cells and of the event-time
    path (what the ``did`` stage runs by default).
``moderndid_cluster``
    ``moderndid.att_gt(..., xformla="~ x1", boot=True, biters=999, clustervars=["city"])``
    then ``aggte(type="dynamic")``: moderndid's only city-clustered SEs are bootstrap ones,
    so this is the like-for-like run.
``moderndid_default``
    ``moderndid.att_gt(..., xformla="~ x1")`` with its defaults (``boot=False``: analytic
    SEs, not clustered) then ``aggte(type="dynamic")``: the configuration behind the
    issue's reference (6.5 s and 1.1 GiB for 1.04 million firm-years).

Numbers: ``estimation s`` is the wall time of ``att_gt`` plus the dynamic aggregation
(reading the file and imports excluded); ``peak RSS`` is the subprocess's max RSS (GiB);
ratios are vaer / moderndid (target: <= 2 for time and memory); ``max |d dyn ATT|`` is the
largest absolute difference of the event-time ATTs (and ``|d overall|`` the overall
dynamic ATT) between vaer and that moderndid run. A run that exceeds the memory cap
(``--mem-cap-gib``, default 14 of this machine's 23 GiB; the benchmark kills it) or the
time limit is reported as failed, with what was seen.

Usage::

    PYTHONPATH=src python benchmarks/did_scaling.py                       # 100k and 500k firms
    PYTHONPATH=src python benchmarks/did_scaling.py --firms 20000 --no-write   # development
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log_benchmark, update_results_section

TOOLS = ("vaer", "moderndid_cluster", "moderndid_default")
N_BOOT = 999
N_CITIES = 150
SEED = 0
SIZE_TARGET = 2.0


def _max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def worker(tool: str, data: Path, out: Path) -> None:
    """Run one tool on the Parquet panel in this (fresh) process and write its numbers."""
    import numpy as np

    if tool == "vaer":
        import pandas as pd

        from vaer.did import CellOptions, PanelColumns, aggregate, att_gt

        frame = pd.read_parquet(data)
        loaded = _max_rss_gib()
        start = time.perf_counter()
        result = att_gt(
            frame,
            PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
            covariates=["x1"],
            method="dr",
            n_boot=N_BOOT,
            random_state=SEED,
            options=CellOptions(control_group="never"),
        )
        fitted = time.perf_counter()
        dyn = aggregate(result, "dynamic", n_boot=N_BOOT, random_state=SEED)
        keys, est, se = dyn.keys, dyn.estimate, dyn.se
        overall, overall_se = dyn.overall_estimate, dyn.overall_se
        cells = len(result.att)
    else:
        import warnings

        import polars as pl
        from moderndid import aggte
        from moderndid import att_gt as md_att_gt

        warnings.filterwarnings("ignore")
        frame = pl.read_parquet(data)
        loaded = _max_rss_gib()
        boot = tool == "moderndid_cluster"
        options: dict[str, Any] = (
            {"boot": True, "biters": N_BOOT, "clustervars": ["city"], "random_state": SEED}
            if boot
            else {}
        )
        start = time.perf_counter()
        md = md_att_gt(
            frame, yname="y", tname="year", idname="firm", gname="cohort", xformla="~ x1",
            est_method="dr", control_group="nevertreated", **options,
        )  # fmt: skip
        fitted = time.perf_counter()
        dyn = aggte(md, type="dynamic")
        keys = np.asarray(dyn.event_times)
        est, se = np.asarray(dyn.att_by_event), np.asarray(dyn.se_by_event)
        overall, overall_se = float(dyn.overall_att), float(dyn.overall_se)
        cells = len(np.asarray(md.att_gt))
    done = time.perf_counter()
    out.write_text(
        json.dumps(
            {
                "tool": tool,
                "rows": int(frame.shape[0]),
                "cells": cells,
                "fit_s": fitted - start,
                "aggregate_s": done - fitted,
                "estimation_s": done - start,
                "rss_loaded_gib": loaded,
                "peak_rss_gib": _max_rss_gib(),
                "keys": [int(k) for k in keys],
                "dynamic": [float(v) for v in est],
                "dynamic_se": [float(v) for v in se],
                "overall": overall,
                "overall_se": overall_se,
            }
        )
    )


def _rss_gib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def run_tool(
    tool: str, data: Path, folder: Path, cap_gib: float, limit_s: float, script: str = __file__
) -> dict[str, Any]:
    """Run ``tool`` in its own subprocess (``script --worker tool``), killing it above
    ``cap_gib`` or after ``limit_s``."""
    out = folder / f"{tool}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, script, "--worker", tool, "--data", str(data), "--out", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    seen, killed = 0.0, ""
    while process.poll() is None:
        seen = max(seen, _rss_gib(process.pid))
        if seen > cap_gib:
            killed = f"killed by the benchmark at RSS {seen:.1f} GiB (cap {cap_gib} GiB)"
        elif time.perf_counter() - started > limit_s:
            killed = f"killed by the benchmark after {limit_s:.0f} s"
        if killed:
            process.kill()
            break
        time.sleep(0.1)
    _, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode == 0 and out.is_file():
        found: dict[str, Any] = json.loads(out.read_text())
        found.update(status="ok", process_s=wall)
        return found
    reason = killed or f"exit code {process.returncode}: {err.strip().splitlines()[-1:] or ''}"
    return {"tool": tool, "status": "failed", "note": str(reason)[:300], "process_s": wall,
            "peak_rss_gib": seen}  # fmt: skip


def compare(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float]:
    """Ratios vaer / peer and the largest differences of the dynamic ATTs."""
    if ours.get("status") != "ok" or peer.get("status") != "ok":
        return {}
    mine = dict(zip(ours["keys"], ours["dynamic"], strict=True))
    theirs = dict(zip(peer["keys"], peer["dynamic"], strict=True))
    if set(mine) != set(theirs):
        print(f"event times differ: vaer {sorted(mine)}, peer {sorted(theirs)}", flush=True)
        return {}
    return {
        "time_ratio": ours["estimation_s"] / peer["estimation_s"],
        "memory_ratio": ours["peak_rss_gib"] / peer["peak_rss_gib"],
        "max_d_dynamic": max(abs(mine[k] - theirs[k]) for k in mine),
        "d_overall": abs(ours["overall"] - peer["overall"]),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every size: simulate, write Parquet, run each tool in its own subprocess."""
    from vaer.did.simulate import simulate_staggered

    rows = []
    with tempfile.TemporaryDirectory(prefix="vaer-didscale-") as tmp:
        folder = Path(tmp)
        for n_units in args.firms:
            frame, _ = simulate_staggered(n_units, N_CITIES, random_state=SEED)
            frame = frame[["firm", "city", "year", "cohort", "x1", "y"]]
            data = folder / f"panel_{n_units}.parquet"
            frame.to_parquet(data, index=False)
            n_rows = len(frame)
            del frame
            for tool in args.tools:
                found = run_tool(tool, data, folder, args.mem_cap_gib, args.time_limit_s)
                found.update(n_units=n_units, n_rows=n_rows)
                rows.append(found)
                shown = {
                    k: v for k, v in found.items() if k not in ("keys", "dynamic", "dynamic_se")
                }
                print(json.dumps(shown), flush=True)
            data.unlink()
    return rows


def verdict(ratio: float) -> str:
    return "PASS" if ratio <= SIZE_TARGET else "FAIL"


def section(rows: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, dict[str, float]]:
    lines = [
        "## Staggered DiD at scale: vaer.did beside moderndid 0.2 (`did_scaling.py`)",
        "",
        f"`simulate_staggered(n_units, {N_CITIES} cities, 10 years, cohorts 2014/2015/2016 + "
        f"never, seed {SEED})`, balanced; every run in its own subprocess reading the same "
        "Parquet file (vaer: pandas, moderndid: polars). All: DR, one covariate (x1), "
        "never-treated controls, then the dynamic aggregation. vaer: analytic SEs clustered "
        f"by city + {N_BOOT}-draw city multiplier bootstrap bands (cells and event times). "
        f"moderndid cluster: `boot=True, biters={N_BOOT}, clustervars=['city']` (its only "
        "clustered SEs). moderndid default: `boot=False` (analytic, unclustered SEs). "
        "Estimation s = att_gt + dynamic aggregation (reading and imports excluded); peak "
        "RSS = the subprocess's max RSS (interpreter, imports and the panel included; the "
        "RSS after loading is in brackets). Target: vaer within 2x moderndid's time and "
        "memory.",
        "",
        "| firm-years | firms | tool | status | estimation s (att_gt + dynamic) | peak RSS GiB "
        "(after load) | cells | overall dynamic ATT (SE) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    metrics: dict[str, float] = {}
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_size.setdefault(r["n_units"], {})[r["tool"]] = r
        if r["status"] == "ok":
            lines.append(
                f"| {r['n_rows']:,} | {r['n_units']:,} | {r['tool']} | ok "
                f"| {r['estimation_s']:.1f} ({r['fit_s']:.1f} + {r['aggregate_s']:.1f}) "
                f"| {r['peak_rss_gib']:.2f} ({r['rss_loaded_gib']:.2f}) | {r['cells']} "
                f"| {r['overall']:.4f} ({r['overall_se']:.4f}) |"
            )
            metrics[f"{r['tool']}.{r['n_units']}.seconds"] = r["estimation_s"]
            metrics[f"{r['tool']}.{r['n_units']}.peak_rss_gib"] = r["peak_rss_gib"]
        else:
            lines.append(
                f"| {r['n_rows']:,} | {r['n_units']:,} | {r['tool']} | FAILED: {r['note']} "
                f"| ({r['process_s']:.0f} s in the process) | {r['peak_rss_gib']:.2f} seen | | |"
            )
    lines += [
        "",
        "| firm-years | vaer vs | time ratio | memory ratio | verdict (<= 2x both) "
        "| max abs d dynamic ATT | abs d overall |",
        "|---|---|---|---|---|---|---|",
    ]
    for n_units, tools in by_size.items():
        ours = tools.get("vaer")
        for peer_name in ("moderndid_cluster", "moderndid_default"):
            peer = tools.get(peer_name)
            if ours is None or peer is None:
                continue
            found = compare(ours, peer)
            if not found:
                why = next(
                    (r.get("note") for r in (peer, ours) if r.get("status") != "ok"),
                    "the event times differ",
                )
                lines.append(
                    f"| {ours['n_rows']:,} | {peer_name} | - | - | no comparison: {why} | | |"
                )
                continue
            both = max(found["time_ratio"], found["memory_ratio"])
            lines.append(
                f"| {ours['n_rows']:,} | {peer_name} | {found['time_ratio']:.2f} "
                f"| {found['memory_ratio']:.2f} | {verdict(both)} | {found['max_d_dynamic']:.2g} "
                f"| {found['d_overall']:.2g} |"
            )
            for key, value in found.items():
                metrics[f"{peer_name}.{n_units}.{key}"] = value
    return "\n".join(lines), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--mem-cap-gib", type=float, default=14.0)
    parser.add_argument("--time-limit-s", type=float, default=600.0)
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
    text, metrics = section(rows, args)
    print(text)
    if args.no_write:
        return
    config = f"firms {args.firms}, {N_CITIES} cities, 10 years, tools {args.tools}, seed {SEED}"
    update_results_section("did_scaling", text, config=config)
    log_benchmark("did_scaling", metrics, {"config": config})


if __name__ == "__main__":
    main()
