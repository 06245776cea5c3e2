"""SHAP of a cluster forest: the fast route against the exact permutation explainer, and
the cost of the cluster-honest attribution stage.

Fits ``causal_forest_dml`` (``--trees`` trees, vaer's cluster forest) on the synthetic
firm table (``--n-units`` firms, 150 cities), then times

* the fast route, ``attribution.method: tree_surrogate``: distil the forest's effect
  function into a LightGBM model (fidelity = R² to the forest's effect on held-out units)
  and explain it exactly by path-dependent TreeSHAP, on ``--explain`` units, with the
  current surrogate defaults and with the previous ones (400 trees, learning rate 0.05,
  31 leaves);
* shap's model-agnostic permutation explainer of the forest's effect (100 background
  units; what econml's ``shap_values`` runs) on ``--slow-units`` of the same units,
  extrapolated linearly to ``--explain`` units;
* the whole cluster-honest attribution stage (:func:`vaer.attribution.run_attribution`,
  default settings: three refits of the final stage on folds of the cities, every firm
  explained twice, channel shares with intervals), with the previous construction (the
  run's forest explained once, bootstrap over firms) for comparison;

and compares the fast and the permutation values on the small sample (per-feature
correlation, after summing one-hot firm-type columns).

Run: ``PYTHONPATH=src python benchmarks/shap_speed.py`` (about 10 minutes here).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from channel_shares import fit_with_refitters, old_shares
from common import log_benchmark, update_results_section
from vaer.attribution import channel_contributions, explain_effect, run_attribution
from vaer.attribution.stage import sample_rows
from vaer.attribution.truth_check import shap_correlations
from vaer.config.attribution import AttributionConfig
from vaer.config.models import (
    CausalForestDMLSpec,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import CONTROLS, MECHANISMS, MODIFIERS, make_synthetic_table

PREVIOUS_SURROGATE = {"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 31}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-units", type=int, default=20_000)
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--explain", type=int, default=3000)
    parser.add_argument("--slow-units", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md/MLflow")
    args = parser.parse_args()

    roles = Roles(
        unit="firm_id",
        outcome="resilience",
        treatment="va_index",
        cluster="city",
        controls=CONTROLS,
        modifiers=MODIFIERS,
        firm_types=["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
        mechanisms=MECHANISMS,
    )
    table = make_synthetic_table(
        SyntheticTableConfig(n_units=args.n_units, n_clusters=150), random_state=args.seed
    )
    data = build_analysis_data(table.frame, roles)
    started = time.perf_counter()
    specs = [
        CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": args.trees}),
        LinearDMLSpec(kind="linear_dml"),
    ]
    estimation, refitters = fit_with_refitters(data, specs, NuisanceConfig(), args.seed)
    fit_seconds = time.perf_counter() - started
    model = estimation.estimators[0].model
    print(f"fitted on {args.n_units} firms in {fit_seconds:.0f} s", flush=True)

    rows = sample_rows(data.n, args.explain, args.seed)
    background = sample_rows(data.n, 100, args.seed + 1)
    common = ("cf", "causal_forest_dml", model, data.x, rows, background, data.units)
    routes = {}
    for name, params in (("current", {}), ("previous", PREVIOUS_SURROGATE)):
        cpu = time.process_time()
        routes[name] = explain_effect(
            *common,
            data.feature_groups,
            method="tree_surrogate",
            surrogate_options={"params": params},
            random_state=args.seed,
        )
        routes[name].extra["cpu"] = time.process_time() - cpu
        print(f"{name} surrogate: {routes[name].seconds:.1f} s, R2 {routes[name].fidelity_r2:.4f}")
    fast = routes["current"]

    small = rows[: args.slow_units]
    started, cpu = time.perf_counter(), time.process_time()
    slow = explain_effect(
        "cf",
        "causal_forest_dml",
        model,
        data.x,
        small,
        background,
        data.units,
        data.feature_groups,
        method="permutation",
        random_state=args.seed,
    )
    slow_seconds, slow_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"permutation: {slow_seconds:.1f} s for {len(small)} units", flush=True)
    fast_small = fast.values.iloc[: len(small)].reset_index(drop=True)
    slow_values = slow.values.reset_index(drop=True)
    agreement = pd.DataFrame(
        {
            "feature": list(slow_values.columns),
            "corr": [
                shap_correlations(fast_small[f].to_numpy(), slow_values[f].to_numpy())
                for f in slow_values.columns
            ],
            "sd_slow": slow_values.std().to_numpy(),
            "rmse": np.sqrt(((fast_small - slow_values) ** 2).mean()).to_numpy(),
        }
    ).sort_values("sd_slow", ascending=False)
    print(agreement.to_string(index=False))

    config = AttributionConfig(n_units=args.explain)
    started = time.perf_counter()
    stage = run_attribution(
        data,
        estimation,
        config,
        roles,
        NuisanceConfig(),
        table.frame,
        random_state=args.seed,
        refitters=refitters,
    )
    stage_seconds = time.perf_counter() - started
    per_estimator = stage.summary_frame().set_index("estimator")["seconds"]
    started = time.perf_counter()
    for result in estimation.estimators:
        previous = explain_effect(
            result.label,
            result.kind,
            result.model,
            data.x,
            rows,
            background,
            data.units,
            data.feature_groups,
            surrogate_options={"params": PREVIOUS_SURROGATE},
            random_state=args.seed,
        )
        contributions = channel_contributions(previous.values, MECHANISMS)
        old_shares(contributions, data.clusters[rows], 200, args.seed)
    previous_seconds = time.perf_counter() - started
    print(
        f"attribution stage: {stage_seconds:.1f} s (previous construction {previous_seconds:.1f})"
    )
    if args.no_write:
        return
    top = agreement.head(6)
    load = os.getloadavg()[0]
    lines = [
        f"## SHAP speed and the attribution stage's cost ({args.n_units:,} firms)",
        "",
        f"Synthetic table with {args.n_units:,} firms in 150 cities; `causal_forest_dml` "
        f"(cluster forest, {args.trees} trees) and `linear_dml` (fit incl. nuisances "
        f"{fit_seconds:.0f} s). Load average {load:.1f} on {os.cpu_count()} cores (shared).",
        "",
        "| route (one model, the run's forest) | units | wall s | CPU s | fidelity R² |",
        "|---|---|---|---|---|",
        *[
            f"| `tree_surrogate`, {name} surrogate defaults | {len(rows)} | "
            f"{r.seconds:.1f} | {r.extra['cpu']:.1f} | {r.fidelity_r2:.4f} |"
            for name, r in routes.items()
        ],
        f"| permutation explainer (100 background units) | {len(small)} | {slow_seconds:.1f} "
        f"| {slow_cpu:.1f} | exact ({slow_seconds / len(small) * len(rows):.0f} s "
        f"extrapolated to {len(rows)} units) |",
        "",
        "| attribution stage (both estimators, no mechanism tests) | wall s |",
        "|---|---|",
        f"| cluster-honest (3 fold refits, every firm explained twice, intervals) | "
        f"{stage_seconds:.1f} (causal_forest_dml {per_estimator.get('causal_forest_dml', 0):.1f},"
        f" linear_dml {per_estimator.get('linear_dml', 0):.1f} of SHAP) |",
        f"| previous (run's model explained once, previous surrogate, bootstrap over firms) | "
        f"{previous_seconds:.1f} |",
        "",
        f"Agreement of the fast route with the permutation explainer on {len(small)} units "
        "(largest features):",
        "",
        "| feature | correlation | sd of permutation SHAP | RMSE of difference |",
        "|---|---|---|---|",
        *[
            f"| {r.feature} | {r.corr:.3f} | {r.sd_slow:.4f} | {r.rmse:.4f} |"
            for r in top.itertuples(index=False)
        ],
    ]
    update_results_section("shap_speed", "\n".join(lines))
    metrics = {
        "fast_seconds": fast.seconds,
        "fast_cpu_seconds": fast.extra["cpu"],
        "previous_surrogate_seconds": routes["previous"].seconds,
        "permutation_seconds_per_unit": slow_seconds / len(small),
        "fidelity_r2": fast.fidelity_r2,
        "previous_fidelity_r2": routes["previous"].fidelity_r2,
        "stage_seconds": stage_seconds,
        "previous_stage_seconds": previous_seconds,
        **{f"corr.{r.feature}": float(r.corr) for r in top.itertuples(index=False)},
    }
    log_benchmark("shap_speed", metrics, vars(args))


if __name__ == "__main__":
    main()
