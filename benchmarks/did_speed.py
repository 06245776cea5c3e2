"""Wall time and peak memory of vaer.did.att_gt + dynamic aggregation at scale.

Design: ``simulate_staggered(n_units, 150 cities, 10 years, 3 cohorts, seed 0)`` plus
three extra noise covariates (5 covariates in all), never-treated controls; times
``att_gt`` (method "dr", "reg", "ipw"; analytic city-clustered SEs) and
``aggregate(..., "dynamic", n_boot=999)``, each once, single process. Peak memory is the
process's max RSS (includes the simulated data).

Usage: ``PYTHONPATH=src python benchmarks/did_speed.py [n_units ...]`` (rows = 10 x units)
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from vaer.did import aggregate, att_gt
from vaer.did.simulate import simulate_staggered


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [20_000, 100_000]
    for n_units in sizes:
        frame, _ = simulate_staggered(n_units, 150, random_state=0)
        rng = np.random.default_rng(1)
        firm_noise = rng.normal(size=(n_units, 3))
        for j in range(3):
            frame[f"w{j}"] = firm_noise[frame["firm"].to_numpy(), j]
        covariates = ["x1", "x2", "w0", "w1", "w2"]
        for method in ("dr", "reg", "ipw"):
            start = time.perf_counter()
            result = att_gt(
                frame,
                unit="firm",
                period="year",
                cohort="cohort",
                cluster="city",
                outcome="y",
                covariates=covariates,
                method=method,
            )
            fit = time.perf_counter() - start
            start = time.perf_counter()
            aggregate(result, "dynamic", n_boot=999, random_state=0)
            agg = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
            print(
                f"{len(frame):>9,d} rows  {n_units:>7,d} firms  method={method:3s}  "
                f"att_gt {fit:6.2f} s  dynamic+999 boot {agg:5.2f} s  "
                f"cells {len(result.att)}  peak RSS {peak:.2f} GiB"
            )


if __name__ == "__main__":
    main()
