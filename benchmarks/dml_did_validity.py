r"""Monte Carlo validity of ``dml_did`` (issue 20): overall ATTs and ATT by firm type.

Each draw simulates :func:`vaer.did.simulate.simulate_staggered` (3000 firms, periods
2010-2019, cohorts 2014/2015/2016 + never; covariate-specific untreated trends
``0.3 (t - t_0)(x1 + 0.5 x2)`` with ``x1`` tracking the city development that drives
adoption, so parallel trends hold only given the covariates; three firm types selected on
city development, each with its own untreated trend) and runs, with the did stage's
defaults for ``dml_did`` (the run's nuisance learners ``make_classifier`` /
``make_regressor`` of the default ``NuisanceConfig`` with ``n_jobs=1``: LightGBM, early
stopping on a held-out fifth of cities with a linear candidate; 5 folds of cities;
``random_state`` = the draw's seed; never-treated comparisons, varying base,
small-cluster inference):

- ``dml_att_gt`` with covariates ``x1, x2`` and the type indicators (the untreated trend
  depends on all of them), its four aggregations; ``att_gt`` (CS DR) with the same
  covariates on the same panel as a reference;
- ``dml_att_gt_by_type`` (type ``firm_type``; covariates ``x1, x2``, the type's indicators
  added by the function) and ``type_frames`` (500 null draws), the tables of a run.

Designs (the panels of ``did_types_validity.py``: same seeds and designs give the same
panels, so its Callaway-Sant'Anna numbers are paired with these):

``hom150`` / ``hom40``
    :data:`~vaer.did.simulate.HOMOGENEOUS_TYPES` (equal effects by type), 150 / 40 cities:
    coverage, and the size of the type-equality tests.
``het150`` / ``het40``
    :data:`~vaer.did.simulate.HETEROGENEOUS_TYPES` (effects x0.5, x1, x1.5): coverage by
    type, and power.

Truth (exact, population): ``ATT(g, t) = c tau(g, t - g)`` with
``c = sum_l m_l P(G = g, L = l) / P(G = g)`` (the same for every cohort: the cohorts share
one adoption odds) and 0 before adoption; the overall aggregates weight cohorts by their
population shares (``StaggeredTruth.type_aggregate`` with one level of multiplier ``c``);
by type, ``StaggeredTruth.type_aggregate``.

Seeds: draw ``s`` uses ``random_state = s`` for the panel, the learners, the folds and the
tables' null draws; reported seeds are ``1000 ..``; seeds below 1000 are for development
(``--quick``: 0-2). Nothing was tuned: the learners, folds and inference are the library's
defaults, fixed before any draw of this script ran.

Numbers (95% level): coverage of each overall aggregate (binomial MC SE), event-time ATTs
and ATT(g, t) cells pooled (MC SE: SD over draws of each draw's rate / sqrt(draws)); bias,
mean SE, bias / mean SE and SD(estimate - truth) / mean SE (per item, averaged over items);
by type, the rows of ``did_types_validity.summarise``.

Usage::

    PYTHONPATH=src python benchmarks/dml_did_validity.py --seeds 100 --designs hom150,hom40
    PYTHONPATH=src python benchmarks/dml_did_validity.py --quick
    PYTHONPATH=src python benchmarks/dml_did_validity.py --from-csv \
        benchmarks/validity_runs/dml_did_seeds.csv.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import git_state, log_benchmark, source_root, update_results_section
from did_types_validity import (
    COVERAGE_TARGET,
    DESIGNS,
    N_DRAWS,
    N_FIRMS,
    _compact,
    _metric_name,
    _pooled,
    _rate,
    _verdict,
    type_rows,
)
from did_types_validity import summarise as type_summary

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "benchmarks" / "validity_runs" / "dml_did_seeds.csv.gz"
FIRST_SEED = 1000
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
BIAS_TARGET = 0.2
"""|bias| / mean SE at most this."""


def overall_truth(truth: Any) -> Any:
    """The truth of the overall ATT as a one-level type truth (module docstring)."""
    levels = list(truth.type_effect)
    multipliers = [
        sum(truth.type_effect[lv] * truth.type_cohort_share[lv][g] for lv in levels)
        / truth.cohort_share[g]
        for g in truth.cohorts
    ]
    if np.ptp(multipliers) > 1e-10:
        raise ValueError("the cohorts' effect multipliers differ; the overall truth is not c tau")
    return dataclasses.replace(
        truth, type_effect={"all": float(multipliers[0])},
        type_cohort_share={"all": dict(truth.cohort_share)},
    )  # fmt: skip


def overall_rows(cells: Any, truth: Any, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one estimator's overall result: cells, event times, overall aggregates."""
    from vaer.did.aggregate import aggregate

    rows: list[dict[str, Any]] = []
    true_cells = np.array(
        [
            truth.type_att_gt("all", int(g), int(t))
            for g, t in zip(cells.group, cells.time, strict=True)
        ]
    )
    table = cells.to_frame()
    cover = (table["ci_low"] <= true_cells) & (true_cells <= table["ci_high"])
    for k in range(len(true_cells)):
        rows.append(
            {**base, "kind": "cell", "aggregation": "cell",
             "key": f"{int(cells.group[k])}:{int(cells.time[k])}",
             "event_time": int(cells.event_time[k]), "estimate": cells.att[k],
             "truth": true_cells[k], "se": cells.se[k], "covered": bool(cover.iloc[k])}
        )  # fmt: skip
    for name in AGGREGATIONS:
        result = aggregate(cells, name)
        keyed, overall = truth.type_aggregate("all", name)
        frame = result.to_frame()
        for k, key in enumerate(result.keys):
            true = keyed[int(key)]
            row = frame.iloc[k]
            rows.append(
                {**base, "kind": "key", "aggregation": name, "key": str(int(key)),
                 "event_time": int(key) if name == "dynamic" else np.nan,
                 "estimate": row["estimate"], "truth": true, "se": row["se"],
                 "covered": bool(row["ci_low"] <= true <= row["ci_high"])}
            )  # fmt: skip
        last = frame.iloc[-1]
        rows.append(
            {**base, "kind": "overall", "aggregation": name, "key": "",
             "estimate": result.overall_estimate, "truth": overall, "se": result.overall_se,
             "covered": bool(last["ci_low"] <= overall <= last["ci_high"])}
        )  # fmt: skip
    return rows


def run_seed(design: str, seed: int) -> list[dict[str, Any]]:
    """Every row of one draw: overall (dml_did and cs_did) and by type (dml_did)."""
    from vaer.config.estimators import NuisanceConfig
    from vaer.did import PanelColumns, att_gt
    from vaer.did.dml_did import CrossFitting, dml_att_gt
    from vaer.did.dml_types import dml_att_gt_by_type
    from vaer.did.simulate import HETEROGENEOUS_TYPES, HOMOGENEOUS_TYPES, simulate_staggered
    from vaer.did.type_tables import type_frames
    from vaer.estimators.learners import make_classifier, make_regressor

    roles = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")
    kind, n_cities = DESIGNS[design]
    effects = {"heterogeneous": HETEROGENEOUS_TYPES, "homogeneous": HOMOGENEOUS_TYPES}[kind]
    frame, truth = simulate_staggered(N_FIRMS, n_cities, type_effects=effects, random_state=seed)
    cities = frame[frame["cohort"] > 0].groupby("cohort")["city"].nunique()
    if (cities < 2).any():  # the did stage refuses a one-city cohort (no clustered SE)
        single = [int(g) for g in cities.index[cities < 2]]
        return [{"design": design, "seed": seed, "part": "run", "kind": "refused",
                 "key": f"one-city cohorts {single}"}]  # fmt: skip
    dummies = [f"type_{level}" for level in list(effects)[1:]]
    for name, level in zip(dummies, list(effects)[1:], strict=True):
        frame[name] = (frame["firm_type"] == level).astype(float)
    nuisance = NuisanceConfig(n_jobs=1)

    def learners() -> dict[str, Any]:
        return {
            "propensity_model": make_classifier(nuisance, seed),
            "outcome_model": make_regressor(nuisance, seed),
        }

    whole = overall_truth(truth)
    rows: list[dict[str, Any]] = []
    base = {"design": design, "seed": seed, "part": "overall"}
    covariates = ["x1", "x2", *dummies]
    start = time.perf_counter()
    dml = dml_att_gt(
        frame, roles, crossfit=CrossFitting(n_folds=5, random_state=seed, **learners()),
        covariates=covariates,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    rows += overall_rows(dml, whole, {**base, "estimator": "dml_did", "seconds": seconds})
    start = time.perf_counter()
    cs = att_gt(frame, roles, covariates=covariates, method="dr")
    seconds = time.perf_counter() - start
    rows += overall_rows(cs, whole, {**base, "estimator": "cs_did", "seconds": seconds})
    start = time.perf_counter()
    by_type = dml_att_gt_by_type(
        frame, roles, types=["firm_type"], covariates=["x1", "x2"],
        crossfit=CrossFitting(n_folds=5, random_state=seed, **learners()),
    )["firm_type"]  # fmt: skip
    levels, tests = type_frames(by_type, estimator="dml_did", n_draws=N_DRAWS, random_state=seed)
    seconds = time.perf_counter() - start
    base = {"design": design, "seed": seed, "part": "types", "estimator": "dml_did",
            "seconds": seconds}  # fmt: skip
    rows += type_rows(by_type, levels, tests, truth, base)
    return rows


def overall_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Coverage rows per design and estimator of the overall part."""
    out: list[dict[str, Any]] = []
    for (design, estimator), rows in frame.groupby(["design", "estimator"], sort=False):

        def add(
            quantity: str, value: float, se: float, n: int, *, key: tuple = (design, estimator)
        ) -> None:
            out.append(
                {"design": key[0], "estimator": key[1], "quantity": quantity, "value": value,
                 "mc_se": se, "draws": n, "verdict": _verdict(value, "coverage")}
            )  # fmt: skip

        overall = rows[rows["kind"] == "overall"]
        for name in AGGREGATIONS:
            add(
                f"{name} overall ATT",
                *_rate(overall.loc[overall["aggregation"] == name, "covered"]),
            )
        keys = rows[(rows["kind"] == "key") & (rows["aggregation"] == "dynamic")]
        add("event-time ATT e >= 0, pooled", *_pooled(keys[keys["event_time"] >= 0]))
        add("event-time ATT e < 0, pooled", *_pooled(keys[keys["event_time"] < 0]))
        cells = rows[rows["kind"] == "cell"]
        add("ATT(g,t) post cells, pooled", *_pooled(cells[cells["event_time"] >= 0]))
        add("ATT(g,t) pre cells, pooled", *_pooled(cells[cells["event_time"] < 0]))
    return pd.DataFrame(out)


def bias_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Bias (MC SE), mean SE, bias / mean SE and SD / mean SE per design, estimator, part
    and quantity."""
    frame = frame[frame["kind"].isin(["cell", "key", "overall"])]
    frame = frame.assign(error=frame["estimate"] - frame["truth"])
    out: list[dict[str, Any]] = []
    for (design, estimator, part), rows in frame.groupby(
        ["design", "estimator", "part"], sort=False
    ):
        groups = [
            (f"{name} overall" + (" (levels pooled)" if part == "types" else ""),
             rows[(rows["kind"] == "overall") & (rows["aggregation"] == name)])
            for name in AGGREGATIONS
        ]  # fmt: skip
        keys = rows[(rows["kind"] == "key") & (rows["aggregation"] == "dynamic")]
        cells = rows[rows["kind"] == "cell"]
        groups += [("event-time ATT e >= 0", keys[keys["event_time"] >= 0])]
        groups += [("ATT(g,t) post cells", cells[cells["event_time"] >= 0])]
        for quantity, part_rows in groups:
            item = ["key"] if part == "overall" else ["level", "key"]
            per_draw = part_rows.groupby("seed")[["error", "se"]].mean()
            per_item = part_rows.groupby(item).agg(
                sd=("error", "std"), se=("se", "mean"), bias=("error", "mean")
            )
            mean_se = float(per_draw["se"].mean())
            bias = float(per_draw["error"].mean())
            out.append(
                {"design": design, "estimator": estimator, "part": part, "quantity": quantity,
                 "draws": len(per_draw), "bias": bias,
                 "bias_mc_se": float(per_draw["error"].std(ddof=1) / np.sqrt(len(per_draw))),
                 "mean_se": mean_se, "bias_over_se": bias / mean_se,
                 "max_item_bias_over_se": float((per_item["bias"] / per_item["se"]).abs().max()),
                 "sd_over_se": float((per_item["sd"] / per_item["se"]).mean())}
            )  # fmt: skip
    return pd.DataFrame(out)


def _bias_verdict(value: float) -> str:
    return "PASS" if abs(value) <= BIAS_TARGET else "FAIL"


def markdown(
    frame: pd.DataFrame, args: argparse.Namespace, minutes: float | None
) -> tuple[str, dict[str, float]]:
    """The RESULTS.md section and the MLflow metrics."""
    refused = frame[frame["part"] == "run"].drop_duplicates(["design", "seed"])
    frame = frame[frame["part"] != "run"]
    overall = frame[frame["part"] == "overall"]
    types = frame[frame["part"] == "types"]
    summary = overall_summary(overall)
    bias = bias_summary(frame)
    designs = [d for d in DESIGNS if d in set(frame["design"])]
    seeds = sorted(set(frame["seed"]))
    per_design = frame.groupby("design")["seed"].nunique()
    seconds = (
        frame.drop_duplicates(["design", "seed", "part", "estimator"])
        .groupby(["part", "estimator"])["seconds"]
        .mean()
    )
    metrics: dict[str, float] = {}
    columns = [(d, e) for d in designs for e in ("dml_did", "cs_did")]
    lines = [
        "## dml_did validity: overall and by firm type (`dml_did_validity.py`)",
        "",
        f"Each draw: `simulate_staggered({N_FIRMS} firms, 150 or 40 cities, "
        "type_effects=HOMOGENEOUS_TYPES or HETEROGENEOUS_TYPES)` (periods 2010-2019, cohorts "
        "2014/2015/2016 + never; untreated trends 0.3 (t - t0)(x1 + 0.5 x2) with x1 tracking "
        "the city development that drives adoption, plus a trend per firm type; the panels of "
        "`did_types_validity.py`, same seeds). `dml_did` as the did stage runs it: "
        "`make_classifier`/`make_regressor` of the default `NuisanceConfig(n_jobs=1)` "
        "(LightGBM 300 trees, early stopping on held-out cities with a linear candidate), "
        "5 folds of cities, never-treated comparisons, varying base, small-cluster inference "
        "(CR2, Satterthwaite t). Overall: `dml_att_gt`, covariates x1 x2 and the type "
        "indicators; `cs_did` (`att_gt`, DR, same covariates) on the same panels as a "
        "reference. By type: `dml_att_gt_by_type` (covariates x1 x2, the type's indicators "
        f"added to both nuisances), `type_frames` ({N_DRAWS} null draws). Seeds "
        f"{seeds[0]}-{seeds[-1]} ("
        + ", ".join(f"{d}: {int(per_design[d])} draws" for d in designs)
        + "; draws refused as the did stage refuses them, a cohort in one city: "
        + (
            ", ".join(
                f"{d} {int(((refused['design'] == d) & (refused['kind'] == 'refused')).sum())}"
                for d in designs
            )
        )
        + "; draws that failed: "
        + (
            ", ".join(
                f"{d} {int(((refused['design'] == d) & (refused['kind'] == 'error')).sum())}"
                for d in designs
            )
        )
        + "; seeds < 1000 were development seeds, not reported; nothing was tuned: learners, "
        "folds and inference are the library defaults, fixed before this script ran). "
        "Truth: exact population ATTs (`StaggeredTruth.type_aggregate`). 95% intervals; "
        f"targets: coverage {COVERAGE_TARGET[0]}-{COVERAGE_TARGET[1]}, |bias| <= "
        f"{BIAS_TARGET} mean SE, equality-test size <= 0.07. MC SE in brackets (binomial, or "
        "for pooled rows the SD over draws of each draw's rate / sqrt(draws)). Seconds per "
        "draw: "
        + ", ".join(f"{p} {e} {v:.1f}" for (p, e), v in seconds.items())
        + f". Per-draw rows: `{DEFAULT_CSV.relative_to(ROOT)}`.",
        "",
        "Overall ATT: coverage",
        "",
        "| quantity | " + " | ".join(f"{d} {e}" for d, e in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for quantity in dict.fromkeys(summary["quantity"]):
        cells = []
        for d, e in columns:
            row = summary[(summary["design"] == d) & (summary["estimator"] == e)
                          & (summary["quantity"] == quantity)]  # fmt: skip
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            cells.append(f"{r['value']:.3f} ({r['mc_se']:.3f}) {r['verdict']}")
            metrics[_metric_name(f"{d}.{e}.{quantity}")] = float(r["value"])
        lines.append(f"| {quantity} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Bias (MC SE), mean SE, bias / mean SE (target |.| <= 0.2), the largest |bias| / SE "
        "of one item (cell, event time or level; MC noise alone gives about 0.1-0.3 with "
        "100 draws), SD(estimate - truth) / mean SE (1 when the SEs are right; per item, "
        "averaged):",
        "",
        "| design | estimator | part | quantity | bias (MC SE) | mean SE | bias / SE | "
        "max item |bias| / SE | SD / mean SE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in bias.itertuples(index=False):
        lines.append(
            f"| {r.design} | {r.estimator} | {r.part} | {r.quantity} | {r.bias:+.4f} "
            f"({r.bias_mc_se:.4f}) | {r.mean_se:.4f} | {r.bias_over_se:+.2f} "
            f"{_bias_verdict(r.bias_over_se)} | {r.max_item_bias_over_se:.2f} | "
            f"{r.sd_over_se:.2f} |"
        )
        metrics[_metric_name(f"{r.design}.{r.estimator}.{r.part}.{r.quantity}.bias_over_se")] = (
            float(r.bias_over_se)
        )
        metrics[_metric_name(f"{r.design}.{r.estimator}.{r.part}.{r.quantity}.sd_over_se")] = float(
            r.sd_over_se
        )
    if not types.empty:
        table, type_metrics = type_summary(types)
        metrics.update({f"types.{k}": v for k, v in type_metrics.items()})
        lines += ["", "ATT by firm type (dml_did):", "", table]
    if getattr(args, "stopped", False):
        lines += ["", f"Stopped at the deadline ({args.deadline:%H:%M} UTC); draws per design "
                  "as listed above."]  # fmt: skip
    if minutes is not None:
        lines += ["", f"Wall time: {minutes:.1f} min (1 process)."]
    return "\n".join(lines), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--designs", default="hom150,hom40")
    parser.add_argument("--quick", action="store_true", help="development: seeds 0-2, no writes")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--from-csv", type=Path, default=None)
    parser.add_argument("--append", action="store_true", help="add to the draws in --csv")
    parser.add_argument("--deadline", help="HH:MM (UTC, today): start no draw after it")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    designs = args.designs.split(",")
    unknown = [d for d in designs if d not in DESIGNS or DESIGNS[d][0] == "mild"]
    if unknown:
        raise SystemExit(f"unknown designs {unknown}; choose from hom150 hom40 het150 het40")
    first = 0 if args.quick else args.first_seed
    n_seeds = 3 if args.quick else args.seeds
    args.stopped = False
    if args.deadline:
        hour, minute = (int(v) for v in args.deadline.split(":"))
        args.deadline = datetime.now(UTC).replace(hour=hour, minute=minute, second=0)
    state = git_state(source_root())
    commit = state.commit[:12] + ("+dirty" if state.dirty else "")
    minutes = None
    if args.from_csv is not None:
        frame = pd.read_csv(args.from_csv, keep_default_na=False, na_values=[""])
    else:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        rows: list[dict[str, Any]] = []
        start = time.time()
        before = None
        if args.append and args.csv.is_file():
            before = pd.read_csv(args.csv, keep_default_na=False, na_values=[""])

        def save() -> pd.DataFrame:
            out = _compact(pd.DataFrame(rows)).assign(commit=commit)
            if before is not None:
                out = pd.concat([before, out], ignore_index=True)
            if not args.quick:
                args.csv.parent.mkdir(parents=True, exist_ok=True)
                partial = args.csv.with_name(args.csv.name + ".partial")
                out.to_csv(partial, index=False, compression="gzip")
                partial.replace(args.csv)
            return out

        done = 0
        for seed in range(first, first + n_seeds):
            if args.deadline is not None and datetime.now(UTC) >= args.deadline:
                args.stopped = True
                break
            for design in designs:
                t0 = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        rows += run_seed(design, seed)
                except Exception as exc:  # counted and reported, not replaced
                    rows.append({"design": design, "seed": seed, "part": "run", "kind": "error",
                                 "key": f"{type(exc).__name__}: {exc}"[:300]})  # fmt: skip
                done += 1
                print(f"{design} seed {seed}: {time.perf_counter() - t0:.1f}s "
                      f"({datetime.now(UTC):%H:%M:%S} UTC)", flush=True)  # fmt: skip
            if done % 10 == 0:
                save()
        frame = save()
        minutes = (time.time() - start) / 60
    frame["key"] = frame["key"].fillna("").astype(str).str.replace(r"\.0$", "", regex=True)
    text, metrics = markdown(frame, args, minutes)
    print(text)
    if args.quick or args.no_write:
        return
    commits = sorted(set(frame["commit"].astype(str)))
    update_results_section(
        "dml_did_validity", text,
        config=f"designs {sorted(set(frame['design']))}, {N_FIRMS} firms, seeds "
        f"{int(frame['seed'].min())}-{int(frame['seed'].max())}, dml_did default nuisances "
        f"(n_jobs 1), 5 city folds, small_cluster; runs at commit(s) {', '.join(commits)}",
    )  # fmt: skip
    try:
        log_benchmark(
            "dml_did_validity", metrics, {"designs": ",".join(sorted(set(frame["design"])))}
        )
    except Exception as exc:  # the numbers are in RESULTS.md either way
        print(f"MLflow logging failed: {exc}")


if __name__ == "__main__":
    main()
