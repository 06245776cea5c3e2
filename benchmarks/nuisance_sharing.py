"""Cost of fitting linear_dml + sparse_linear_dml + causal_forest_dml with shared nuisances.

Four timings on one synthetic table, in one process:

* vaer, causal forest alone; vaer, the three estimators together (nuisances fitted once
  and shared; each timing includes vaer's extras: out-of-sample effects, scores, SEs);
* plain econml ``CausalForestDML`` alone; plain econml ``LinearDML``,
  ``SparseLinearDML`` and ``CausalForestDML`` fitted separately, each fitting its own
  LightGBM nuisances (same learners, same cluster-grouped folds).

vaer's forest is its cluster forest (:class:`vaer.estimators.cluster_forest.ClusterForest`,
with its linear base and cluster-honest out-of-bag effects and SEs); econml's
``CausalForestDML`` gets vaer's forest numbers (trees, leaf size, ``max_samples``,
``max_features``, ``criterion``, ``subforest_size`` = ``ci_group_size``, ``honest=True``)
but subsamples units, not clusters, and has no linear base and no subsample cap: the two
forests do the same kind of work, not the same computation. The ratios compare each tool
with itself (three estimators vs its forest alone).

Usage::

    PYTHONPATH=src python benchmarks/nuisance_sharing.py --n-units 5000
    PYTHONPATH=src python benchmarks/nuisance_sharing.py --n-units 1000 --no-results  # check
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from common import log_benchmark, update_results_section
from vaer.config.models import ExperimentConfig, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import TABLE_ROLES, make_synthetic_table
from vaer.estimators.fit import fit_estimators
from vaer.estimators.nuisance import grouped_folds, make_regressor

KINDS = ["linear_dml", "sparse_linear_dml", "causal_forest_dml"]


def _timed(function: Any, repeats: int = 1) -> float:
    """Minimum wall time over ``repeats`` calls (robust to other load on the machine)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-units", type=int, default=5000)
    parser.add_argument("--n-clusters", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=2, help="each timing is the minimum over repeats"
    )
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()

    table = make_synthetic_table(
        SyntheticTableConfig(n_units=args.n_units, n_clusters=args.n_clusters),
        random_state=args.seed,
    )
    config = ExperimentConfig.model_validate(
        {"name": "sharing", "roles": TABLE_ROLES, "estimators": [{"kind": k} for k in KINDS]}
    )
    data = build_analysis_data(table.frame, config.roles)
    specs = {spec.kind: spec for spec in config.estimators}
    forest = specs["causal_forest_dml"].params

    def vaer(kinds: list[str]) -> None:
        fit_estimators(data, [specs[k] for k in kinds], config.nuisance, random_state=args.seed)

    x = data.x.to_numpy()
    w = data.w.to_numpy()
    folds = grouped_folds(data.clusters, forest.cv, args.seed)

    def econml(kind: str) -> None:
        from econml.dml import CausalForestDML, LinearDML, SparseLinearDML

        models = {
            "model_y": make_regressor(config.nuisance, args.seed),
            "model_t": make_regressor(config.nuisance, args.seed),
            "cv": folds,
            "random_state": args.seed,
        }
        if kind == "linear_dml":
            model: Any = LinearDML(**models)
        elif kind == "sparse_linear_dml":
            model = SparseLinearDML(**models)
        else:
            model = CausalForestDML(
                **models,
                n_estimators=forest.n_estimators,
                min_samples_leaf=forest.min_samples_leaf,
                max_depth=forest.max_depth,
                max_samples=forest.max_samples,
                max_features=forest.max_features,
                criterion=forest.criterion,
                subforest_size=forest.ci_group_size,
                honest=True,
                n_jobs=1,
            )
        model.fit(data.y, data.t, X=x, W=w)

    r = args.repeats
    load_before = os.getloadavg()[0]
    econml("linear_dml")  # warm-up: first imports of econml and statsmodels are not timed
    timings = {
        "vaer_forest_alone": _timed(lambda: vaer(["causal_forest_dml"]), r),
        "vaer_three_shared": _timed(lambda: vaer(KINDS), r),
        "econml_forest_alone": _timed(lambda: econml("causal_forest_dml"), r),
    }
    timings["econml_three_separate"] = sum(_timed(lambda k=k: econml(k), r) for k in KINDS)
    load_after = os.getloadavg()[0]
    shared = timings["vaer_three_shared"] / timings["vaer_forest_alone"]
    separate = timings["econml_three_separate"] / timings["econml_forest_alone"]
    print(timings, f"shared ratio {shared:.2f}, separate ratio {separate:.2f}")

    lines = [
        "## Nuisance sharing: three DML estimators vs the causal forest alone "
        "(`nuisance_sharing.py`)",
        "",
        f"{args.n_units} synthetic firms in {args.n_clusters} cities; LightGBM nuisances "
        f"(defaults), {forest.cv} cluster-grouped folds; causal forest with vaer's "
        f"defaults: {forest.n_estimators} trees in groups of {forest.ci_group_size}, "
        f"min_samples_leaf {forest.min_samples_leaf}, max_samples {forest.max_samples}; "
        f"vaer's is its cluster forest (linear_base {str(forest.linear_base).lower()}, "
        f"max_subsample_size {forest.max_subsample_size}, cluster-honest out-of-bag "
        "effects and SEs), econml's a `CausalForestDML` with the same numbers and "
        "`honest=True`, subsampling units (no cluster honesty, no base). "
        f"Each timing is the minimum over {args.repeats} repeats (the machine is shared). "
        "Target: shared ratio <= 1.4.",
        "",
        "| fit | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in timings.items()],
        "",
        f"**Ratio, vaer (shared nuisances): {shared:.2f}x**; ratio, three separate plain econml "
        f"fits: {separate:.2f}x.",
        "",
        f"Load average of the 2-core machine (shared with other jobs): {load_before:.1f} before, "
        f"{load_after:.1f} after; with a load above ~2 the ratios carry large timing noise.",
    ]
    print("\n".join(lines))
    if args.no_results:
        return
    update_results_section("estimators-nuisance-sharing", "\n".join(lines))
    log_benchmark(
        "estimators-nuisance-sharing",
        {**timings, "ratio_shared": shared, "ratio_separate": separate},
        {"n_units": args.n_units, "n_clusters": args.n_clusters},
    )


if __name__ == "__main__":
    main()
