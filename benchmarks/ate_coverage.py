"""ATE interval coverage of every continuous and IV estimator with 40 and 150 clusters.

Issue 21, item 5: the ATE's 95% interval must cover the truth in 92-98% of draws for every
estimator, instrumental-variable kinds included, with few (40) and more (150) cities, in
designs where the treatment and the instrument vary at city level, with
|bias| <= 0.2 SE. Each draw is fitted through :func:`vaer.estimators.fit.fit_estimators`
with the default nuisance config (one process); the ATE is the mean of the estimator's
doubly robust scores with vaer's cluster-robust SE and t reference.

Designs (``--design``):

``city`` (default; written for this benchmark, not one the defaults were chosen on)
    City :math:`c`: observed :math:`D_c \\sim N(0,1)` and
    :math:`I_c = 0.5 D_c + \\sqrt{0.75} N(0,1)` (controls), a pilot
    :math:`Z_c \\sim \\text{Bernoulli}(0.4)` assigned at random (the instrument), shocks
    :math:`v_c \\sim N(0, 0.6^2)` in the treatment and :math:`u_c \\sim N(0, 0.5^2)` in
    the outcome (correlation :math:`\\rho`). Firm: productivity
    :math:`P = 0.5 D_c + N(0,1)` (control), a three-level type, modifiers
    :math:`K \\sim N(0,1)`, :math:`L \\sim U(-1,1)`, an unobserved
    :math:`U \\sim N(0,1)` of strength :math:`\\gamma`;
    :math:`T = 0.5 D_c + 0.3 I_c + 0.4 P + Z_c + v_c + \\gamma U + 0.8\\varepsilon`,
    :math:`\\tau = 0.5 + 0.2 K + 0.15[\\text{b}] - 0.1[\\text{c}] + 0.2\\tanh(2L)`
    (centred to mean 0.5), :math:`Y = 0.6\\tanh D_c + 0.4\\log(1 + e^P) + 0.2 I_c^2 +
    \\tau T + \\gamma U + u_c + 0.6\\eta`. Without ``--confounded`` (:math:`\\gamma = \\rho
    = 0`) every kind estimates :math:`E[\\tau]`; with it (:math:`\\gamma = 1`,
    :math:`\\rho = 0.5`) only the IV kinds do, and only they are fitted.
``table``
    vaer's synthetic table (:func:`vaer.data.synthetic_table.make_synthetic_table`, city
    VA component and a city pilot; ``unobserved_confounding`` 1 with ``--confounded``).

Usage::

    PYTHONPATH=src python benchmarks/ate_coverage.py --seeds 100 --first-seed 1000
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log_benchmark, update_results_section
from vaer.config.estimators import EstimatorSpec, NuisanceConfig
from vaer.config.models import Roles, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import CONTROLS, MODIFIERS, make_synthetic_table
from vaer.estimators.fit import fit_estimators

CONTINUOUS = ["linear_dml", "sparse_linear_dml", "causal_forest_dml"]
IV = ["orthoiv", "dmliv", "causal_iv_forest"]
CITY_ROLES = Roles(
    unit="firm_id",
    outcome="y",
    treatment="t",
    cluster="city",
    controls=["city_d", "city_i", "prod"],
    modifiers=["stype", "k", "l"],
    instrument="pilot",
)
TABLE_ROLES = Roles(
    unit="firm_id",
    outcome="resilience",
    treatment="va_index",
    cluster="city",
    controls=CONTROLS,
    modifiers=MODIFIERS,
    instrument="pilot",
)
COVERAGE_BAND = (0.92, 0.98)
MAX_BIAS_SE = 0.2


def city_table(
    n: int, n_cities: int, seed: int, *, gamma: float = 0.0, rho: float = 0.0
) -> tuple[pd.DataFrame, float]:
    """Draw the ``city`` design (module docstring); returns the table and the true ATE."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, n_cities, size=n)
    dev = rng.normal(size=n_cities)
    infra = 0.5 * dev + np.sqrt(0.75) * rng.normal(size=n_cities)
    pilot = (rng.random(n_cities) < 0.4).astype(float)
    va_shock = 0.6 * rng.normal(size=n_cities)
    y_shock = 0.5 * (rho * va_shock / 0.6 + np.sqrt(1 - rho**2) * rng.normal(size=n_cities))
    prod = 0.5 * dev[city] + rng.normal(size=n)
    stype = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    k = rng.normal(size=n)
    el = rng.uniform(-1, 1, size=n)
    hidden = rng.normal(size=n)
    het = 0.2 * k + 0.15 * (stype == "b") - 0.1 * (stype == "c") + 0.2 * np.tanh(2 * el)
    tau = 0.5 + het - het.mean()
    t = (
        0.5 * dev[city]
        + 0.3 * infra[city]
        + 0.4 * prod
        + pilot[city]
        + va_shock[city]
        + gamma * hidden
        + 0.8 * rng.normal(size=n)
    )
    base = 0.6 * np.tanh(dev[city]) + 0.4 * np.logaddexp(0, prod) + 0.2 * infra[city] ** 2
    y = base + tau * t + gamma * hidden + y_shock[city] + 0.6 * rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "firm_id": np.arange(n),
            "city": city,
            "city_d": dev[city],
            "city_i": infra[city],
            "prod": prod,
            "stype": stype,
            "k": k,
            "l": el,
            "pilot": pilot[city],
            "t": t,
            "y": y,
        }
    )
    return frame, float(tau.mean())


def draw(design: str, n: int, n_cities: int, seed: int, confounded: bool):
    """The analysis data and true ATE of one draw."""
    if design == "city":
        gamma, rho = (1.0, 0.5) if confounded else (0.0, 0.0)
        frame, truth = city_table(n, n_cities, seed, gamma=gamma, rho=rho)
        return build_analysis_data(frame, CITY_ROLES), truth
    table = make_synthetic_table(
        SyntheticTableConfig(
            n_units=n, n_clusters=n_cities, unobserved_confounding=1.0 if confounded else 0.0
        ),
        random_state=seed,
    )
    return build_analysis_data(table.frame, TABLE_ROLES), table.truth.ate


def run(args: argparse.Namespace) -> pd.DataFrame:
    kinds = IV if args.confounded else CONTINUOUS + IV
    trees = {"n_estimators": args.trees}
    specs = [
        TypeAdapter(EstimatorSpec).validate_python(
            {"kind": kind, "params": trees if "forest" in kind else {}}
        )
        for kind in kinds
    ]
    nuisance = NuisanceConfig(n_jobs=1)
    rows = []
    for n_cities in args.clusters:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            started = time.perf_counter()
            data, truth = draw(args.design, args.n_units, n_cities, seed, args.confounded)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit_estimators(data, specs, nuisance, random_state=seed)
            for est in result.estimators:
                ate = est.ate
                rows.append(
                    {
                        "clusters": n_cities,
                        "seed": seed,
                        "estimator": est.label,
                        "truth": truth,
                        "estimate": ate.estimate,
                        "se": ate.se,
                        "ci_low": ate.ci_low,
                        "ci_high": ate.ci_high,
                        "covered": ate.covers(truth),
                    }
                )
            print(
                f"{n_cities} cities, seed {seed}: {time.perf_counter() - started:.1f}s",
                flush=True,
            )
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Coverage (binomial MC SE), bias (MC SE), bias in SEs, sd/mean SE per estimator."""
    frame = frame.assign(error=frame["estimate"] - frame["truth"])
    grouped = frame.groupby(["clusters", "estimator"], sort=False)
    summary = grouped.agg(
        seeds=("seed", "count"),
        coverage=("covered", "mean"),
        bias=("error", "mean"),
        sd=("error", "std"),
        mean_se=("se", "mean"),
    ).reset_index()
    summary["coverage_mc_se"] = np.sqrt(
        summary["coverage"] * (1 - summary["coverage"]) / summary["seeds"]
    )
    summary["bias_mc_se"] = summary["sd"] / np.sqrt(summary["seeds"])
    summary["bias_in_se"] = summary["bias"] / summary["mean_se"]
    summary["sd_over_se"] = summary["sd"] / summary["mean_se"]
    low, high = COVERAGE_BAND
    summary["pass"] = summary["coverage"].between(low, high) & (
        summary["bias_in_se"].abs() <= MAX_BIAS_SE
    )
    return summary


def section(summary: pd.DataFrame, args: argparse.Namespace, minutes: float) -> str:
    design = {
        "city": "the benchmark's own city design (module docstring; not a design any default "
        "was chosen on)",
        "table": "vaer's synthetic table",
    }[args.design]
    what = (
        "unobserved confounder and correlated city shocks, IV kinds only"
        if args.confounded
        else "no unobserved confounding, every continuous and IV kind"
    )
    lines = [
        f"## ATE coverage with 40 and 150 clusters (`ate_coverage.py`, {args.design}"
        f"{', confounded' if args.confounded else ''})",
        "",
        f"{args.seeds} draws (seeds {args.first_seed}-{args.first_seed + args.seeds - 1}) of "
        f"{design}: {args.n_units} firms, treatment and instrument (a random city pilot) with "
        f"city-level variation, {what}. Default nuisances (5 cluster-grouped folds), forests "
        f"with {args.trees} trees; vaer's ATE interval (DR scores, cluster-robust SE and t "
        f"reference). Target: coverage in [{COVERAGE_BAND[0]}, {COVERAGE_BAND[1]}] and "
        f"|bias| <= {MAX_BIAS_SE} SE. MC SE: binomial for coverage, sd/sqrt(draws) for bias.",
        "",
        "| cities | estimator | coverage (MC SE) | bias (MC SE) | bias / SE | sd / mean SE "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.clusters} | {row.estimator} | {row.coverage:.3f} ({row.coverage_mc_se:.3f}) "
            f"| {row.bias:+.4f} ({row.bias_mc_se:.4f}) | {row.bias_in_se:+.2f} "
            f"| {row.sd_over_se:.2f} | {'PASS' if row.pass_ else 'FAIL'} |"
        )
    if not args.from_csv:
        lines += ["", f"Wall time: {minutes:.1f} min (one process)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--n-units", type=int, default=3000)
    parser.add_argument("--clusters", type=int, nargs="+", default=[40, 150])
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--design", choices=["city", "table"], default="city")
    parser.add_argument("--confounded", action="store_true")
    parser.add_argument("--csv", type=Path, help="also write the per-draw rows here")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md/MLflow")
    parser.add_argument(
        "--from-csv",
        type=Path,
        nargs="+",
        help="rebuild the section from per-draw CSVs of earlier runs instead of fitting",
    )
    parser.add_argument("--code", help="with --from-csv: the commit the runs ran on")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.from_csv:
        frame = pd.concat([pd.read_csv(path) for path in args.from_csv], ignore_index=True)
        args.clusters = sorted(frame["clusters"].unique().tolist())
        args.seeds = int(frame["seed"].nunique())
        args.first_seed = int(frame["seed"].min())
    else:
        frame = run(args)
    if args.csv is not None:
        frame.to_csv(args.csv, index=False)
    summary = summarise(frame).rename(columns={"pass": "pass_"})
    minutes = (time.perf_counter() - started) / 60
    print(summary.to_string(index=False))
    if args.no_write:
        return
    name = "estimators-coverage" + ("" if args.design == "city" else f"-{args.design}")
    name += "-confounded" if args.confounded else ""
    config = (
        f"design {args.design}, {args.n_units} firms, clusters {args.clusters}, "
        f"trees {args.trees}, default NuisanceConfig"
    )
    update_results_section(
        name,
        section(summary, args, minutes),
        config=config,
        code=args.code if args.from_csv else None,
    )
    metrics = {
        f"coverage.{r.clusters}.{r.estimator}": float(r.coverage)
        for r in summary.itertuples(index=False)
    }
    metrics |= {
        f"bias_in_se.{r.clusters}.{r.estimator}": float(r.bias_in_se)
        for r in summary.itertuples(index=False)
    }
    log_benchmark(name, {**metrics, "minutes": minutes}, vars(args) | {"csv": str(args.csv)})


if __name__ == "__main__":
    main()
