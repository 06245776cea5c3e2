r"""Monte Carlo validity of the ``did`` stage on vaer's own synthetic firm panel (issue 22).

Every draw is one end-to-end run of :func:`vaer.pipeline.run_experiment` on
``experiments/broadband_did.yaml`` (synthetic panel, ``data.mode: panel``, the
Broadband-China-style pilot waves 2014/2015/2016 + never-treated cities), changed only in:
``data.panel`` as in the design, tracking off, CSV tables only, heterogeneity, attribution
and robustness off, one cheap cross-sectional estimator (``linear_dml`` with ``cv: 2``; the
pipeline always has one), ``did.n_boot: 999`` and ``did.first_year: 2012`` /
``did.last_year: 2018`` (the years where the synthetic truth is exact,
:meth:`vaer.data.synthetic.PilotTruth.exact_in`). The stage estimates Callaway-Sant'Anna
ATT(g, t) on log exports (doubly robust, never-treated controls, no covariates, varying
base period), city-clustered analytic SEs, the four aggregations with 999-draw cluster
multiplier-bootstrap uniform bands, and the joint pre-trend F test.

Designs (``data.panel``; 5,000 firms, 2005-2022, of which 2012-2018 are used):

``a150``
    ``pilot_effect 0.1, pilot_dynamics 0.1, pilot_heterogeneity 1, pretrend 0``,
    150 cities: parallel trends hold; dynamic effects varying by firm type.
``b40``
    The same with 40 cities (about 4 cities per pilot wave). A draw where a wave has
    exactly one city is refused by the stage (no clustered SE for a one-city cohort);
    such draws are counted, not replaced.
``c_pretrend``
    ``a150`` plus ``pretrend 0.01``: pilot cities' log exports follow their own linear
    trend (slope 0.01 a year), which breaks parallel trends. Measures the pre-trend test's
    power; coverage is reported but has no target (the estimand is biased by design).
``d_null``
    ``a150`` with ``pilot_effect 0``: no effect and parallel trends. The pre-trend test's
    size (as in ``a150``/``b40``) and the coverage of a zero effect.

Seeds: draw ``s`` is the run's ``seed: s`` (which seeds the panel generator and the
bootstraps), ``s = 1000 .. 1000 + S - 1`` in every design. Seeds below 1000 are the tuning
seeds (used while developing vaer.did and this script, and by ``--quick``: seeds 0-2) and
are never reported. The generator draws no random number for the pilot shift, so with one
seed ``a150``, ``c_pretrend`` and ``d_null`` share the same panel apart from the pilot
cities' exports (paired draws); ``b40`` draws other panels (fewer cities).

Truth: ATT(g, t) of a cell is the mean true effect (at ``t`` minus at its base period) over
the cohort's firms the cell used (:func:`vaer.did.stage.true_att_gt` with the panel's
:class:`~vaer.data.synthetic.PilotTruth`); the true event-time path and the true overall
ATTs are the same aggregations of a copy of the ATT(g, t) result whose ``att`` is the true
cells (as :func:`vaer.did.stage.did_truth_metrics` computes them; the overall coverage
agrees with the stage's own ``did.*.covered`` truth metrics, checked per draw).

What each number means (95% level):

- ATT(g, t) coverage, pooled: share of (draw, cell) pairs whose pointwise interval covers
  the cell's truth; its MC SE is the SD over draws of each draw's share / sqrt(draws)
  (cells of one draw are correlated). Post cells: the same over t >= g only.
- ATT(g, t) worst cell: each cell's coverage rate over draws (binomial MC SE); the lowest
  one is reported with its cell (g, t). ``expected worst`` is the 5% quantile of the
  lowest of that many independent Binomial(draws, 0.95) rates, i.e. how low the worst
  cell falls by chance alone when every cell covers exactly 95%.
- ATT(g, t) uniform band: share of draws whose sup-t band covers every cell at once.
- Event-time ATT: the same for the dynamic aggregation's event times (pooled and worst);
  dynamic uniform band: share of draws whose band covers the whole true event-time path.
- simple / dynamic / group / calendar: coverage of each aggregation's overall ATT.
- Pre-trend rejection: share of draws with the F test's p < 0.05 (size when parallel
  trends hold, power in ``c_pretrend``).
- Bias: mean over draws of estimate - truth (MC SE = SD / sqrt(draws)), beside the mean
  SE, bias / mean SE and SD(estimate - truth) / mean SE (1 when the SEs are right).

Targets: coverage in [0.92, 0.98]; pre-trend rejection <= 0.07 where parallel trends hold.

Usage::

    PYTHONPATH=src python benchmarks/did_validity.py --seeds 200 --workers 2
    PYTHONPATH=src python benchmarks/did_validity.py --quick          # development
    PYTHONPATH=src python benchmarks/did_validity.py \
        --from-csv benchmarks/validity_runs/did_seeds.csv.gz
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import git_state, log_benchmark, source_root, update_results_section

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "benchmarks" / "validity_runs" / "did_seeds.csv.gz"
FIRST_SEED = 1000
COVERAGE_TARGET = (0.92, 0.98)
SIZE_TARGET = 0.07
LEVEL = 0.05
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")


@dataclasses.dataclass(frozen=True)
class Design:
    """One Monte Carlo design: the ``data.panel`` changes and what it tests."""

    name: str
    label: str
    n_cities: int
    pilot_effect: float
    pretrend: float

    @property
    def parallel_trends(self) -> bool:
        return self.pretrend == 0.0


DESIGNS = {
    d.name: d
    for d in (
        Design("a150", "effect 0.1, 150 cities", 150, 0.1, 0.0),
        Design("b40", "effect 0.1, 40 cities", 40, 0.1, 0.0),
        Design("c_pretrend", "effect 0.1, 150 cities, pretrend 0.01", 150, 0.1, 0.01),
        Design("d_null", "no effect, 150 cities", 150, 0.0, 0.0),
    )
}


def build_raw(
    design: Design,
    seed: int,
    n_firms: int,
    n_boot: int,
    out: Path,
    inference: str = "small_cluster",
) -> dict[str, Any]:
    """The experiment of one draw: ``broadband_did.yaml`` with the design's panel and
    ``did.inference`` (``n_boot`` is used by the asymptotic mode only)."""
    from vaer.config.loader import load_raw

    raw = load_raw(ROOT / "experiments" / "broadband_did.yaml")
    raw = copy.deepcopy(raw)
    raw["name"] = f"did-validity-{design.name}"
    raw["seed"] = seed
    raw["data"]["panel"].update(
        n_firms=n_firms,
        n_cities=design.n_cities,
        pilot_effect=design.pilot_effect,
        pilot_dynamics=0.1,
        pilot_heterogeneity=1.0,
        pretrend=design.pretrend,
    )
    raw["estimators"] = [{"kind": "linear_dml", "params": {"cv": 2}}]
    raw["nuisance"] = {"n_jobs": 1}
    for stage in ("heterogeneity", "attribution", "robustness"):
        raw[stage] = {"enabled": False}
    raw["did"].update(
        enabled=True, n_boot=n_boot, first_year=2012, last_year=2018,
        unvalidated_inference=True, inference=inference,
    )  # fmt: skip
    raw["tracking"] = {"enabled": False}
    raw["report"] = {"out": str(out / "{run_name}-{run_id}"), "formats": ["csv"]}
    return raw


def measure(did: Any, pilot: Any, stage_truth: dict[str, float]) -> list[dict[str, Any]]:
    """Rows of one draw: every cell, event time, overall ATT, both bands, the pre-trend test.

    Parameters
    ----------
    did : vaer.did.stage.DidResult
    pilot : vaer.data.synthetic.PilotTruth
    stage_truth : dict
        The run's ``RunResult.truth`` (the stage's own ``did.*`` checks).
    """
    from vaer.did.aggregate import aggregate
    from vaer.did.stage import true_att_gt

    cells = did.att_gt
    if not all(
        pilot.exact_in(t) and pilot.exact_in(b)
        for t, b in zip(cells.time, cells.base_period, strict=True)
    ):
        raise ValueError("a cell uses a year where the synthetic truth is not exact")
    truth = true_att_gt(did, pilot.effect)
    rows: list[dict[str, Any]] = []
    frame = cells.to_frame()
    cover = (frame["ci_low"] <= truth) & (truth <= frame["ci_high"])
    for k in range(len(cells.att)):
        rows.append(
            {
                "kind": "cell",
                "key": f"{int(cells.group[k])}:{int(cells.time[k])}",
                "event_time": int(cells.event_time[k]),
                "post": bool(cells.post[k]),
                "estimate": float(cells.att[k]),
                "se": float(cells.se[k]),
                "truth": float(truth[k]),
                "covered": bool(cover[k]),
            }
        )
    live = frame["se"].notna()
    in_band = (frame["band_low"] <= truth) & (truth <= frame["band_high"])
    rows.append({"kind": "cell_band", "key": "all", "covered": bool(in_band[live].all())})
    true_cells = dataclasses.replace(cells, att=truth)
    for name in AGGREGATIONS:
        est = did.aggregates[name]
        if name == "dynamic":
            low, high = float(est.keys.min()), float(est.keys.max())
            true_agg = aggregate(true_cells, name, min_e=low, max_e=high)
            true_path = true_agg.estimate
            assert np.array_equal(true_agg.keys, est.keys)
            path = est.to_frame().iloc[:-1]
            cover_e = (path["ci_low"] <= true_path) & (true_path <= path["ci_high"])
            for k, e in enumerate(est.keys):
                rows.append(
                    {
                        "kind": "event",
                        "key": str(int(e)),
                        "event_time": int(e),
                        "post": bool(e >= 0),
                        "estimate": float(est.estimate[k]),
                        "se": float(est.se[k]),
                        "truth": float(true_path[k]),
                        "covered": bool(cover_e[k]),
                    }
                )
            band = (path["band_low"] <= true_path) & (true_path <= path["band_high"])
            band_all = bool(band[path["se"].notna()].all())
            rows.append({"kind": "event_band", "key": "all", "covered": band_all})
        else:
            true_agg = aggregate(true_cells, name)
        true_value = true_agg.overall_estimate
        last = est.to_frame().iloc[-1]
        covered = bool(last["ci_low"] <= true_value <= last["ci_high"])
        stage = stage_truth.get(f"did.{name}.covered")
        rows.append(
            {
                "kind": "overall",
                "key": name,
                "estimate": est.overall_estimate,
                "se": est.overall_se,
                "truth": true_value,
                "covered": covered,
                "stage_agrees": None if stage is None else bool(stage) == covered,
            }
        )
    test = did.pretrend
    rows.append(
        {
            "kind": "pretrend",
            "key": ",".join(str(int(e)) for e in test.event_times),
            "estimate": test.statistic,
            "p_value": test.p_value,
            "rejected": bool(test.p_value < LEVEL),
        }
    )
    return rows


def run_seed(
    design_name: str, seed: int, n_firms: int, n_boot: int, inference: str
) -> list[dict[str, Any]]:
    """One draw of one design through the pipeline; a refused or failed run gives one row
    with its ``status`` and message."""
    from vaer.config.loader import validate_config
    from vaer.measures.study import load_study_data
    from vaer.pipeline import run_experiment

    design = DESIGNS[design_name]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vaer-didval-") as folder:
        raw = build_raw(design, seed, n_firms, n_boot, Path(folder), inference)
        config = validate_config(raw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = run_experiment(config)
            loaded = load_study_data(config.data, config.roles, config.measures, seed=config.seed)
            pilot = loaded.source_panel.synthetic.pilot
            rows = measure(result.did, pilot, result.truth or {})
            status, note = "ok", ""
        except (
            ValueError
        ) as exc:  # the stage refuses data it cannot estimate (e.g. one-city cohort)
            rows, status, note = [{"kind": "run"}], "refused", str(exc)[:300]
        except Exception as exc:
            rows, status = [{"kind": "run"}], "error"
            note = f"{type(exc).__name__}: {exc}; {traceback.format_exc(limit=3)[-300:]}"
    seconds = time.perf_counter() - started
    for row in rows:
        row.update(design=design_name, seed=seed, status=status, note=note, seconds=seconds)
    return rows


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


COLUMNS = [
    "design", "seed", "status", "kind", "key", "event_time", "post", "estimate", "se",
    "truth", "covered", "stage_agrees", "p_value", "rejected", "seconds", "note", "commit",
]  # fmt: skip


def _past(deadline: datetime | None) -> bool:
    return deadline is not None and datetime.now(UTC) >= deadline


def run(args: argparse.Namespace) -> pd.DataFrame:
    """Every (design, seed) draw, seed by seed (so that a run stopped at ``args.deadline``
    leaves every design with about as many draws), in a pool of ``args.workers`` processes
    (0 = in this process); the per-seed rows are saved to ``args.csv`` every 20 draws and
    at the end. Draws not started by the deadline are not run."""
    state = git_state(source_root())
    commit = state.commit[:12] + ("+dirty" if state.dirty else "")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(d, s) for s in seeds for d in args.designs]
    rows: list[dict[str, Any]] = []

    def save(done: int) -> None:
        frame = pd.DataFrame(rows).reindex(columns=COLUMNS).assign(commit=commit)
        frame = frame.sort_values(["design", "seed"], kind="stable")
        if args.csv is not None:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            partial = args.csv.with_name(args.csv.name + ".partial")
            frame.to_csv(partial, index=False, compression="gzip")
            partial.replace(args.csv)
        print(f"{done}/{len(tasks)} draws done ({datetime.now(UTC):%H:%M:%S} UTC)", flush=True)

    def collect(found: list[dict[str, Any]], done: int) -> None:
        rows.extend(found)
        first = found[0]
        print(
            f"{first['design']} seed {first['seed']}: {first['status']} {first['seconds']:.1f}s",
            flush=True,
        )
        if done % 20 == 0:
            save(done)

    done = 0
    if args.workers == 0:
        _one_thread()
        for design, seed in tasks:
            if _past(args.deadline):
                break
            done += 1
            collect(run_seed(design, seed, args.n_firms, args.n_boot, args.inference), done)
    else:
        with ProcessPoolExecutor(
            args.workers, mp_context=get_context("spawn"), initializer=_one_thread
        ) as pool:
            futures = [
                pool.submit(run_seed, d, s, args.n_firms, args.n_boot, args.inference)
                for d, s in tasks
            ]
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                done += 1
                collect(future.result(), done)
                if _past(args.deadline):
                    for waiting in futures:
                        waiting.cancel()
    args.stopped = done < len(tasks)
    save(done)
    return pd.DataFrame(rows).reindex(columns=COLUMNS).assign(commit=commit)


# ----------------------------------------------------------------------- summary


def _rate(flags: pd.Series) -> tuple[float, float, int]:
    """Share of true flags, its binomial MC SE and the count."""
    n = int(flags.count())
    p = float(flags.astype(float).mean()) if n else float("nan")
    return p, float(np.sqrt(p * (1 - p) / n)) if n else float("nan"), n


def _pooled(frame: pd.DataFrame) -> tuple[float, float, int]:
    """Pooled share over (draw, item) pairs; MC SE from the spread of per-draw shares."""
    per_draw = frame.groupby("seed")["covered"].mean()
    n = len(per_draw)
    p = float(frame["covered"].astype(float).mean())
    return p, float(per_draw.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"), n


def expected_worst(n_items: int, n_draws: int, n_sim: int = 20000, seed: int = 0) -> float:
    """5% quantile of the lowest of ``n_items`` independent Binomial(n_draws, 0.95) / n_draws."""
    rng = np.random.default_rng(seed)
    lowest = rng.binomial(n_draws, 1 - LEVEL, size=(n_sim, n_items)).min(axis=1) / n_draws
    return float(np.quantile(lowest, 0.05))


def _worst(frame: pd.DataFrame) -> dict[str, Any]:
    by = frame.groupby("key")["covered"].agg(["mean", "count"])
    key = str(by["mean"].idxmin())
    p, n = float(by.loc[key, "mean"]), int(by.loc[key, "count"])
    return {
        "value": p,
        "mc_se": float(np.sqrt(p * (1 - p) / n)),
        "draws": n,
        "item": key,
        "best": float(by["mean"].max()),
        "expected_worst": expected_worst(len(by), int(by["count"].median())),
    }


def _coverage_verdict(value: float, design: Design) -> str:
    if not design.parallel_trends:
        return "n/a"
    low, high = COVERAGE_TARGET
    return "PASS" if low <= value <= high else "FAIL"


def _true(value: object) -> bool:
    """A flag as written to or read back from the CSV (True, "True", 1; NaN is False)."""
    return value in (True, "True", 1, 1.0)


def summarise_design(name: str, ok: pd.DataFrame) -> list[dict[str, Any]]:
    """The summary rows of one design from its successful draws' rows."""
    design = DESIGNS[name]
    ok = ok.assign(covered=ok["covered"].map(_true))
    out: list[dict[str, Any]] = []

    def add(quantity: str, value: float, mc_se: float, draws: int, **extra: Any) -> None:
        out.append(
            {"design": name, "quantity": quantity, "value": value, "mc_se": mc_se,
             "draws": draws, "verdict": _coverage_verdict(value, design), **extra}
        )  # fmt: skip

    cells = ok[ok["kind"] == "cell"]
    post = cells[cells["post"].map(_true)]
    events = ok[ok["kind"] == "event"]
    add("ATT(g,t) pooled", *_pooled(cells))
    add("ATT(g,t) post cells pooled", *_pooled(post))
    worst = _worst(cells)
    add(
        "ATT(g,t) worst cell", worst["value"], worst["mc_se"], worst["draws"],
        item=f"(g,t)=({worst['item'].replace(':', ',')}); best cell {worst['best']:.3f}",
        expected_worst=worst["expected_worst"],
    )  # fmt: skip
    add("ATT(g,t) uniform band", *_rate(ok.loc[ok["kind"] == "cell_band", "covered"]))
    add("event-time ATT pooled", *_pooled(events))
    worst = _worst(events)
    add(
        "event-time ATT worst", worst["value"], worst["mc_se"], worst["draws"],
        item=f"e={worst['item']}; best {worst['best']:.3f}",
        expected_worst=worst["expected_worst"],
    )  # fmt: skip
    add("dynamic uniform band", *_rate(ok.loc[ok["kind"] == "event_band", "covered"]))
    overall = ok[ok["kind"] == "overall"]
    for agg in AGGREGATIONS:
        add(f"{agg} overall ATT", *_rate(overall.loc[overall["key"] == agg, "covered"]))
    pre = ok[ok["kind"] == "pretrend"]
    p, se, n = _rate(pre["rejected"].map(_true))
    role = "size" if design.parallel_trends else "power"
    verdict = ("PASS" if p <= SIZE_TARGET else "FAIL") if role == "size" else "(power)"
    out.append(
        {"design": name, "quantity": f"pre-trend rejection at 5% ({role})", "value": p,
         "mc_se": se, "draws": n, "verdict": verdict}
    )  # fmt: skip
    agree = overall["stage_agrees"].dropna()
    out.append(
        {"design": name, "quantity": "overall coverage = stage's truth metric",
         "value": float(agree.map(_true).mean()), "mc_se": float("nan"),
         "draws": len(agree), "verdict": ""}
    )  # fmt: skip
    return out


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (design, quantity): value, MC SE, draws, target and verdict."""
    out: list[dict[str, Any]] = []
    for name in [d for d in DESIGNS if d in set(frame["design"])]:
        ok = frame[(frame["design"] == name) & (frame["status"] == "ok")]
        if not ok.empty:
            out += summarise_design(name, ok)
    return pd.DataFrame(out)


def bias_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean bias (MC SE), mean SE, bias / mean SE and SD / mean SE per design and quantity."""
    ok = frame[(frame["status"] == "ok") & frame["kind"].isin(["cell", "event", "overall"])]
    ok = ok.assign(error=ok["estimate"] - ok["truth"])
    out = []
    for name in [d for d in DESIGNS if d in set(ok["design"])]:
        mine = ok[ok["design"] == name]
        post = mine[(mine["kind"] == "cell") & mine["post"].map(_true)]
        pre = mine[(mine["kind"] == "cell") & ~mine["post"].map(_true)]
        events = mine[(mine["kind"] == "event") & mine["post"].map(_true)]
        groups = [("ATT(g,t) post cells", post), ("ATT(g,t) pre cells", pre)]
        groups += [("event-time ATT, e >= 0", events)]
        groups += [
            (f"{a} overall", mine[(mine["kind"] == "overall") & (mine["key"] == a)])
            for a in AGGREGATIONS
        ]
        for quantity, part in groups:
            # per draw: mean error and SE over the items, then over draws
            per_draw = part.groupby("seed")[["error", "se"]].mean()
            # SD of the error over draws / mean SE, per item (cell), averaged over items
            per_item = part.groupby("key").agg(sd=("error", "std"), se=("se", "mean"))
            sd_over_se = float((per_item["sd"] / per_item["se"]).mean())
            mean_se = float(per_draw["se"].mean())
            bias = float(per_draw["error"].mean())
            out.append(
                {"design": name, "quantity": quantity, "draws": len(per_draw), "bias": bias,
                 "bias_mc_se": float(per_draw["error"].std(ddof=1) / np.sqrt(len(per_draw))),
                 "mean_se": mean_se, "bias_over_se": bias / mean_se, "sd_over_se": sd_over_se}
            )  # fmt: skip
    return pd.DataFrame(out)


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Draws per design by status, with the seconds per draw and the first refusal."""
    per = frame.drop_duplicates(["design", "seed"])
    out = []
    for name in [d for d in DESIGNS if d in set(per["design"])]:
        mine = per[per["design"] == name]
        refused = mine[mine["status"] == "refused"]
        out.append(
            {"design": name, "draws": len(mine), "ok": int((mine["status"] == "ok").sum()),
             "refused": len(refused), "errors": int((mine["status"] == "error").sum()),
             "seeds": f"{int(mine['seed'].min())}-{int(mine['seed'].max())}",
             "seconds_per_draw": float(mine["seconds"].mean()),
             "refusal": str(refused["note"].iloc[0])[:160] if len(refused) else ""}
        )  # fmt: skip
    return pd.DataFrame(out)


def _fmt(value: float, mc_se: float) -> str:
    return f"{value:.3f} ({mc_se:.3f})" if np.isfinite(mc_se) else f"{value:.3f}"


def section(
    summary: pd.DataFrame, bias: pd.DataFrame, runs: pd.DataFrame, args: argparse.Namespace,
    minutes: float | None,
) -> str:  # fmt: skip
    names = list(runs["design"])
    lines = [
        "## Staggered DiD validity on the synthetic panel (`did_validity.py`)",
        "",
        "Each draw is one `vaer.pipeline.run_experiment` of `experiments/broadband_did.yaml` "
        f"with {args.n_firms:,} firms, 2012-2018, the did stage (Callaway-Sant'Anna, dr, "
        f"never-treated controls, did.inference: {args.inference}: "
        + (
            "leverage-adjusted (CR2) city-clustered SEs, t intervals with Satterthwaite df, "
            "Bonferroni-t bands and pre-trend test"
            if args.inference == "small_cluster"
            else f"CR1 city-clustered SEs, normal intervals, {args.n_boot}-draw city "
            "multiplier bootstrap sup-t bands, Wald F(q, G-1) pre-trend test"
        )
        + "), tracking off, CSV tables only, "
        "heterogeneity/attribution/robustness off, linear_dml (cv 2) as the cross-sectional "
        "estimator. Designs: "
        + "; ".join(f"`{d}` = {DESIGNS[d].label}" for d in names)
        + " (all: pilot_dynamics 0.1, pilot_heterogeneity 1). Seeds "
        f"{args.first_seed}-{args.first_seed + args.seeds - 1} (seeds < 1000 are tuning "
        "seeds, not reported). Truth: the true ATT(g, t) of the firms each cell used, "
        "aggregated like the estimates. 95% intervals; target coverage "
        f"{COVERAGE_TARGET[0]}-{COVERAGE_TARGET[1]}, pre-trend size <= {SIZE_TARGET}. MC SE in "
        "brackets: binomial over draws, or (pooled rows) the SD over draws of each draw's "
        "share / sqrt(draws). `expected worst` = 5% quantile of the lowest of that many "
        "Binomial(draws, 0.95) rates (the worst cell's chance level). Per-seed rows: "
        "`benchmarks/validity_runs/did_seeds.csv.gz`.",
        "",
        "| design | draws | ok | refused | errors | seeds | s / draw | refusal (first) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs.itertuples(index=False):
        lines.append(
            f"| {r.design} | {r.draws} | {r.ok} | {r.refused} | {r.errors} | {r.seeds} "
            f"| {r.seconds_per_draw:.1f} | {r.refusal} |"
        )
    lines += ["", "| quantity | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for quantity in dict.fromkeys(summary["quantity"]):
        cells = []
        for d in names:
            row = summary[(summary["design"] == d) & (summary["quantity"] == quantity)]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            text = _fmt(r["value"], r["mc_se"]) + (f" {r['verdict']}" if r["verdict"] else "")
            if isinstance(r.get("item"), str):
                text += f"; {r['item']}; expected worst {r['expected_worst']:.3f}"
            cells.append(text)
        lines.append(f"| {quantity} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Bias (MC SE), mean SE, bias / mean SE and SD(estimate - truth) / mean SE over draws "
        "(cells: per cell, then averaged over cells):",
        "",
        "| design | quantity | bias (MC SE) | mean SE | bias / SE | SD / mean SE |",
        "|---|---|---|---|---|---|",
    ]
    for r in bias.itertuples(index=False):
        lines.append(
            f"| {r.design} | {r.quantity} | {r.bias:+.4f} ({r.bias_mc_se:.4f}) | {r.mean_se:.4f} "
            f"| {r.bias_over_se:+.2f} | {r.sd_over_se:.2f} |"
        )
    if getattr(args, "stopped", False):
        lines += [
            "",
            f"Stopped at the deadline ({args.deadline:%H:%M} UTC): draws not started by then "
            f"were not run (planned: seeds {args.first_seed}-{args.first_seed + args.seeds - 1} "
            "in every design); the draws each design got are in the first table.",
        ]
    if minutes is not None:
        lines += ["", f"Wall time: {minutes:.1f} min ({max(args.workers, 1)} process(es))."]
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--n-firms", type=int, default=5000)
    parser.add_argument("--n-boot", type=int, default=999, help="asymptotic mode's draws")
    parser.add_argument(
        "--inference", choices=["small_cluster", "asymptotic"], default="small_cluster",
        help="did.inference of every draw (default: the stage's default)",
    )  # fmt: skip
    parser.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS))
    parser.add_argument(
        "--workers", type=int, default=1, choices=[0, 1, 2], help="pool size (0: this process)"
    )
    parser.add_argument(
        "--deadline", help="HH:MM (UTC, today): start no draw after it (the section says so)"
    )
    parser.add_argument(
        "--csv", type=Path, default=None, help=f"per-seed rows (default {DEFAULT_CSV})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 tuning seeds (0-2), no CSV, RESULTS.md or MLflow writes",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md/MLflow")
    parser.add_argument("--from-csv", type=Path, nargs="+", help="rebuild from per-seed CSVs")
    parser.add_argument("--code", help="with --from-csv: the commit the runs ran on")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.quick:
        args.seeds, args.first_seed, args.no_write = 3, 0, True
    args.stopped = False
    if args.deadline:
        hour, minute = (int(v) for v in args.deadline.split(":"))
        args.deadline = datetime.now(UTC).replace(hour=hour, minute=minute, second=0)
    if args.csv is None and not args.quick and not args.from_csv:
        args.csv = DEFAULT_CSV
    started = time.perf_counter()
    if args.from_csv:
        frame = pd.concat([pd.read_csv(p) for p in args.from_csv], ignore_index=True)
        args.first_seed = int(frame["seed"].min())
        args.seeds = int(frame["seed"].max()) - args.first_seed + 1
        commits = sorted(set(frame["commit"].astype(str)))
        args.code = args.code or ", ".join(commits)
        minutes = None
    else:
        frame = run(args)
        minutes = (time.perf_counter() - started) / 60
    summary, bias, runs = summarise(frame), bias_table(frame), runs_table(frame)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(runs.to_string(index=False))
        print(summary.to_string(index=False))
        print(bias.to_string(index=False))
    if args.no_write:
        return
    config = (
        f"designs {list(runs['design'])}, {args.n_firms} firms, seeds {args.first_seed}-"
        f"{args.first_seed + args.seeds - 1}, did.inference {args.inference}, "
        f"did.n_boot {args.n_boot}, linear_dml cv 2"
    )
    update_results_section(
        "did_validity", section(summary, bias, runs, args, minutes), config=config,
        code=f"commit {args.code}" if args.from_csv else None,
    )  # fmt: skip
    metrics = {
        re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{r.design}.{r.quantity}"): float(r.value)
        for r in summary.itertuples(index=False)
    }
    log_benchmark("did_validity", metrics, {"config": config})


if __name__ == "__main__":
    main()
