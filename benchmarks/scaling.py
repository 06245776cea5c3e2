"""Speed and memory: vaer's fit alone, a full ``vaer run``, and peers, by number of rows.

For each size, a synthetic firm table (:mod:`vaer.data.synthetic_table`, ``n // 100``
cities, at most 2000) is written to Parquet with 15 extra irrelevant numeric modifiers,
so every tool sees 30 feature columns (11 modifiers, 4 controls, 15 noise columns; 35
after one-hot encoding). Each measurement runs in its own child process; wall time and
peak resident memory (``ru_maxrss`` from ``os.wait4``) are those of the child, loading
the Parquet file included (the ``seconds`` column is the tool's own step alone).

Tools: ``vaer_fit`` (``fit_estimators`` with the default ``causal_forest_dml``, vaer's
cluster forest with its linear base, and ``linear_dml``), ``vaer_run`` (``vaer run`` with
``configs/default.yaml``: both estimators, heterogeneity, attribution with SHAP,
mechanism tests, robustness, the report; MLflow store in a temporary folder),
``econml_same`` (econml ``CausalForestDML`` with vaer's forest numbers, subsampling units
rather than cities, and ``LinearDML``, with vaer's learners and folds, fitted
separately, each with its own nuisances), ``doubleml`` (PLR, cluster-robust), ``grf``
(skgrf, 2000 trees, in the peer environment), and ``oracle`` (vaer's default cluster
forest on true-nuisance residuals, for vaer's CATE RMSE ratio). All on one core but
``vaer_run`` (vaer's defaults: both cores from 50,000 rows). For ``vaer_fit`` and
``oracle`` the table also gives the per-firm coverage of the forest's 95% intervals
(share of firms with ``|tau_hat - tau| <= 1.96 se``).

Usage::

    PYTHONPATH=src python benchmarks/scaling.py --sizes 10000 50000 200000
    PYTHONPATH=src python benchmarks/scaling.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

EXTRA = [f"noise_{j:02d}" for j in range(1, 16)]
Z = float(stats.norm.ppf(0.975))
TOOLS = ["vaer_fit", "vaer_run", "econml_same", "doubleml", "grf", "oracle"]


def n_cities(n: int) -> int:
    """Cities of the scaling table: one per 100 firms, between 20 and 2000."""
    return int(min(2000, max(20, n // 100)))


def write_table(n: int, path: Path, seed: int = 0) -> None:
    """Draw the synthetic table with ``n`` firms plus noise columns and truth; write Parquet."""
    from vaer.config.models import SyntheticTableConfig
    from vaer.data.synthetic_table import make_synthetic_table

    table = make_synthetic_table(
        SyntheticTableConfig(n_units=n, n_clusters=n_cities(n)), random_state=seed
    )
    frame = table.frame.copy()
    rng = np.random.default_rng(seed + 1)
    for column in EXTRA:
        frame[column] = rng.normal(size=n)
    m, e = table.exact_nuisances()
    frame["_tau"], frame["_m"], frame["_e"] = table.truth.tau, m, e
    frame.to_parquet(path, index=False)


def roles() -> dict[str, Any]:
    from vaer.data.synthetic_table import CONTROLS, MECHANISMS, MODIFIERS

    return {
        "unit": "firm_id",
        "outcome": "resilience",
        "treatment": "va_index",
        "cluster": "city",
        "controls": list(CONTROLS),
        "modifiers": [*MODIFIERS, *EXTRA],
        "firm_types": ["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
        "mechanisms": {k: list(v) for k, v in MECHANISMS.items()},
        "mediators": {k: [f"d_{p}" for p in v] for k, v in MECHANISMS.items()},
    }


# --------------------------------------------------------------------- children


def _load(path: Path) -> tuple[Any, pd.DataFrame]:
    from vaer.config.models import ExperimentConfig
    from vaer.data.design import build_analysis_data

    frame = pd.read_parquet(path)
    config = ExperimentConfig.model_validate(
        {"name": "scaling", "roles": roles(), "estimators": [{"kind": "linear_dml"}]}
    )
    return build_analysis_data(frame, config.roles), frame


def _rmse(tau_hat: np.ndarray, tau: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(tau_hat) - tau) ** 2)))


def _coverage(tau_hat: np.ndarray, tau_se: Any, tau: np.ndarray) -> float:
    """Share of firms whose 95% interval ``tau_hat +- 1.96 se`` holds their effect."""
    return float(np.mean(np.abs(np.asarray(tau_hat) - tau) <= Z * np.asarray(tau_se)))


def child(tool: str, path: Path, workdir: Path) -> dict[str, Any]:
    """Run one tool on the table at ``path``; return its own timing and accuracy."""
    if tool == "vaer_run":
        return _child_run(path, workdir)
    data, frame = _load(path)
    tau = frame["_tau"].to_numpy()
    started = time.perf_counter()
    out: dict[str, Any] = {}
    if tool == "vaer_fit":
        from peers import vaer_specs
        from vaer.config.estimators import NuisanceConfig
        from vaer.estimators.fit import fit_estimators

        one_core = NuisanceConfig(n_jobs=1)  # as every peer: one process, one thread
        result = fit_estimators(data, vaer_specs(), one_core, random_state=0)
        forest = result.estimators[0]
        out["rmse_cf"] = _rmse(forest.tau_hat, tau)
        out["unit_coverage_cf"] = _coverage(forest.tau_hat, forest.tau_se, tau)
    else:
        from designs import DesignData

        design = DesignData(
            name="scaling",
            y=data.y,
            t=data.t,
            x=data.x.to_numpy(),
            w=data.w.to_numpy(),
            tau=tau,
            m=frame["_m"].to_numpy(),
            e=frame["_e"].to_numpy(),
            clusters=data.clusters,
        )
        import peers

        if tool == "econml_same":
            results = peers.run_econml_same(design, 0)
            out["rmse_cf"] = _rmse(results[0].tau_hat, tau)
        elif tool == "doubleml":
            peers.run_doubleml(design, 0)
        elif tool == "grf":
            result = peers.run_grf(design, 0)
            out["rmse_cf"] = _rmse(result.tau_hat, tau)
            out["grf_fit_seconds"] = result.seconds
        elif tool == "oracle":
            result = peers.run_oracle(design, 0)
            out["rmse_cf"] = _rmse(result.tau_hat, tau)
            out["unit_coverage_cf"] = _coverage(result.tau_hat, result.tau_se, tau)
        else:
            raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    out["seconds"] = time.perf_counter() - started
    return out


def _child_run(path: Path, workdir: Path) -> dict[str, Any]:
    import yaml

    config = {
        "base": str(ROOT / "configs" / "default.yaml"),
        "name": "scaling",
        "seed": 0,
        "data": {"source": "file", "mode": "table", "path": str(path)},
        "roles": roles(),
        "tracking": {"uri": f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"},
        "report": {"out": str(workdir / "reports" / "{run_name}-{run_id}")},
    }
    experiment = workdir / "scaling.yaml"
    experiment.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "vaer.cli", "run", str(experiment)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"vaer run failed: {(done.stdout + done.stderr)[-1500:]}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, **_stage_seconds(config["tracking"]["uri"])}


def _stage_seconds(uri: str) -> dict[str, float]:
    """The run's ``time.stage.<name>`` metrics, as ``stage_<name>`` columns."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    (run,) = client.search_runs([experiment.experiment_id])
    prefix = "time.stage."
    return {
        f"stage_{key[len(prefix) :]}": value
        for key, value in run.data.metrics.items()
        if key.startswith(prefix)
    }


# ----------------------------------------------------------------------- parent


def measure(tool: str, path: Path, workdir: Path, timeout: float) -> dict[str, Any]:
    """Run ``tool`` in a child process; its wall time, peak RSS and own numbers."""
    result_file = workdir / f"{tool}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        tool,
        "--data",
        str(path),
        "--workdir",
        str(workdir),
        "--result",
        str(result_file),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    started = time.perf_counter()
    stderr_file = workdir / f"{tool}.stderr"
    with stderr_file.open("wb") as sink:  # a file, not a pipe: a full pipe would block the child
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True
        )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # the child and any `vaer run` under it
            os.wait4(process.pid, 0)
            return {"status": f"not finished within {timeout:.0f} s (killed)"}
        time.sleep(0.2)
    wall = time.perf_counter() - started
    stderr = stderr_file.read_text(errors="replace")
    # vaer_run's peak is its grandchild (`vaer run`): RUSAGE_CHILDREN of the child covers it
    peak = usage.ru_maxrss / 1024  # KiB on Linux -> MiB
    if os.WEXITSTATUS(status) != 0 or not result_file.is_file():
        reason = " ".join(stderr.strip()[-400:].split()).replace("|", "/")
        return {"status": f"failed: {reason}", "wall": wall, "peak_mib": peak}
    own = json.loads(result_file.read_text())
    return {"status": "ok", "wall": wall, "peak_mib": max(peak, own.pop("child_peak_mib", 0))}


def fitted_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Slope of log(time) on log(n) (time ~ n^slope); NaN with fewer than two sizes."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for tool, rows in table[table["status"] == "ok"].groupby("tool"):
        rows = rows.sort_values("n")
        ax.loglog(rows["n"], rows["wall"], marker="o", label=tool)
    ax.set_xlabel("rows (firms)")
    ax.set_ylabel("wall time, s (child process)")
    ax.set_title("time by rows (vaer_run: 2 cores from 50k rows)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def markdown(table: pd.DataFrame, skipped: list[str], exponents: dict[str, float]) -> str:
    lines = [
        "## Speed and memory by rows: vaer vs econml, DoubleML, grf (`scaling.py`)",
        "",
        "Synthetic firm table with 30 feature columns (11 modifiers, 4 controls, 15 "
        "irrelevant noise columns), one row per firm, `n // 100` cities (at most 2000). "
        "Each tool in its own child process on one core; wall time and peak RSS of the "
        "child (loading the Parquet file included); `own s` is the tool's step alone. "
        "`vaer_run` is the full `vaer run` with `configs/default.yaml` (causal forest and "
        "linear DML, heterogeneity, SHAP attribution, mechanism tests, robustness, "
        "report) with vaer's defaults, which use both cores of this machine from 50,000 "
        "rows (`nuisance.n_jobs` and `compute.n_jobs`: auto); `vaer_fit` and the peers "
        "run on one core. CATE RMSE of the causal forest against the true effects; "
        "per-firm coverage: share of firms whose 95% interval (vaer's cluster forest, "
        "cluster-honest out-of-bag) holds their true effect.",
        "",
        "| rows | tool | status | wall s | own s | peak RSS MiB | CATE RMSE | per-firm coverage |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def number(value: Any) -> str:
        value = float(value)
        return "—" if not np.isfinite(value) else f"{value:.3f}"

    for _, r in table.iterrows():
        ok = r["status"] == "ok"
        lines.append(
            f"| {int(r['n']):,} | {r['tool']} | {r['status']} | "
            f"{r['wall']:.1f} | {r.get('seconds', np.nan):.1f} | {r['peak_mib']:.0f} | "
            f"{number(r.get('rmse_cf', np.nan))} | "
            f"{number(r.get('unit_coverage_cf', np.nan))} |"
            if ok
            else f"| {int(r['n']):,} | {r['tool']} | {r['status']} | | | | | |"
        )
    ok = table[table["status"] == "ok"].set_index(["n", "tool"])
    lines += ["", "Ratios (wall time of the child processes, same data, same session):", ""]
    lines += ["| rows | vaer fit / econml same estimators separately | vaer fit / grf "
              "| vaer CF RMSE / oracle |", "|---|---|---|---|"]  # fmt: skip
    for n in sorted(table["n"].unique()):

        def get(tool: str, column: str, n: int = n) -> float:
            return float(ok.loc[(n, tool), column]) if (n, tool) in ok.index else float("nan")

        def ratio(a: float, b: float) -> str:
            return f"{a / b:.2f}" if np.isfinite(a) and np.isfinite(b) and b else "—"

        lines.append(
            f"| {int(n):,} | {ratio(get('vaer_fit', 'wall'), get('econml_same', 'wall'))} | "
            f"{ratio(get('vaer_fit', 'wall'), get('grf', 'wall'))} | "
            f"{ratio(get('vaer_fit', 'rmse_cf'), get('oracle', 'rmse_cf'))} |"
        )
    lines += [
        "",
        "Fitted exponent b of wall time ~ n^b (least squares on log-log, sizes that ran): "
        + ", ".join(f"{k} {v:.2f}" for k, v in exponents.items() if np.isfinite(v)),
        "",
        "Figure: `benchmarks/figures/scaling.png`.",
    ]
    lines += stage_lines(table)
    if skipped:
        lines += ["", "Not measured:", "", *[f"- {s}" for s in skipped]]
    return "\n".join(lines)


def stage_lines(table: pd.DataFrame) -> list[str]:
    """A table of `vaer_run`'s seconds per pipeline stage (its ``time.stage.*`` metrics)."""
    columns = [c for c in table.columns if c.startswith("stage_")]
    runs = table[(table["tool"] == "vaer_run") & (table["status"] == "ok")]
    if not columns or runs.empty:
        return []
    names = [c[len("stage_") :] for c in columns]
    lines = [
        "",
        "Seconds per stage of `vaer_run` (the run's `time.stage.*` metrics):",
        "",
        "| rows | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for _, r in runs.iterrows():
        cells = [f"{r[c]:.1f}" if np.isfinite(float(r[c])) else "—" for c in columns]
        lines.append(f"| {int(r['n']):,} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[10_000, 50_000, 200_000, 1_000_000]
    )
    parser.add_argument("--tools", nargs="*", default=TOOLS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10k rows, fit-alone tools only; writes the section `scaling_quick`",
    )
    parser.add_argument(
        "--peer-max-rows",
        type=int,
        default=50_000,
        help="peers (econml, DoubleML, grf) and the oracle run up to this many rows",
    )
    parser.add_argument(
        "--grf-max-rows",
        type=int,
        default=50_000,
        help="grf runs up to this many rows (its peak RSS grows about linearly: 8.8 GiB at "
        "50,000 rows here, so 200,000 would need more than this machine's 24 GiB)",
    )
    parser.add_argument("--run-max-rows", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child, seconds")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vaer-bench-scaling.csv"))
    parser.add_argument("--resume", action="store_true", help="keep rows already in --out")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--note", default="", help="a sentence added under the tables")
    parser.add_argument(
        "--report-only", action="store_true", help="measure nothing: report the rows in --out"
    )
    parser.add_argument(
        "--why-not", default="", help="reason recorded for sizes of --all-sizes not run"
    )
    parser.add_argument(
        "--all-sizes",
        type=int,
        nargs="*",
        default=[10_000, 50_000, 200_000, 1_000_000],
        help="the sizes the benchmark asks for; those not run are listed as not measured",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = child(args.child, args.data, args.workdir)
        args.result.write_text(json.dumps(out))
        return

    import peers
    from common import log_benchmark, update_results_section
    from vaer.config.estimators import CausalForestDMLParams

    sizes = [10_000] if args.quick else sorted(args.sizes)
    if args.quick and args.tools == TOOLS:  # keeps `make bench-quick` under 10 minutes
        args.tools = ["vaer_fit", "econml_same", "doubleml", "grf"]
    rows: list[dict[str, Any]] = []
    if args.resume and args.out.is_file():
        rows = pd.read_csv(args.out).to_dict("records")
    done = {(int(r["n"]), r["tool"]) for r in rows}
    skipped: list[str] = []
    for n in [] if args.report_only else sizes:
        with tempfile.TemporaryDirectory(prefix="vaer-scaling-") as tmp:
            workdir = Path(tmp)
            path = workdir / "table.parquet"
            prepared = False
            for tool in args.tools:
                if (n, tool) in done:
                    continue
                if tool in ("econml_same", "doubleml", "grf", "oracle") and n > args.peer_max_rows:
                    skipped.append(
                        f"{tool} at {n:,} rows: above --peer-max-rows {args.peer_max_rows:,}"
                    )
                    continue
                if tool == "grf" and n > args.grf_max_rows:
                    skipped.append(
                        f"grf at {n:,} rows: above --grf-max-rows {args.grf_max_rows:,} (its "
                        "peak RSS grows about linearly with rows; see the 10,000 and 50,000 "
                        "rows above)"
                    )
                    continue
                if tool == "vaer_run" and n > args.run_max_rows:
                    skipped.append(
                        f"vaer_run at {n:,} rows: above --run-max-rows {args.run_max_rows:,}"
                    )
                    continue
                if tool == "grf" and not peers.grf_available():
                    skipped.append(f"grf at {n:,} rows: peer environment missing")
                    continue
                if not prepared:
                    write_table(n, path)
                    prepared = True
                print(f"{n:,} rows: {tool} ...", flush=True)
                result = measure(tool, path, workdir, args.timeout)
                own = workdir / f"{tool}.json"
                extra = json.loads(own.read_text()) if own.is_file() else {}
                rows.append({"n": n, "tool": tool, **result, **extra})
                print(f"  {rows[-1]}", flush=True)
                pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows)
    if table.empty:
        print("nothing measured:", *skipped, sep="\n- ")
        return
    order = {tool: k for k, tool in enumerate(TOOLS)}
    table = table.sort_values(["n", "tool"], key=lambda s: s.map(order) if s.name == "tool" else s)
    ok = table[table["status"] == "ok"]
    exponents = {
        tool: fitted_exponent(list(g["n"]), list(g["wall"])) for tool, g in ok.groupby("tool")
    }
    for n in [s for s in args.all_sizes if s not in set(table["n"])]:
        reason = args.why_not or f"not in --sizes of this run ({' '.join(map(str, sizes))})"
        skipped.append(f"all tools at {n:,} rows: {reason}")
    text = markdown(table, skipped, exponents)
    if args.note:
        text += f"\n\n{args.note}"
    print(text)
    if args.no_results:
        return
    name = "scaling_quick" if args.quick else "scaling"
    figure(table, HERE / "figures" / f"{name}.png")
    forest = CausalForestDMLParams()
    config = (
        "vaer_fit: causal_forest_dml and linear_dml with their defaults (forest: "
        f"{forest.n_estimators} trees in groups of {forest.ci_group_size}, max_samples "
        f"{forest.max_samples}, min_samples_leaf {forest.min_samples_leaf}, "
        f"max_subsample_size {forest.max_subsample_size}, linear_base "
        f"{str(forest.linear_base).lower()}), nuisance n_jobs 1; vaer_run: "
        "configs/default.yaml; seed 0"
    )
    update_results_section(name, text.replace("scaling.png", f"{name}.png"), config=config)
    metrics = {
        f"{tool}.{int(r['n'])}.{k}": float(r[k])
        for _, r in ok.iterrows()
        for tool in [r["tool"]]
        for k in ("wall", "peak_mib", "seconds")
        if k in r and np.isfinite(r[k])
    }
    metrics.update({f"{k}.exponent": v for k, v in exponents.items() if np.isfinite(v)})
    log_benchmark(name, metrics, {"sizes": " ".join(map(str, sizes))})


if __name__ == "__main__":
    main()
