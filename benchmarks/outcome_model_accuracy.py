"""CATE accuracy of vaer's default forest under each outcome model, on the accuracy designs.

``nuisance.outcome_model`` decides how the outcome regression is built (a constant
preliminary effect, ``iv_type``; one linear in the modifiers, ``iv_type_linear``; or a
direct regression, ``partialling_out``). The choice was studied on vaer's panel for the
ATE (RESULTS section ``validity_outcome_model``); this script checks the other side on
designs held apart from that choice: the designs of ``benchmarks/designs.py``
(Nie-Wager A-D, Wager-Athey, IHDP, vaer's synthetic table), seeds 0 and up as in
``accuracy.py``. Each draw is fitted once per outcome model with the default
``causal_forest_dml`` (per-firm intervals on), so the comparison is paired: same data,
same folds, only the outcome model differs.

Per design it writes the mean CATE RMSE of each model, the paired difference with its
standard error, the seeds on which one model's RMSE is more than 1.5 times the other's,
the per-unit interval coverage and the ATE bias, to the RESULTS.md section
``outcome_model_accuracy`` (``outcome_model_accuracy_<other>`` for other ``--models``);
per-draw rows go to ``--csv`` (``--resume`` completes it).

Usage::

    cd benchmarks && python outcome_model_accuracy.py --seeds 20 --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

from accuracy import family, unit_coverage
from common import update_results_section
from designs import DESIGNS, draw
from peers import run_vaer
from vaer.config.estimators import NuisanceConfig

MODELS = ("iv_type", "iv_type_linear")
BLOW_UP = 1.5


def run_draw(task: tuple[str, int, tuple[str, ...]]) -> list[dict]:
    """One draw of one design fitted under each outcome model: RMSE, coverage, ATE bias."""
    design, seed, models = task
    data = draw(design, seed)
    rows = []
    for model in models:
        started = time.perf_counter()
        result = run_vaer(data, seed, NuisanceConfig(outcome_model=model), tools=["vaer_cf"])[0]
        rows.append(
            {
                "design": design,
                "seed": seed,
                "outcome_model": model,
                "rmse": float(np.sqrt(np.mean((result.tau_hat - data.tau) ** 2))),
                "unit_coverage": unit_coverage(result.tau_hat, result.tau_se, data.tau),
                "ate_bias": result.ate - data.ate,
                "seconds": time.perf_counter() - started,
            }
        )
    return rows


def summarise(raw: pd.DataFrame, base: str, other: str) -> pd.DataFrame:
    """Per design: both models' means, the paired RMSE difference ``other - base`` with its
    SE, and the seeds where one model's RMSE exceeds :data:`BLOW_UP` times the other's."""
    out = []
    for design, group in raw.groupby("design", sort=False):
        wide = group.pivot_table(
            index="seed", columns="outcome_model", values=["rmse", "unit_coverage", "ate_bias"]
        ).dropna()
        diff = wide["rmse"][other] - wide["rmse"][base]
        ratio = wide["rmse"][other] / wide["rmse"][base]
        out.append(
            {
                "design": design,
                "family": family(str(design)),
                "seeds": len(wide),
                f"rmse {base}": wide["rmse"][base].mean(),
                f"rmse {other}": wide["rmse"][other].mean(),
                "difference": diff.mean(),
                "difference_se": diff.std(ddof=1) / np.sqrt(len(diff)),
                f"{other} > {BLOW_UP}x": int((ratio > BLOW_UP).sum()),
                f"{base} > {BLOW_UP}x": int((ratio < 1 / BLOW_UP).sum()),
                f"coverage {base}": wide["unit_coverage"][base].mean(),
                f"coverage {other}": wide["unit_coverage"][other].mean(),
                f"ATE bias {base}": wide["ate_bias"][base].mean(),
                f"ATE bias {other}": wide["ate_bias"][other].mean(),
            }
        )
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame, base: str, other: str, seconds: float | None) -> str:
    """The RESULTS.md section: one row per design."""
    lines = [
        "## CATE accuracy by outcome model (`outcome_model_accuracy.py`)",
        "",
        f"vaer's default `causal_forest_dml` fitted on each draw under `{base}` and "
        f"`{other}` (`nuisance.outcome_model`; everything else default): paired draws, "
        "same folds. Designs of `benchmarks/designs.py` as in `accuracy.py`; `held apart` "
        "designs were not used to choose the outcome model (it was studied on vaer's "
        "panel); `tuning` marks the table generator the forest's linear base was designed "
        "on. Difference: mean over seeds of the per-seed RMSE difference "
        f"({other} - {base}; standard error). Blow-ups: seeds on which one model's RMSE "
        f"is more than {BLOW_UP} times the other's. Coverage: share of units whose 95% "
        "interval holds tau(x_i), mean over seeds. ATE bias: mean over seeds.",
        "",
        f"| design | family | seeds | RMSE {base} | RMSE {other} | difference | "
        f"{other} worse > {BLOW_UP}x | {base} worse > {BLOW_UP}x | coverage {base} | "
        f"coverage {other} | ATE bias {base} | ATE bias {other} |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.to_dict("records"):
        lines.append(
            f"| {r['design']} | {r['family']} | {r['seeds']} | {r[f'rmse {base}']:.3f} | "
            f"{r[f'rmse {other}']:.3f} | {r['difference']:+.4f} ({r['difference_se']:.4f}) | "
            f"{r[f'{other} > {BLOW_UP}x']} | {r[f'{base} > {BLOW_UP}x']} | "
            f"{r[f'coverage {base}']:.3f} | {r[f'coverage {other}']:.3f} | "
            f"{r[f'ATE bias {base}']:+.3f} | {r[f'ATE bias {other}']:+.3f} |"
        )
    if seconds is not None:
        lines += ["", f"Time: {seconds / 60:.0f} min wall."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS))
    parser.add_argument("--models", nargs=2, default=list(MODELS), metavar=("BASE", "OTHER"))
    parser.add_argument("--jobs", type=int, default=2, help="local processes (at most 2)")
    parser.add_argument("--csv", type=Path, default=Path("/tmp/vaer-outcome-model-accuracy.csv"))
    parser.add_argument("--resume", action="store_true", help="keep the draws already in --csv")
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    if not 1 <= args.jobs <= 2:
        parser.error("--jobs must be 1 or 2 (the machine is shared)")
    models = tuple(args.models)
    for model in models:
        NuisanceConfig(outcome_model=model)  # fails early on an unknown model
    done: set[tuple[str, int]] = set()
    if args.resume and args.csv.is_file():
        old = pd.read_csv(args.csv)
        done = set(zip(old["design"], old["seed"].astype(int), strict=True))
    elif args.csv.is_file():
        args.csv.unlink()
    tasks = [
        (design, seed, models)
        for seed in range(args.seeds)
        for design in args.designs
        if (design, seed) not in done
    ]
    print(f"{len(tasks)} draws x {len(models)} outcome models -> {args.csv}", flush=True)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        futures = {pool.submit(run_draw, task): task for task in tasks}
        for k, future in enumerate(as_completed(futures), start=1):
            rows = pd.DataFrame(future.result())
            rows.to_csv(args.csv, mode="a", header=not args.csv.is_file(), index=False)
            design, seed, _ = futures[future]
            print(
                f"[{k}/{len(tasks)}] {design} seed {seed} ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    seconds = time.perf_counter() - started if tasks else None
    raw = pd.read_csv(args.csv)
    raw = raw[raw["design"].isin(args.designs) & (raw["seed"] < args.seeds)]
    summary = summarise(raw, *models)
    text = markdown(summary, *models, seconds)
    print(text)
    if not args.no_results:
        section = "outcome_model_accuracy" + ("" if models == MODELS else f"_{models[1]}")
        update_results_section(
            section,
            text,
            config=f"seeds 0-{args.seeds - 1}; designs {', '.join(args.designs)}; "
            f"outcome models {', '.join(models)}; causal_forest_dml defaults, "
            "per_firm_intervals true; nuisances default otherwise",
        )


if __name__ == "__main__":
    main()
