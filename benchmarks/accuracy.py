"""Accuracy against known truth: vaer and its peers on the same draws of each design.

For every design of :mod:`designs` and every seed, each tool of :mod:`peers` is fitted on
the same arrays; per tool and design we report, over seeds:

* ATE bias (mean of estimate - true sample ATE) and its sd;
* coverage of the 95% ATE interval (share of seeds whose interval holds the true ATE);
* CATE RMSE ``sqrt(mean_i (tau_hat_i - tau_i)^2)`` (mean and sd over seeds) and its ratio
  to the oracle's RMSE on the same draw (median and IQR over seeds);
* GATE coverage (designs with groups: share of seed x group intervals that hold the
  true group mean of tau);
* per-unit interval coverage, for tools that give each unit a standard error (vaer's
  forests and the oracle): per seed, the share of units with
  ``|tau_hat_i - tau_i| <= 1.96 se_i``, averaged over seeds;
* mean fit time.

Tuning and held-apart designs: vaer's forest chooses by default whether to start from a
per-group linear base (``linear_base: auto``: the smaller cluster-honest out-of-bag
R-loss). The always-on base was designed on the project's synthetic table (seeds 0-7);
the table designs here (``table``, ``table_hard``) come from the same generator and are
labelled the tuning family (:data:`TUNING`); every other design is held apart from that
choice (the ``auto`` rule itself has no tuning parameter). The headline sets vaer's
default forest beside the same forest always with (``vaer_cf_base``) and always without
(``vaer_cf_nobase``) the base and econml's ``CausalForestDML()`` defaults, with the
per-seed differences of CATE RMSE and their standard errors.

Writes the section ``accuracy`` of ``benchmarks/RESULTS.md`` and a run of the MLflow
experiment ``benchmarks``; per-seed rows go to ``--out`` (CSV, not committed).

Usage::

    PYTHONPATH=src python benchmarks/accuracy.py --seeds 20
    PYTHONPATH=src python benchmarks/accuracy.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import log_benchmark, update_results_section
from designs import DESIGNS, draw
from peers import STEP_TOOLS, STEPS, TOOLS, Z, grf_available, run_all
from vaer.config.estimators import CausalForestDMLParams, NuisanceConfig

QUICK_DESIGNS = list(DESIGNS)

TUNING = {"table", "table_hard"}
"""Designs from the generator the linear base was chosen on (the project's synthetic
table); the others are held apart from that choice."""


def family(design: str) -> str:
    """``tuning`` for designs of :data:`TUNING`, ``held apart`` otherwise."""
    return "tuning" if design in TUNING else "held apart"


def unit_coverage(tau_hat: np.ndarray, tau_se: np.ndarray | None, tau: np.ndarray) -> float:
    """Share of units whose 95% interval ``tau_hat +- z se`` holds their true effect
    (NaN without SEs or where an SE is not finite)."""
    if tau_se is None or not np.all(np.isfinite(tau_se)):
        return float("nan")
    return float(np.mean(np.abs(tau_hat - tau) <= Z * tau_se))


def evaluate(
    design: str, seed: int, steps: list[str], oracle_rmse: float | None = None
) -> tuple[list[dict], dict]:
    """Per-tool metrics of one draw for the given steps of :func:`peers.run_all`, and
    the failures. ``oracle_rmse`` is the oracle's RMSE on this draw when the oracle is
    not among the steps (resumed runs)."""
    data = draw(design, seed)
    results, failures = run_all(data, seed, steps)
    truth_gates = data.gates() if data.groups is not None else None
    oracle = next((r for r in results if r.tool == "oracle"), None)
    if oracle is not None and oracle.tau_hat is not None:
        oracle_rmse = float(np.sqrt(np.mean((oracle.tau_hat - data.tau) ** 2)))
    if oracle_rmse is None:
        oracle_rmse = float("nan")
    rows = []
    for r in results:
        rmse = (
            float(np.sqrt(np.mean((r.tau_hat - data.tau) ** 2)))
            if r.tau_hat is not None
            else float("nan")
        )
        gate_hits = gate_total = 0
        if r.gates is not None and truth_gates is not None:
            for label, truth in truth_gates.items():
                if label in r.gates.index:
                    lo, hi = r.gates.loc[label, ["ci_low", "ci_high"]]
                    gate_hits += int(lo <= truth <= hi)
                    gate_total += 1
        rows.append(
            {
                "design": design,
                "seed": seed,
                "tool": r.tool,
                "n": data.n,
                "ate_true": data.ate,
                "ate": r.ate,
                "bias": r.ate - data.ate,
                "covered": (
                    float(r.ci_low <= data.ate <= r.ci_high)
                    if np.isfinite(r.ci_low)
                    else float("nan")
                ),
                "rmse": rmse,
                "rmse_oracle": oracle_rmse,
                "ratio_oracle": rmse / oracle_rmse,
                "sd_tau": float(np.std(data.tau)),
                "gate_hits": gate_hits,
                "gate_total": gate_total,
                "unit_coverage": (
                    unit_coverage(r.tau_hat, r.tau_se, data.tau)
                    if r.tau_hat is not None
                    else float("nan")
                ),
                "seconds": r.seconds,
                "note": r.note,
            }
        )
    return rows, failures


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per design and tool."""

    def agg(g: pd.DataFrame) -> pd.Series:
        ratio = g["ratio_oracle"].dropna()
        gate_total = g["gate_total"].sum()
        return pd.Series(
            {
                "seeds": g["seed"].nunique(),
                "bias": g["bias"].mean(),
                "bias_sd": g["bias"].std(),
                "coverage": g["covered"].mean(),
                "rmse": g["rmse"].mean(),
                "rmse_sd": g["rmse"].std(),
                "ratio": ratio.median() if len(ratio) else np.nan,
                "ratio_q1": ratio.quantile(0.25) if len(ratio) else np.nan,
                "ratio_q3": ratio.quantile(0.75) if len(ratio) else np.nan,
                "gate_coverage": g["gate_hits"].sum() / gate_total if gate_total else np.nan,
                "unit_coverage": g["unit_coverage"].mean(),
                "unit_coverage_se": g["unit_coverage"].std() / np.sqrt(g["unit_coverage"].count()),
                "seconds": g["seconds"].mean(),
            }
        )

    order = {tool: k for k, tool in enumerate(TOOLS)}
    out = raw.groupby(["design", "tool"]).apply(agg, include_groups=False).reset_index()
    out["order"] = out["tool"].map(order)
    design_order = {d: k for k, d in enumerate(DESIGNS)}
    out["design_order"] = out["design"].map(design_order)
    return out.sort_values(["design_order", "order"]).drop(columns=["order", "design_order"])


def _paired(raw: pd.DataFrame, design: str, tool: str, other: str) -> float:
    """Mean RMSE of ``tool`` / mean RMSE of ``other`` over the seeds both ran on."""
    rows = raw[raw["design"] == design].pivot_table(index="seed", columns="tool", values="rmse")
    if tool not in rows or other not in rows:
        return float("nan")
    both = rows[[tool, other]].dropna()
    return float(both[tool].mean() / both[other].mean()) if len(both) else float("nan")


def _paired_difference(raw: pd.DataFrame, design: str, tool: str, other: str) -> str:
    """Mean per-seed RMSE difference ``tool - other`` and its standard error."""
    rows = raw[raw["design"] == design].pivot_table(index="seed", columns="tool", values="rmse")
    if tool not in rows or other not in rows:
        return "—"
    both = (rows[tool] - rows[other]).dropna()
    if len(both) < 2:
        return "—"
    return f"{both.mean():+.4f} ({both.std(ddof=1) / np.sqrt(len(both)):.4f})"


def headline(summary: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Per design: CATE RMSE of vaer's forest with and without the linear base, econml's
    defaults and grf; per-seed differences with their SEs; ratios; per-unit coverage."""
    pivot = summary.pivot(index="design", columns="tool", values="rmse")
    ratio = summary.pivot(index="design", columns="tool", values="ratio")
    cover = summary.pivot(index="design", columns="tool", values="unit_coverage")
    cover_se = summary.pivot(index="design", columns="tool", values="unit_coverage_se")
    rows = []
    for design in [d for d in DESIGNS if d in pivot.index]:
        get = pivot.loc[design].get

        def coverage(tool: str, design: str = design) -> float:
            return float(cover.loc[design].get(tool, np.nan))

        def coverage_se(tool: str, design: str = design) -> float:
            return float(cover_se.loc[design].get(tool, np.nan))

        rows.append(
            {
                "design": design,
                "family": family(design),
                "vaer_cf": get("vaer_cf", np.nan),
                "vaer_cf_base": get("vaer_cf_base", np.nan),
                "vaer_cf_nobase": get("vaer_cf_nobase", np.nan),
                "econml_cf": get("econml_cf", np.nan),
                "grf": get("grf", np.nan),
                "vs_econml": get("vaer_cf", np.nan) / get("econml_cf", np.nan),
                "diff_econml": _paired_difference(raw, design, "vaer_cf", "econml_cf"),
                "diff_nobase": _paired_difference(raw, design, "vaer_cf", "vaer_cf_nobase"),
                "diff_nobase_econml": _paired_difference(
                    raw, design, "vaer_cf_nobase", "econml_cf"
                ),
                "vs_grf": _paired(raw, design, "vaer_cf", "grf"),
                "diff_grf": _paired_difference(raw, design, "vaer_cf", "grf"),
                "vs_oracle": ratio.loc[design].get("vaer_cf", np.nan),
                "coverage": coverage("vaer_cf"),
                "coverage_se": coverage_se("vaer_cf"),
                "coverage_base": coverage("vaer_cf_base"),
                "coverage_base_se": coverage_se("vaer_cf_base"),
                "coverage_nobase": coverage("vaer_cf_nobase"),
                "coverage_nobase_se": coverage_se("vaer_cf_nobase"),
                "coverage_oracle": coverage("oracle"),
                "coverage_oracle_se": coverage_se("oracle"),
            }
        )
    return pd.DataFrame(rows)


def _with_se(value: float, se: float, digits: int = 2) -> str:
    if not np.isfinite(value):
        return "—"
    return f"{value:.{digits}f} ({se:.{digits}f})" if np.isfinite(se) else f"{value:.{digits}f}"


def markdown(
    raw: pd.DataFrame | None,
    summary: pd.DataFrame,
    head: pd.DataFrame,
    failures: dict[str, dict[str, str]],
    seeds: int,
    seconds: float,
    notes: list[str],
) -> str:
    lines = [
        "## Accuracy against known truth: vaer vs econml, DoubleML, grf (`accuracy.py`)",
        "",
        f"{seeds} seeds per design; every tool on the same draw; one core each. Designs "
        "(formulas in `benchmarks/designs.py`): Nie-Wager A-D (n=1000, d=6, sigma=1, "
        "binary T), Wager-Athey heterogeneous effects (n=2000, d=6, binary T), IHDP "
        "response surface B (n=747, econml's covariates, `momwhite` as control), vaer's "
        "synthetic firm table (2000 firms in 50 cities; `table_hard`: confounding 2, "
        "heterogeneity 0.5, noise 1). Oracle: vaer's default forest on the "
        "true-nuisance residuals. Tools are described in `benchmarks/peers.py`.",
        "",
        "Tuning vs held apart: vaer's forest chooses whether to start from a per-group "
        "linear base (`linear_base: auto`, the default: the smaller cluster-honest "
        "out-of-bag R-loss of the forest with and without it). The base was designed on "
        "the project's synthetic table (seeds 0-7); `table` and `table_hard` come from "
        "that generator: they are the tuning family, not evidence for it. Every other "
        "design (Nie-Wager A-D, Wager-Athey, IHDP) is held apart. `base` and `no base` "
        "are the same forest with `linear_base: true` / `false`, on the same nuisances.",
        "",
        "### Headline: causal-forest CATE RMSE (mean over seeds)",
        "",
        "Per-seed differences of CATE RMSE: mean over seeds (standard error of the mean "
        "difference); negative = the first tool is more accurate.",
        "",
        "| design | family | vaer CF (auto) | base | no base | econml CausalForestDML() "
        "| grf | vaer - econml | vaer - no base | no base - econml | vaer / econml "
        "| vaer / grf (same seeds) | vaer / oracle (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in head.iterrows():
        lines.append(
            f"| {r['design']} | {r['family']} | {_fmt(r['vaer_cf'])} | "
            f"{_fmt(r['vaer_cf_base'])} | {_fmt(r['vaer_cf_nobase'])} | "
            f"{_fmt(r['econml_cf'])} | {_fmt(r['grf'])} | "
            f"{r['diff_econml']} | {r['diff_nobase']} | {r['diff_nobase_econml']} | "
            f"{_fmt(r['vs_econml'], 2)} | {_fmt(r['vs_grf'], 2)} | {_fmt(r['vs_oracle'], 2)} |"
        )
    lines += [
        "",
        "### Per-unit 95% intervals of vaer's forest: coverage of the true effect",
        "",
        "Per seed, the share of units with |tau_hat - tau| <= 1.96 se (`tau_se`: bootstrap "
        "of little bags over half-samples of clusters, cluster-honest out-of-bag); mean "
        "over seeds (Monte-Carlo SE over seeds). Nominal 0.95. The oracle is the same "
        "default forest on the true-nuisance residuals.",
        "",
        "| design | family | vaer CF (auto) | base | no base | oracle |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in head.iterrows():
        lines.append(
            f"| {r['design']} | {r['family']} | {_with_se(r['coverage'], r['coverage_se'])} | "
            f"{_with_se(r['coverage_base'], r['coverage_base_se'])} | "
            f"{_with_se(r['coverage_nobase'], r['coverage_nobase_se'])} | "
            f"{_with_se(r['coverage_oracle'], r['coverage_oracle_se'])} |"
        )
    lines += [
        "",
        "### Per design and tool",
        "",
        "ATE bias: mean (sd) over seeds; coverage of the 95% interval; CATE RMSE mean (sd); "
        "RMSE / oracle: median [IQR] of per-seed ratios; GATE coverage over seeds x groups "
        "(table designs, by ownership); per-unit coverage as above; seconds: mean fit "
        "time (vaer: shared nuisances plus the estimator's own fit).",
        "",
        "| design | tool | seeds | ATE bias (sd) | ATE coverage | CATE RMSE (sd) "
        "| RMSE / oracle | GATE coverage | per-unit coverage | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        ratio = (
            f"{r['ratio']:.2f} [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]"
            if np.isfinite(r["ratio"])
            else "—"
        )
        rmse = f"{r['rmse']:.3f} ({r['rmse_sd']:.3f})" if np.isfinite(r["rmse"]) else "—"
        lines.append(
            f"| {r['design']} | {r['tool']} | {int(r['seeds'])} | "
            f"{r['bias']:+.3f} ({r['bias_sd']:.3f}) | "
            f"{_fmt(r['coverage'], 2)} | {rmse} | {ratio} | {_fmt(r['gate_coverage'], 2)} | "
            f"{_fmt(r['unit_coverage'], 2)} | {r['seconds']:.1f} |"
        )
    if raw is not None and "note" in raw:
        notes_by_tool = raw.dropna(subset=["note"]).groupby("tool")["note"].unique()
        listed = [
            f"- {tool}: {note}"
            for tool, unique in notes_by_tool.items()
            for note in unique
            if str(note).strip()
        ]
        if listed:
            lines += ["", "Notes the tools returned (per tool, distinct):", "", *listed]
    if failures:
        lines += ["", "Tools that failed (left out of the tables above):", ""]
        for design, by_tool in failures.items():
            for tool, error in by_tool.items():
                lines.append(f"- {design}, {tool}: {error}")
    lines += ["", "Notes:", "", *[f"- {note}" for note in notes]]
    lines += ["", f"Time of the last invocation {seconds:.0f} s."]
    return "\n".join(lines)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of the child processes it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def config_summary(seeds: int) -> str:
    """The settings the section ran on, read from vaer's config defaults."""
    forest = CausalForestDMLParams()
    nuisance = NuisanceConfig()
    return (
        f"seeds 0-{seeds - 1}; vaer_cf: causal_forest_dml defaults ({forest.n_estimators} "
        f"trees in groups of {forest.ci_group_size}, max_samples {forest.max_samples}, "
        f"min_samples_leaf {forest.min_samples_leaf}, max_subsample_size "
        f"{forest.max_subsample_size}, linear_base {str(forest.linear_base).lower()}, "
        f"cv {forest.cv}); vaer_cf_base / vaer_cf_nobase: the same with linear_base "
        "true / false; nuisances "
        f"{nuisance.model} (early_stopping {nuisance.early_stopping}, linear_candidate "
        f"{str(nuisance.linear_candidate).lower()}); econml_cf/econml_linear: econml "
        "defaults; one core per tool"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 seeds, no econml-same, no grf; writes the section `accuracy_quick`",
    )
    parser.add_argument("--designs", nargs="*", default=list(DESIGNS))
    parser.add_argument("--no-grf", action="store_true")
    parser.add_argument(
        "--grf-seeds", type=int, default=None, help="run grf on the first K seeds only"
    )
    parser.add_argument("--no-same", action="store_true", help="skip econml with vaer's settings")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vaer-bench-accuracy.csv"))
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    parser.add_argument(
        "--resume", action="store_true", help="keep the draws already in --out, run the rest"
    )
    args = parser.parse_args()
    seeds = 2 if args.quick else args.seeds
    with_same = not (args.quick or args.no_same)
    with_grf = not (args.no_grf or args.quick) and grf_available()
    notes = [
        "DoubleML's PLR gives an ATE and GATEs, no per-unit effects (CATE RMSE '—'). "
        "grf's ATE is the mean of its per-unit effects: skgrf exposes no ATE interval.",
        "Designs without clusters give every unit its own cluster. On the table designs "
        "(firms clustered in cities) vaer's and DoubleML's intervals are cluster-robust; "
        "econml's own intervals (`econml_*`) treat firms as independent.",
        "vaer's CATE for `vaer_linear` is cross-fitted (refitted on half of the clusters, "
        "predicted on the other half) and for `vaer_cf`, `vaer_cf_base` and `vaer_cf_nobase` "
        "cluster-honest out-of-bag: only the groups of trees whose half-sample left out "
        "the unit's whole cluster (and their linear bases) give its effect and SE; so "
        "for the oracle. econml's and grf's are in-sample predictions of honest forests "
        "(econml defaults, grf), or out-of-bag by unit (`econml_same_cf`: econml's "
        "`CausalForestDML` with vaer's forest numbers, subsampling units, not clusters).",
        "Held apart means apart from the linear-base choice only: some earlier defaults "
        "were set with these designs in view (nuisance early stopping on Nie-Wager A, "
        "`NuisanceConfig`), and issue 21 records that the lasso base this one replaced "
        "had its share chosen on all eight designs.",
    ]
    if not with_grf:
        notes.append(
            "grf did not run: "
            + (
                "--no-grf or --quick given (`scaling.py --quick` times it)."
                if args.no_grf or args.quick
                else "the peer environment is missing."
            )
        )
    if with_grf and args.grf_seeds is not None and args.grf_seeds < seeds:
        notes.append(
            f"grf ran on the first {args.grf_seeds} seeds only (`--grf-seeds`; time limit); "
            "its headline RMSE is over those seeds, the others' over all."
        )
    if not with_same:
        notes.append("econml with vaer's settings was not run (--quick or --no-same).")
    started = time.perf_counter()
    cpu_before, load_before = _cpu_seconds(), os.getloadavg()[0]
    steps = [
        s
        for s in STEPS
        if (s != "econml_same" or with_same) and (s != "grf" or with_grf) and s != "oracle"
    ]
    steps.insert(0, "oracle")
    rows: list[dict] = []
    if args.resume and args.out.is_file():
        previous = pd.read_csv(args.out)
        keep = previous["design"].isin(args.designs) & (previous["seed"] < seeds)
        rows = previous[keep].to_dict("records")
    n_resumed = len(rows)
    failure_file = args.out.with_suffix(".failures.json")
    failures: dict[str, dict[str, str]] = (
        json.loads(failure_file.read_text()) if args.resume and failure_file.is_file() else {}
    )
    for seed in range(seeds):  # seed-major: an interrupted run has every design at ~k seeds
        for design in args.designs:
            have = {r["tool"] for r in rows if r["design"] == design and r["seed"] == seed}
            todo = [
                s
                for s in steps
                if not set(STEP_TOOLS[s]) <= have
                and not (s == "grf" and args.grf_seeds is not None and seed >= args.grf_seeds)
            ]
            if not todo:
                continue
            oracle_rmse = next(
                (
                    r["rmse"]
                    for r in rows
                    if r["design"] == design and r["seed"] == seed and r["tool"] == "oracle"
                ),
                None,
            )
            t0 = time.perf_counter()
            new, failed = evaluate(design, seed, todo, oracle_rmse)
            rows += new
            for step, error in failed.items():
                failures.setdefault(design, {})[step] = error
            print(f"{design} seed {seed} {todo}: {time.perf_counter() - t0:.1f} s", flush=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
            failure_file.write_text(json.dumps(failures))
    seconds = time.perf_counter() - started
    notes.append(
        f"This invocation used {_cpu_seconds() - cpu_before:.0f} s of CPU (this process and "
        f"the subprocesses it waited for) in {seconds:.0f} s of wall time; load average of "
        f"the shared 2-core machine {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (the seconds columns are wall times)."
    )
    raw = pd.DataFrame(rows)
    summary = summarise(raw)
    head = headline(summary, raw)
    if n_resumed:
        notes.append(
            f"{n_resumed} of the {len(rows)} tool results were kept from earlier invocations "
            "(`--resume`); the time below is the last invocation's only."
        )
    text = markdown(raw, summary, head, failures, seeds, seconds, notes)
    print(text)
    if not args.no_results:
        update_results_section(
            "accuracy_quick" if args.quick else "accuracy", text, config=config_summary(seeds)
        )
    metrics = {
        f"{r['design']}.{r['tool']}.{k}": float(r[k])
        for _, r in summary.iterrows()
        for k in ("bias", "coverage", "rmse", "ratio", "gate_coverage", "seconds")
        if np.isfinite(r[k])
    }
    metrics.update(
        {f"{r['design']}.vaer_vs_econml_rmse": float(r["vs_econml"]) for _, r in head.iterrows()}
    )
    metrics.update(
        {
            f"{r['design']}.{tool}.unit_coverage": float(r["unit_coverage"])
            for _, r in summary.iterrows()
            for tool in [r["tool"]]
            if np.isfinite(r["unit_coverage"])
        }
    )
    log_benchmark(
        "accuracy_quick" if args.quick else "accuracy",
        metrics,
        {"seeds": seeds, "designs": ",".join(args.designs)},
    )


if __name__ == "__main__":
    main()
