r"""Monte Carlo validity of the ATT by firm type (``vaer.did.types``, issue 20 item 2).

Each draw simulates :func:`vaer.did.simulate.simulate_staggered` with a ``firm_type``
column (3 levels, ``soe``/``private``/``foreign``, selected on city development, each with
its own untreated trend; the module docstring has the formulas) and runs
:func:`vaer.did.types.att_gt_by_type` (Callaway-Sant'Anna DR, never-treated comparisons,
varying base, covariates ``x1, x2``, ``nuisance="pooled"``: type indicators added to
both nuisance models, ``inference="small_cluster"``), then
:func:`vaer.did.type_tables.type_frames` (the ``did_types`` / ``did_type_tests`` tables
of a run: t intervals, Holm / Romano-Wolf, simultaneous band over the levels, equality
Wald F test).

Designs (3000 firms, periods 2010-2019, cohorts 2014/2015/2016 + never, all other
``simulate_staggered`` defaults):

``het150`` / ``het40``
    :data:`~vaer.did.simulate.HETEROGENEOUS_TYPES` (effects x0.5, x1, x1.5), 150 / 40
    cities (about 32 / 8.5 adopting cities per cohort).
``hom150`` / ``hom40``
    :data:`~vaer.did.simulate.HOMOGENEOUS_TYPES`: the same types, selection and untreated
    trends, equal effects. The equality tests' null holds for every key.
``mild150`` / ``mild40`` (``--designs mild150,mild40 --append``)
    :data:`MILD_TYPES` (effects x0.9, x1, x1.1): the equality tests' power against a
    difference of a fifth of the effect between SOEs and foreign firms.

With one seed the designs of one city count share the panel apart from the effects
(paired draws), so their coverage rows often agree.

Truth: ``StaggeredTruth.type_att_gt`` and ``type_aggregate`` (population cohort shares
within each type, by quadrature): exact.

Numbers (95% level): coverage of each level's overall ATT for the four aggregations, of
each level's event-time ATTs (pooled over levels and event times; post e >= 0 and pre
e < 0 separately) and of its ATT(g, t) cells (pooled); coverage of the simultaneous band
over the levels (simple overall); the rejection rate at 5% of the equality test of the
overall aggregates and of each post event time (size under ``hom*``, power under
``het*``), and of the pairwise differences (Holm and raw). MC SEs: binomial over draws,
or for pooled rates the SD over draws of each draw's rate / sqrt(draws).

Seeds: draw ``s`` uses ``random_state = s`` for the panel and ``random_state = s`` for
the tables' null draws; reported seeds are ``1000 .. 1000 + S - 1``; seeds below 1000 are
for development (``--quick`` uses 0-4). No option of the estimator or of the tests was
chosen on any seed: they are the library's defaults (the equality test's degrees of
freedom were derived, not tuned).

Usage::

    PYTHONPATH=src python benchmarks/did_types_validity.py --seeds 200
    PYTHONPATH=src python benchmarks/did_types_validity.py --quick
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import git_state, log_benchmark, source_root, update_results_section

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "benchmarks" / "validity_runs" / "did_types_seeds.csv.gz"
FIRST_SEED = 1000
COVERAGE_TARGET = (0.92, 0.98)
SIZE_TARGET = 0.07
N_FIRMS = 3000
N_DRAWS = 500
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
MILD_TYPES = {"soe": 0.9, "private": 1.0, "foreign": 1.1}
"""Effects 10% below and above the private firms': the equality tests' power."""
DESIGNS = {
    "het150": ("heterogeneous", 150),
    "hom150": ("homogeneous", 150),
    "het40": ("heterogeneous", 40),
    "hom40": ("homogeneous", 40),
    "mild150": ("mild", 150),
    "mild40": ("mild", 40),
}


def run_seed(design: str, seed: int) -> list[dict[str, Any]]:
    """The rows of one draw: one per level x (aggregation, key) and per test."""
    from vaer.did import PanelColumns
    from vaer.did.simulate import HETEROGENEOUS_TYPES, HOMOGENEOUS_TYPES, simulate_staggered
    from vaer.did.type_tables import type_frames
    from vaer.did.types import att_gt_by_type

    kind, n_cities = DESIGNS[design]
    effects = {
        "heterogeneous": HETEROGENEOUS_TYPES, "homogeneous": HOMOGENEOUS_TYPES, "mild": MILD_TYPES
    }[kind]  # fmt: skip
    frame, truth = simulate_staggered(N_FIRMS, n_cities, type_effects=effects, random_state=seed)
    start = time.perf_counter()
    result = att_gt_by_type(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
        types=["firm_type"],
        covariates=["x1", "x2"],
    )["firm_type"]
    levels, tests = type_frames(result, n_draws=N_DRAWS, random_state=seed)
    seconds = time.perf_counter() - start
    return type_rows(
        result, levels, tests, truth, {"design": design, "seed": seed, "seconds": seconds}
    )


def type_rows(
    result: Any, levels: pd.DataFrame, tests: pd.DataFrame, truth: Any, base: dict[str, Any]
) -> list[dict[str, Any]]:
    """The rows of one draw of one estimator by type (``base`` added to each): every level's
    cells, its aggregations (overall and by key) against ``truth.type_aggregate`` and the
    tests of ``type_frames``."""
    rows: list[dict[str, Any]] = []
    for level, cells in result.cells.items():
        truth_cells = np.array(
            [
                truth.type_att_gt(level, int(g), int(t))
                for g, t in zip(cells.group, cells.time, strict=True)
            ]
        )
        table = cells.to_frame()
        covered = (table["ci_low"] <= truth_cells) & (truth_cells <= table["ci_high"])
        for k in range(len(truth_cells)):
            rows.append(
                {
                    **base, "kind": "cell", "level": level, "aggregation": "cell",
                    "key": f"{int(cells.group[k])}:{int(cells.time[k])}",
                    "event_time": int(cells.event_time[k]), "estimate": cells.att[k],
                    "truth": truth_cells[k], "se": cells.se[k], "covered": bool(covered.iloc[k]),
                }
            )  # fmt: skip

    def event(row: dict[str, Any]) -> float:
        key = row["key"]
        return int(key) if row["aggregation"] == "dynamic" and np.isfinite(key) else np.nan

    for row in levels.to_dict("records"):
        keyed, overall = truth.type_aggregate(str(row["level"]), str(row["aggregation"]))
        key = row["key"]
        true = overall if not np.isfinite(key) else keyed[int(key)]
        rows.append(
            {
                **base, "kind": "overall" if row["overall"] else "key", "level": row["level"],
                "aggregation": row["aggregation"], "key": "" if row["overall"] else str(int(key)),
                "event_time": event(row),
                "estimate": row["estimate"], "truth": true, "se": row["se"],
                "covered": bool(row["ci_low"] <= true <= row["ci_high"]),
                "band_covered": bool(row["band_low"] <= true <= row["band_high"]),
            }
        )  # fmt: skip
    for row in tests.to_dict("records"):
        key = row["key"]
        rows.append(
            {
                **base, "kind": row["test"], "level": row["contrast"],
                "aggregation": row["aggregation"],
                "key": "" if not np.isfinite(key) else str(int(key)),
                "event_time": event(row),
                "p_value": row["p_value"], "p_holm": row["p_holm"], "df_den": row["df_den"],
                "statistic": row["statistic"],
            }
        )  # fmt: skip
    return rows


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-draw rows worth keeping: pairwise differences of the simple overall ATT
    only (the summary uses no other), floats to 6 decimals."""
    keep = (frame["kind"] != "difference") | (
        (frame["aggregation"] == "simple") & (frame["key"].fillna("") == "")
    )
    return frame.loc[keep].round(6)


def _metric_name(name: str) -> str:
    """An MLflow-safe metric name."""
    return re.sub(
        r"[^A-Za-z0-9_.\- /:]", "", name.replace(",", "").replace(">=", "ge").replace("<", "lt")
    )


def _rate(flags: pd.Series) -> tuple[float, float, int]:
    values = flags.astype(float).to_numpy()
    m = float(values.mean())
    return m, float(np.sqrt(m * (1 - m) / len(values))), len(values)


def _pooled(frame: pd.DataFrame, column: str = "covered") -> tuple[float, float, int]:
    per_draw = frame.groupby("seed")[column].mean()
    return (
        float(frame[column].mean()),
        float(per_draw.std(ddof=1) / np.sqrt(len(per_draw))),
        len(per_draw),
    )


def _verdict(value: float, target: str) -> str:
    if target == "coverage":
        return "PASS" if COVERAGE_TARGET[0] <= value <= COVERAGE_TARGET[1] else "FAIL"
    if target == "size":
        return "PASS" if value <= SIZE_TARGET else "FAIL"
    return "(power)"


def summarise(frame: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """The markdown tables and the MLflow metrics of all designs."""
    designs = [d for d in DESIGNS if d in set(frame["design"])]
    lines: list[str] = []
    metrics: dict[str, float] = {}
    out: dict[str, dict[str, str]] = {d: {} for d in designs}
    order: list[str] = []

    def put(design: str, name: str, value: float, se: float, _n: int, target: str) -> None:
        if name not in order:
            order.append(name)
        out[design][name] = f"{value:.3f} ({se:.3f}) {_verdict(value, target)}"
        metrics[_metric_name(f"{design}.{name}")] = value

    for design in designs:
        rows = frame[frame["design"] == design]
        homogeneous = DESIGNS[design][0] == "homogeneous"
        overall = rows[rows["kind"] == "overall"]
        for name in AGGREGATIONS:
            part = overall[overall["aggregation"] == name]
            for level in sorted(set(part["level"])):
                put(
                    design,
                    f"{name} overall ATT, {level}",
                    *_rate(part[part["level"] == level]["covered"]),
                    "coverage",
                )
        simple = overall[overall["aggregation"] == "simple"]
        put(design, "simple overall, band over levels (all covered)",
            *_rate(simple.groupby("seed")["band_covered"].all()), "coverage")  # fmt: skip
        keys = rows[(rows["kind"] == "key") & (rows["aggregation"] == "dynamic")]
        put(
            design,
            "event-time ATT e >= 0, pooled",
            *_pooled(keys[keys["event_time"] >= 0]),
            "coverage",
        )
        put(
            design,
            "event-time ATT e < 0, pooled",
            *_pooled(keys[keys["event_time"] < 0]),
            "coverage",
        )
        cells = rows[rows["kind"] == "cell"]
        put(design, "ATT(g,t) cells, pooled", *_pooled(cells), "coverage")
        equality = rows[rows["kind"] == "equality"].copy()
        equality["reject"] = equality["p_value"] < 0.05
        target = "size" if homogeneous else "power"
        for name in AGGREGATIONS:
            part = equality[(equality["aggregation"] == name) & (equality["key"] == "")]
            put(design, f"equality test, {name} overall: rejection", *_rate(part["reject"]), target)
        post = equality[(equality["aggregation"] == "dynamic") & (equality["event_time"] >= 0)]
        put(
            design,
            "equality test, each event time e >= 0: rejection (pooled)",
            *_pooled(post, "reject"),
            target,
        )
        pre = equality[(equality["aggregation"] == "dynamic") & (equality["event_time"] < 0)]
        put(
            design,
            "equality test, each event time e < 0: rejection (pooled)",
            *_pooled(pre, "reject"),
            "size",
        )
        diffs = rows[
            (rows["kind"] == "difference") & (rows["aggregation"] == "simple") & (rows["key"] == "")
        ].copy()
        diffs["reject"] = diffs["p_holm"] < 0.05
        put(design, "any pairwise difference (simple overall, Holm): rejection",
            *_rate(diffs.groupby("seed")["reject"].any()), target)  # fmt: skip
        df_den = rows.loc[
            (rows["kind"] == "equality") & (rows["aggregation"] == "simple") & (rows["key"] == ""),
            "df_den",
        ]
        out[design]["equality df_den (simple overall), median"] = f"{df_den.median():.1f}"
        if "equality df_den (simple overall), median" not in order:
            order.append("equality df_den (simple overall), median")
        metrics[f"{design}.seconds_per_draw"] = float(
            rows.groupby("seed")["seconds"].first().mean()
        )
    lines.append("| quantity | " + " | ".join(designs) + " |")
    lines.append("|---|" + "---|" * len(designs))
    for name in order:
        lines.append(f"| {name} | " + " | ".join(out[d].get(name, "") for d in designs) + " |")
    return "\n".join(lines), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--designs", default="het150,hom150,het40,hom40")
    parser.add_argument("--quick", action="store_true", help="development: seeds 0-4")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--from-csv", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--append", action="store_true", help="add these designs' draws to the --csv file"
    )
    args = parser.parse_args()
    designs = args.designs.split(",")
    first = 0 if args.quick else FIRST_SEED
    n_seeds = 5 if args.quick else args.seeds
    seeds = range(first, first + n_seeds)
    state = git_state(source_root())
    if args.from_csv is not None:
        frame = pd.read_csv(args.from_csv)
        frame["key"] = frame["key"].fillna("").astype(str).str.replace(r"\.0$", "", regex=True)
    else:
        rows: list[dict[str, Any]] = []
        start = time.time()
        for design in designs:
            for seed in seeds:
                rows += run_seed(design, seed)
            print(f"{design}: {n_seeds} draws, {time.time() - start:.0f} s", flush=True)
        frame = _compact(pd.DataFrame(rows))
        if args.append and args.csv.is_file():
            before = pd.read_csv(args.csv, keep_default_na=False, na_values=[""])
            before["key"] = (
                before["key"].fillna("").astype(str).str.replace(r"\.0$", "", regex=True)
            )
            frame = pd.concat([before[~before["design"].isin(designs)], frame], ignore_index=True)
            designs = [d for d in DESIGNS if d in set(frame["design"])]
        if not args.quick:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(args.csv, index=False)
    table, metrics = summarise(frame)
    print(table)
    if args.quick:
        return
    if args.no_write:  # e.g. --from-csv: log the numbers, leave RESULTS.md as its run wrote it
        log_benchmark("did_types_validity", metrics, {"designs": ",".join(designs)})
        return
    used = sorted(set(frame["seed"]))
    text = (
        "## ATT by firm type: validity (`did_types_validity.py`)\n\n"
        f"Each draw: `simulate_staggered({N_FIRMS} firms, 150 or 40 cities, "
        "type_effects=HETEROGENEOUS_TYPES or HOMOGENEOUS_TYPES)` (3 types selected on city "
        "development with type-specific untreated trends; effects x0.5/x1/x1.5 or equal), "
        "`att_gt_by_type` (CS DR, never-treated, varying base, covariates x1 x2, "
        "nuisance pooled = type indicators in both nuisance models, small_cluster inference) "
        f"and `type_frames` ({N_DRAWS} null draws). Seeds {used[0]}-{used[-1]} "
        f"({len(used)} draws per design; seeds < 1000 are development seeds, not reported; "
        "nothing was tuned). Truth: exact ATT by type (`StaggeredTruth.type_aggregate`). "
        "95% intervals; targets: coverage 0.92-0.98, equality-test size <= 0.07. MC SE in "
        "brackets (binomial, or for pooled rows the SD over draws of each draw's rate / "
        f"sqrt(draws)). Per-draw rows: `{args.csv.relative_to(ROOT)}`.\n\n" + table
    )
    update_results_section(
        "did_types_validity", text,
        config=f"designs {designs}, {N_FIRMS} firms, seeds {used[0]}-{used[-1]}, dr, pooled "
        f"nuisance, small_cluster; code {state.describe()}",
    )  # fmt: skip
    try:
        log_benchmark(
            "did_types_validity", metrics, {"designs": ",".join(designs), "seeds": len(used)}
        )
    except Exception as exc:  # the numbers are in RESULTS.md either way
        print(f"MLflow logging failed: {exc}")


if __name__ == "__main__":
    main()
