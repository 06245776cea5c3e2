"""SHAP of a 500-tree causal forest on 5,000 units: the fast route against econml's own.

Fits ``causal_forest_dml`` (``--trees`` trees) on the synthetic firm table
(``--n-units`` firms), then times

* the fast route, ``attribution.method: tree_surrogate``: distil tau_hat(x) into a
  LightGBM model (fidelity = R² to tau_hat on held-out units) and explain it exactly by
  path-dependent TreeSHAP, on ``--explain`` units;
* econml's ``CausalForestDML.shap_values`` (shap's permutation explainer on
  ``const_marginal_effect`` with 100 background units) on ``--slow-units`` of the same
  units, extrapolated linearly to ``--explain`` units;

and compares the two on the small sample (per-feature correlation, after summing one-hot
firm-type columns). It also reports how far the forest's average of per-tree estimates
(what TreeSHAP over the forest's own trees would explain) is from its prediction.

Run: ``PYTHONPATH=src python benchmarks/shap_speed.py`` (about 4 minutes here).
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

from common import log_benchmark, update_results_section
from vaer.attribution.explain import explain_effect
from vaer.attribution.groups import modifier_groups, sum_groups
from vaer.attribution.stage import sample_rows
from vaer.attribution.surrogate import r_squared
from vaer.attribution.truth_check import shap_correlations
from vaer.config.models import (
    CausalForestDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import (
    CONTROLS,
    MECHANISMS,
    MODIFIERS,
    make_synthetic_table,
)
from vaer.estimators.fit import fit_estimators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-units", type=int, default=20_000)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--explain", type=int, default=5000)
    parser.add_argument("--slow-units", type=int, default=100)
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
        mechanisms=MECHANISMS,
    )
    table = make_synthetic_table(
        SyntheticTableConfig(n_units=args.n_units, n_clusters=150), random_state=args.seed
    )
    data = build_analysis_data(table.frame, roles)
    started = time.perf_counter()
    spec = CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": args.trees})
    estimation = fit_estimators(data, [spec], NuisanceConfig(), random_state=args.seed)
    fit_seconds = time.perf_counter() - started
    model = estimation.estimators[0].model
    print(f"fitted {args.trees} trees on {args.n_units} firms in {fit_seconds:.0f} s", flush=True)

    rows = sample_rows(data.n, args.explain, args.seed)
    background = sample_rows(data.n, 100, args.seed + 1)
    cpu = time.process_time()
    fast = explain_effect(
        "causal_forest_dml",
        "causal_forest_dml",
        model,
        data.x,
        rows,
        background,
        data.units,
        data.feature_groups,
        method="tree_surrogate",
        random_state=args.seed,
    )
    fast_cpu = time.process_time() - cpu
    print(
        f"fast route: {fast.seconds:.1f} s ({fast_cpu:.1f} s CPU) for {len(rows)} units, "
        f"R2 {fast.fidelity_r2:.4f}",
        flush=True,
    )

    small = rows[: args.slow_units]
    x_small = data.x.to_numpy(dtype=np.float64)[small]
    started, cpu = time.perf_counter(), time.process_time()
    slow = model.shap_values(x_small, background_samples=100)
    slow_seconds = time.perf_counter() - started
    slow_cpu = time.process_time() - cpu
    explanation = next(iter(next(iter(slow.values())).values()))
    groups = modifier_groups(list(data.x.columns), data.feature_groups)
    slow_values = sum_groups(np.asarray(explanation.values), list(data.x.columns), groups)
    slow_extrapolated = slow_seconds / len(small) * len(rows)
    print(
        f"econml shap_values: {slow_seconds:.1f} s ({slow_cpu:.1f} s CPU) for {len(small)} units",
        flush=True,
    )

    fast_small = fast.values.iloc[: len(small)].reset_index(drop=True)
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
    x_all = data.x.to_numpy(dtype=np.float64)[rows]
    forest = np.asarray(model.effect(x_all)).ravel()
    grf = model.model_cate.estimators_[0]  # econml wraps the forest in a MultiOutputGRF
    tree_average = np.asarray(grf.predict_tree_average(x_all)).reshape(len(rows), -1)
    tree_average_r2 = r_squared(forest, tree_average[:, 0])
    print(f"R2 of the per-tree average to the forest's prediction: {tree_average_r2:.4f}")
    if args.no_write:
        return
    top = agreement.head(6)
    lines = [
        "## SHAP speed: 500-tree causal forest, 5,000 units",
        "",
        f"Synthetic table with {args.n_units} firms; `causal_forest_dml` with {args.trees} "
        f"trees (fit incl. nuisances {fit_seconds:.0f} s).",
        "",
        "| route | units | wall s | CPU s | wall s for 5,000 units |",
        "|---|---|---|---|---|",
        f"| vaer `tree_surrogate` (distil + exact TreeSHAP) | {len(rows)} | "
        f"{fast.seconds:.1f} | {fast_cpu:.1f} | {fast.seconds / len(rows) * 5000:.1f} |",
        f"| econml `CausalForestDML.shap_values` | {len(small)} | {slow_seconds:.1f} | "
        f"{slow_cpu:.1f} | {slow_seconds / len(small) * 5000:.0f} (extrapolated) |",
        "",
        f"Load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(the machine is shared; CPU seconds are this process's own).",
        "",
        f"Surrogate fidelity: R² to tau_hat on held-out units = {fast.fidelity_r2:.4f}. "
        f"For comparison, the forest's average of per-tree estimates (what TreeSHAP over the "
        f"forest's own trees would explain) has R² {tree_average_r2:.4f} to its prediction.",
        "",
        f"Agreement with econml's SHAP values on the {len(small)} units (largest features):",
        "",
        "| feature | correlation | sd of econml SHAP | RMSE of difference |",
        "|---|---|---|---|",
        *[
            f"| {r.feature} | {r.corr:.3f} | {r.sd_slow:.4f} | {r.rmse:.4f} |"
            for r in top.itertuples(index=False)
        ],
    ]
    update_results_section("shap_speed", "\n".join(lines))
    metrics = {
        "fast_seconds": fast.seconds,
        "fast_cpu_seconds": fast_cpu,
        "econml_cpu_seconds_per_unit": slow_cpu / len(small),
        "econml_seconds_extrapolated": slow_extrapolated,
        "fidelity_r2": fast.fidelity_r2,
        "tree_average_r2": tree_average_r2,
        **{f"corr.{r.feature}": float(r.corr) for r in top.itertuples(index=False)},
    }
    log_benchmark("shap_speed", metrics, vars(args))


if __name__ == "__main__":
    main()
