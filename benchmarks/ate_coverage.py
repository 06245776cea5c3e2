"""Coverage of 95% confidence intervals for the ATE, cluster-robust vs econml's default.

The synthetic firm table has city-level clustering in both the treatment (a city VA
component) and the outcome (a city shock), so firms of a city are correlated. For each
seed we draw a fresh table, fit the estimators, and record whether each interval covers
the true ATE (the sample mean of the true effects). econml's default intervals treat firms
as independent; vaer's are means of doubly robust scores with CR1 cluster-robust SEs.

Usage::

    PYTHONPATH=src python benchmarks/ate_coverage.py --seeds 50 --n-units 1500 --n-clusters 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from common import log_benchmark, update_results_section
from vaer.config.models import ExperimentConfig, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import TABLE_ROLES, make_synthetic_table
from vaer.estimators.fit import fit_estimators


def run(seeds: int, n_units: int, n_clusters: int, trees: int) -> pd.DataFrame:
    config = ExperimentConfig.model_validate(
        {
            "name": "coverage",
            "roles": TABLE_ROLES,
            "estimators": [
                {"kind": "linear_dml"},
                {"kind": "causal_forest_dml", "params": {"n_estimators": trees}},
            ],
        }
    )
    rows = []
    for seed in range(seeds):
        started = time.perf_counter()
        table = make_synthetic_table(
            SyntheticTableConfig(n_units=n_units, n_clusters=n_clusters), random_state=seed
        )
        data = build_analysis_data(table.frame, config.roles)
        result = fit_estimators(data, config.estimators, config.nuisance, random_state=seed)
        truth = table.truth.ate
        for est in result.estimators:
            for ate in (est.ate, est.ate_econml):
                rows.append(
                    {
                        "seed": seed,
                        "estimator": est.label,
                        "se_type": ate.se_type,
                        "estimate": ate.estimate,
                        "se": ate.se,
                        "covered": ate.covers(truth),
                        "error": ate.estimate - truth,
                    }
                )
        print(f"seed {seed}: {time.perf_counter() - started:.1f}s", flush=True)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby(["estimator", "se_type"], sort=False)
    summary = grouped.agg(
        coverage=("covered", "mean"),
        mean_se=("se", "mean"),
        sd_estimate=("estimate", "std"),
        bias=("error", "mean"),
        replications=("seed", "count"),
    ).reset_index()
    p = summary["coverage"]
    summary["binomial_se"] = np.sqrt(p * (1 - p) / summary["replications"])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--n-units", type=int, default=1500)
    parser.add_argument("--n-clusters", type=int, default=50)
    parser.add_argument("--trees", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    summary = summarise(run(args.seeds, args.n_units, args.n_clusters, args.trees))
    minutes = (time.perf_counter() - started) / 60
    print(summary.to_string(index=False))
    lines = [
        "## ATE interval coverage: cluster-robust vs econml default (`ate_coverage.py`)",
        "",
        f"{args.seeds} seeds of the synthetic firm table ({args.n_units} firms in "
        f"{args.n_clusters} cities; city shock sd 0.5 in the outcome, city VA component sd 0.5);"
        f" LightGBM nuisances, 5 cluster-grouped folds; causal forest with {args.trees} trees. "
        "Target for the cluster-robust intervals: coverage 0.90-0.99.",
        "",
        "| estimator | SE type | coverage | binomial SE | mean SE | sd of estimates | bias |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.estimator} | {row.se_type} | {row.coverage:.2f} | {row.binomial_se:.3f} "
            f"| {row.mean_se:.4f} | {row.sd_estimate:.4f} | {row.bias:+.4f} |"
        )
    lines += ["", f"Wall time: {minutes:.1f} min."]
    update_results_section("estimators-coverage", "\n".join(lines))
    metrics = {
        f"coverage.{r.estimator}.{'cluster' if r.se_type.startswith('cluster') else 'econml'}": (
            r.coverage
        )
        for r in summary.itertuples(index=False)
    }
    log_benchmark(
        "estimators-coverage",
        {**metrics, "minutes": minutes},
        {"seeds": args.seeds, "n_units": args.n_units, "n_clusters": args.n_clusters},
    )


if __name__ == "__main__":
    main()
