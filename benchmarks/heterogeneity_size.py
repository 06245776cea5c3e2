"""Size of the heterogeneity tests under the null of a constant effect.

The synthetic table is drawn with ``heterogeneity=0`` (every firm has the same effect) for
many seeds; on each, the run's estimators are fitted and the heterogeneity stage is run.
A valid 5%-level test rejects in about 5% of the seeds (target: at most 10%). Reported
per estimator: the rejection rate of the joint Wald equality test of the GATEs (per
firm-type dimension, and for any dimension after Holm across the five), of the
calibration test's differential coefficient (one-sided, as grf), and of AUTOC > 0
(one-sided), with the mean AUTOC t-statistic (0 for an unbiased test).

Usage::

    PYTHONPATH=src python benchmarks/heterogeneity_size.py --seeds 40 --n-units 3000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from common import log_benchmark, update_results_section
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.config.models import (
    CausalForestDMLSpec,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import FIRM_TYPES, MODIFIERS, make_synthetic_table
from vaer.estimators.fit import fit_estimators
from vaer.heterogeneity import analyze_heterogeneity
from vaer.heterogeneity.multiple_testing import holm

DIMENSIONS = [*FIRM_TYPES, "region"]
ROLES = Roles(
    unit="firm_id",
    outcome="resilience",
    treatment="va_index",
    cluster="city",
    controls=["city_dev", "productivity", "geo_agglom", "firm_age"],
    modifiers=MODIFIERS,
    firm_types=DIMENSIONS,
)
ALPHA = 0.05


def one_seed(seed: int, n_units: int, n_clusters: int, n_trees: int) -> list[dict[str, object]]:
    table = make_synthetic_table(
        SyntheticTableConfig(n_units=n_units, n_clusters=n_clusters, heterogeneity=0.0),
        random_state=seed,
    )
    data = build_analysis_data(table.frame, ROLES)
    specs = [
        LinearDMLSpec(kind="linear_dml", params={"cv": 3}),
        CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": n_trees, "cv": 3}),
    ]
    estimation = fit_estimators(data, specs, NuisanceConfig(), random_state=seed)
    result = analyze_heterogeneity(
        estimation, data, HeterogeneityConfig(n_bootstrap=100), random_state=seed
    )
    rows: list[dict[str, object]] = []
    for item in result.estimators:
        p_wald = {d: float(item.gates.equality(d)["p_value"]) for d in DIMENSIONS}
        calibration = item.calibration
        row: dict[str, object] = {
            "seed": seed,
            "estimator": item.estimator,
            **{f"wald_{d}": p < ALPHA for d, p in p_wald.items()},
            "wald_any_holm": bool(np.min(holm(np.array(list(p_wald.values())))) < ALPHA),
            "calibration_differential": bool(
                calibration is not None
                and calibration.term("differential_forest_prediction")["p_value"] < ALPHA
            ),
            "autoc": float(item.rate.target("AUTOC")["p_value"]) < ALPHA,
            "autoc_t": float(
                item.rate.target("AUTOC")["estimate"] / item.rate.target("AUTOC")["se"]
            ),
        }
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--n-units", type=int, default=3000)
    parser.add_argument("--n-clusters", type=int, default=60)
    parser.add_argument("--n-trees", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        rows += one_seed(seed, args.n_units, args.n_clusters, args.n_trees)
        print(f"seed {seed} done ({time.perf_counter() - started:.0f}s)", flush=True)
    seconds = time.perf_counter() - started
    frame = pd.DataFrame(rows)
    tests = [c for c in frame.columns if c not in ("seed", "estimator", "autoc_t")]
    rates = frame.groupby("estimator")[tests].mean()
    # binomial standard error of a rejection rate near the nominal 5%
    mc_se = float(np.sqrt(ALPHA * (1 - ALPHA) / args.seeds))
    labels = {
        **{f"wald_{d}": f"Wald equality, {d}" for d in DIMENSIONS},
        "wald_any_holm": "Wald equality, any dimension (Holm over 5)",
        "calibration_differential": "calibration, differential coefficient > 0 (one-sided)",
        "autoc": "AUTOC > 0 (one-sided)",
    }
    lines = [
        "## Heterogeneity tests: size under a constant effect",
        "",
        f"Synthetic table with `heterogeneity=0`, {args.n_units} firms in {args.n_clusters} "
        f"cities, {args.seeds} seeds; nuisances LightGBM (3 cluster-grouped folds); "
        f"`linear_dml` (cross-fitted tau_hat) and `causal_forest_dml` ({args.n_trees} trees, "
        "out-of-bag tau_hat); cluster-robust SEs by city; nominal level 5%. Rejection rates "
        f"(target <= 10%; Monte Carlo SE at 5% is {mc_se:.3f}):",
        "",
        "| test | " + " | ".join(rates.index) + " |",
        "|---|" + "---|" * len(rates.index),
    ]
    for test in tests:
        cells = " | ".join(f"{rates.loc[label, test]:.3f}" for label in rates.index)
        lines.append(f"| {labels[test]} | {cells} |")
    mean_t = frame.groupby("estimator")["autoc_t"].mean()
    lines += [
        "",
        "Mean AUTOC t-statistic under the null: "
        + ", ".join(f"{label} {mean_t[label]:+.2f}" for label in rates.index)
        + " (0 for an unbiased test; below 0 the one-sided test is conservative, above 0 "
        "it over-rejects).",
        "",
        f"Total time {seconds:.0f} s.",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    update_results_section("heterogeneity_size", markdown)
    metrics = {
        f"size.{label}.{test}": float(rates.loc[label, test])
        for label in rates.index
        for test in tests
    }
    metrics.update({f"size.{label}.autoc_mean_t": float(mean_t[label]) for label in rates.index})
    log_benchmark(
        "heterogeneity_size",
        {**metrics, "seconds": seconds},
        params={"seeds": args.seeds, "n_units": args.n_units, "n_clusters": args.n_clusters},
    )


if __name__ == "__main__":
    main()
