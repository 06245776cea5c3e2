"""Mechanism tests over many seeds: size for the zero-effect channel and CI coverage.

On the synthetic firm table, the DML effect of VA on every mediator ``d_<proxy>`` is
estimated with cluster-robust 95% CIs (:func:`vaer.attribution.mechanism_tests`) for
``--seeds`` independent draws. Reported: how often the zero-effect channel
(``d_smart_green``, true effect 0) is significant at 5% (must be <= 10%), and each
mediator's CI coverage of its true effect with a binomial 95% band around 0.95.

Run: ``PYTHONPATH=src python benchmarks/mechanism_tests.py --seeds 20 --n-units 2000``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log_benchmark, update_results_section
from vaer.attribution import mechanism_tests
from vaer.config.models import NuisanceConfig, Roles, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import (
    CONTROLS,
    MECHANISMS,
    MEDIATOR_EFFECTS,
    MODIFIERS,
    make_synthetic_table,
)

ZERO = "d_smart_green"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-units", type=int, default=2000)
    parser.add_argument("--n-clusters", type=int, default=60)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--score", default="iv_type", choices=["iv_type", "partialling_out"])
    parser.add_argument("--nuisance-model", default="lightgbm")
    parser.add_argument("--nuisance-params", default="{}", help="JSON of learner parameters")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md/MLflow")
    args = parser.parse_args()

    mediators = {channel: [f"d_{proxies[0]}"] for channel, proxies in MECHANISMS.items()}
    roles = Roles(
        unit="firm_id",
        outcome="resilience",
        treatment="va_index",
        cluster="city",
        controls=CONTROLS,
        modifiers=MODIFIERS,
        firm_types=["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
        mechanisms=MECHANISMS,
        mediators=mediators,
    )
    nuisance = NuisanceConfig(model=args.nuisance_model, params=json.loads(args.nuisance_params))
    rows = []
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        table = make_synthetic_table(
            SyntheticTableConfig(n_units=args.n_units, n_clusters=args.n_clusters),
            random_state=seed,
        )
        data = build_analysis_data(table.frame, roles)
        for estimate in mechanism_tests(
            table.frame, mediators, data, nuisance, cv=args.cv, score=args.score, random_state=seed
        ):
            truth = MEDIATOR_EFFECTS[estimate.mediator]
            rows.append(
                {
                    "seed": seed,
                    "mediator": estimate.mediator,
                    "truth": truth,
                    "estimate": estimate.estimate,
                    "se": estimate.se,
                    "covered": estimate.covers(truth),
                    "significant": estimate.significant,
                }
            )
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    seconds = time.perf_counter() - started
    frame = pd.DataFrame(rows)
    summary = frame.groupby("mediator", sort=False).agg(
        truth=("truth", "first"),
        mean_estimate=("estimate", "mean"),
        sd_estimate=("estimate", "std"),
        mean_se=("se", "mean"),
        coverage=("covered", "mean"),
        rejection_rate=("significant", "mean"),
    )
    print(summary.to_string())
    size = float(summary.loc[ZERO, "rejection_rate"])
    band = 1.96 * np.sqrt(0.95 * 0.05 / args.seeds)
    verdict = "PASS" if size <= 0.10 else "FAIL"
    print(f"{ZERO} significant at 5% in {size:.0%} of {args.seeds} seeds: {verdict}")
    if args.no_write:
        return
    lines = [
        "## Mechanism tests: size of the zero-effect channel and CI coverage",
        "",
        f"{args.seeds} seeds of the synthetic table ({args.n_units} firms, {args.n_clusters} "
        f"cities), DML of VA on each mediator ({args.nuisance_model} nuisances "
        f"{args.nuisance_params}, {args.score} score, {args.cv} cluster-grouped "
        f"folds, CR1 SEs); {seconds:.0f} s in all.",
        "",
        f"**`{ZERO}` (true effect 0) significant at 5% in {size:.0%} of seeds "
        f"(requirement <= 10%): {verdict}.** Coverage should be 0.95 +- {band:.2f} "
        "(binomial 95% band).",
        "",
        "| mediator | truth | mean estimate | sd of estimates | mean SE | coverage | rejects 0 |",
        "|---|---|---|---|---|---|---|",
    ]
    for mediator, row in summary.iterrows():
        lines.append(
            f"| {mediator} | {row.truth:.2f} | {row.mean_estimate:.4f} | {row.sd_estimate:.4f} "
            f"| {row.mean_se:.4f} | {row.coverage:.2f} | {row.rejection_rate:.2f} |"
        )
    update_results_section("mechanism_tests", "\n".join(lines))
    metrics = {f"{m}.coverage": float(r.coverage) for m, r in summary.iterrows()}
    metrics.update({f"{m}.rejection_rate": float(r.rejection_rate) for m, r in summary.iterrows()})
    metrics["seconds"] = seconds
    log_benchmark("mechanism_tests", metrics, vars(args))


if __name__ == "__main__":
    main()
