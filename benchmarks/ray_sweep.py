"""Wall time of an 8-variant sweep in this process vs on a Ray cluster, and Ray's overhead.

Both sweeps are the same plan (``estimators.0.params.min_samples_leaf`` x seeds on the
synthetic firm table) logging to one real ``mlflow server`` on 127.0.0.1. The Ray sweep
runs on a local cluster started from the command line: a head and one worker node, one
CPU each (2 worker processes). Measured in the same run:

* wall time of the whole sweep, in process and on Ray, and the ratio;
* time inside each variant (``VariantOutcome.seconds``) on either backend;
* Ray's overhead per variant: worker time not spent inside a variant,
  ``(wall_ray * slots - sum(variant seconds)) / variants`` (a fresh worker importing vaer
  and econml, shipping the task, a new connection to the tracking server);
* an empty task's round trip, one at a time and 200 submitted at once;
* the largest difference of any variant's ATE between the two backends.

From these it projects the speed-up on 16 nodes x 2 cores (32 task slots):
``ceil(V / 32) * (variant + overhead) + driver`` against ``V * variant + driver``.

Usage::

    python benchmarks/ray_sweep.py --variants 8 --n-units 1500
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import log_benchmark, update_results_section
from vaer.compute.local_cluster import LocalCluster, free_port
from vaer.compute.ray_backend import RayBackend
from vaer.config import load_sweep
from vaer.data.synthetic_table import TABLE_ROLES
from vaer.sweep import SweepResult, run_sweep
from vaer.tracking.server import tracking_server

SLOTS = 2  # worker processes of the local cluster
PROJECTED_SLOTS = 32  # 16 nodes x 2 cores


def _plan(folder: Path, uri: str, variants: int, n_units: int, backend: dict[str, Any]) -> Any:
    import yaml

    seeds = list(range(1, variants // 2 + 1))
    raw = {
        "name": f"ray_sweep_{backend['backend']}",
        "data": {
            "source": "synthetic",
            "synthetic": {"n_units": n_units, "n_clusters": max(20, n_units // 30)},
        },
        "roles": {**TABLE_ROLES, "firm_types": ["ownership", "trade_mode"]},
        "estimators": [
            {"kind": "causal_forest_dml", "params": {"n_estimators": 200, "cv": 3}},
            {"kind": "linear_dml", "params": {"cv": 3}},
        ],
        "heterogeneity": {"n_bootstrap": 100},
        "tracking": {"uri": uri, "experiment": "ray_sweep_benchmark"},
        "report": {"out": str(folder / "reports" / "{run_name}-{run_id}"), "formats": ["html"]},
        "compute": backend,
        "sweep": {"grid": {"estimators.0.params.min_samples_leaf": [5, 20]}, "seeds": seeds},
    }
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_sweep(path)


def _timed_sweep(plan: Any) -> tuple[SweepResult, float]:
    started = time.perf_counter()
    result = run_sweep(plan)
    return result, time.perf_counter() - started


def _estimates(result: SweepResult) -> dict[str, float]:
    """``variant|ate.<estimator>.estimate`` -> value, from the sweep's summary."""
    summary = result.summary
    columns = [c for c in summary.columns if c.startswith("ate.") and c.endswith(".estimate")]
    return {
        f"{row['variant']}|{column}": float(row[column])
        for row in summary.to_dict("records")
        for column in columns
    }


def _empty_task_ms(backend: RayBackend) -> tuple[float, float]:
    """Round trip of an empty task: one at a time (median of 20), and each of 200 at once."""
    backend.map(int, [0, 1])  # warm the workers
    single = []
    for _ in range(20):
        started = time.perf_counter()
        backend.map(int, [0])
        single.append(time.perf_counter() - started)
    started = time.perf_counter()
    backend.map(int, list(range(200)))
    return 1000 * float(np.median(single)), 1000 * (time.perf_counter() - started) / 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8, help="an even number")
    parser.add_argument("--n-units", type=int, default=1500)
    args = parser.parse_args()
    if args.variants < 2 or args.variants % 2:
        parser.error(f"--variants must be an even int >= 2; got {args.variants}")
    folder = Path(tempfile.mkdtemp(prefix="vaer-ray-sweep-"))
    load_before = os.getloadavg()
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")  # mlflow.set_tracking_uri sets it
    with tracking_server(folder / "mlflow.db", free_port()) as uri:
        local_plan = _plan(folder, uri, args.variants, args.n_units, {"backend": "local"})
        local, local_wall = _timed_sweep(local_plan)
        with LocalCluster(num_cpus=1, worker_nodes=SLOTS - 1) as cluster:
            compute = {"backend": "ray", "address": cluster.address}
            ray_plan = _plan(folder, uri, args.variants, args.n_units, compute)
            on_ray, ray_wall = _timed_sweep(ray_plan)
            single_ms, batch_ms = _empty_task_ms(RayBackend(address=cluster.address))
            import ray

            ray.shutdown()
    load_after = os.getloadavg()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if previous_uri is not None:
        os.environ["MLFLOW_TRACKING_URI"] = previous_uri
    failed = local.failed + on_ray.failed
    if failed:
        raise SystemExit(f"variants failed: {[o.error for o in failed]}")
    a, b = _estimates(local), _estimates(on_ray)
    largest = max(abs(a[k] - b[k]) for k in a)
    v = args.variants
    inside_local = float(np.mean([o.seconds for o in local.outcomes]))
    inside_ray = float(np.mean([o.seconds for o in on_ray.outcomes]))
    overhead = (ray_wall * SLOTS - sum(o.seconds for o in on_ray.outcomes)) / v
    driver = max(0.0, local_wall - sum(o.seconds for o in local.outcomes))
    rows = []
    for n in (8, 100, 500):
        serial = n * inside_local + driver
        cluster_time = math.ceil(n / PROJECTED_SLOTS) * (inside_local + overhead) + driver
        rows.append(f"| {n} | {serial:.0f} | {cluster_time:.0f} | {serial / cluster_time:.1f}x |")
    markdown = "\n".join(
        [
            "## Sweeps on Ray: local vs a 2-process Ray cluster (`benchmarks/ray_sweep.py`)",
            "",
            f"{v} variants (min_samples_leaf x {v // 2} seeds) of the synthetic table with "
            f"{args.n_units} firms: `causal_forest_dml` (200 trees) and `linear_dml`, "
            "heterogeneity on, HTML report; both sweeps log to one `mlflow server` on "
            "127.0.0.1. Ray: a head and one worker node started from the command line, "
            "one CPU each (2 worker processes). The machine has 2 cores, which the driver "
            "and the tracking server share with the workers.",
            "",
            "| | in process | on Ray |",
            "|---|---|---|",
            f"| sweep wall time (s) | {local_wall:.1f} | {ray_wall:.1f} |",
            f"| mean time inside a variant (s) | {inside_local:.1f} | {inside_ray:.1f} |",
            f"| speed-up | | {local_wall / ray_wall:.2f}x |",
            "",
            f"- Ray's overhead per variant (worker time outside the variant): {overhead:.1f} s.",
            f"- Empty task round trip: {single_ms:.1f} ms one at a time, {batch_ms:.2f} ms "
            "each when 200 are submitted at once.",
            f"- Largest difference of a variant's ATE between the backends: {largest:.2e}.",
            f"- Driver time outside the variants (parent run, summary): {driver:.1f} s.",
            f"- Load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f}.",
            "",
            "Projection to 16 nodes x 2 cores (32 task slots), from the times above: "
            "`ceil(V/32) * (variant + overhead) + driver` vs `V * variant + driver`. A sweep "
            "smaller than the slots cannot fill them; the tracking server must keep up with "
            "32 writers.",
            "",
            "| variants | one process (s) | 16 x 2 cores (s) | speed-up |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    update_results_section("ray_sweep", markdown)
    log_benchmark(
        "ray_sweep",
        {
            "wall_local_s": local_wall,
            "wall_ray_s": ray_wall,
            "speedup": local_wall / ray_wall,
            "variant_local_s": inside_local,
            "variant_ray_s": inside_ray,
            "overhead_per_variant_s": overhead,
            "empty_task_ms": single_ms,
            "empty_task_batched_ms": batch_ms,
            "largest_ate_difference": largest,
        },
        {"variants": v, "n_units": args.n_units},
    )
    print(markdown)


if __name__ == "__main__":
    main()
