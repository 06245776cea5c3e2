"""Wall time and peak memory of vaer.did.att_gt + dynamic aggregation at scale.

Design: ``simulate_staggered(n_units, 150 cities, 10 years, 3 cohorts, seed 0)``, balanced
and unbalanced (random entry/exit), plus three extra firm-level noise covariates (five
covariates in all). Times ``att_gt`` (method "dr", "reg", "ipw" with never-treated
controls, and "dr" with not-yet-treated controls; analytic city-clustered SEs) and then
``aggregate(..., "dynamic", n_boot=999)``, each once, single process. Peak memory is the
process's max RSS so far (it includes the simulated data and earlier, larger runs).

Usage: ``PYTHONPATH=src python benchmarks/did_speed.py [n_units ...]`` (rows = 10 x units
when balanced)
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from vaer.did import CellOptions, PanelColumns, aggregate, att_gt
from vaer.did.simulate import simulate_staggered

RUNS = (("dr", "never"), ("reg", "never"), ("ipw", "never"), ("dr", "notyet"))


def run(n_units: int, unbalanced: bool) -> None:
    """Time every method on one simulated panel and print one line per method."""
    frame, _ = simulate_staggered(n_units, 150, unbalanced=unbalanced, random_state=0)
    noise = np.random.default_rng(1).normal(size=(n_units, 3))
    firm = frame["firm"].to_numpy()
    for j in range(3):
        frame[f"w{j}"] = noise[firm, j]
    covariates = ["x1", "x2", "w0", "w1", "w2"]
    for method, control in RUNS:
        start = time.perf_counter()
        result = att_gt(
            frame,
            PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
            covariates=covariates,
            method=method,
            options=CellOptions(control_group=control),
        )
        fit = time.perf_counter() - start
        start = time.perf_counter()
        aggregate(result, "dynamic", n_boot=999, random_state=0)
        agg = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(
            f"{len(frame):>9,d} rows {'unbalanced' if unbalanced else 'balanced  '} "
            f"{n_units:>7,d} firms {method:3s} {control:6s} att_gt {fit:6.2f} s  "
            f"dynamic+999 boot {agg:5.2f} s  cells {len(result.att)}  peak RSS {peak:.2f} GiB",
            flush=True,
        )


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [20_000, 100_000]
    for n_units in sizes:
        for unbalanced in (False, True):
            run(n_units, unbalanced)


if __name__ == "__main__":
    main()
