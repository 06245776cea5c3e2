"""Why ATT(g, t) cells under-cover in ``did_validity.py``: city- vs firm-clustered SEs.

Diagnostic, on tuning seeds only (``0 .. n_seeds - 1``; ``did_validity.py`` reports seeds
from 1000). For each seed: the synthetic panel and firm-year sample exactly as a
``did_validity.py`` draw of ``--design`` builds them (optionally with ``--cities``
instead of the design's city count), then :func:`vaer.did.att_gt` (dr, never-treated
controls, as the did stage) twice: clustered by city (as the stage) and by firm. The
panel has no city-year shock in 2012-2018, so both SEs estimate the same variance; the
city-clustered one rests on the ~10% of cities in each pilot wave. Prints, per
clustering, the pooled 95% coverage of the true ATT(g, t) over (seed, cell) pairs and the
SD over seeds of estimate - truth divided by the mean SE, averaged over cells (1 when
the SEs are right).

Usage::

    PYTHONPATH=src python benchmarks/did_cluster_diagnostic.py --seeds 100 --design a150
    PYTHONPATH=src python benchmarks/did_cluster_diagnostic.py --seeds 100 --cities 600
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from did_validity import DESIGNS, build_raw


def one_seed(design: Any, seed: int, n_firms: int) -> list[dict[str, Any]]:
    """Cell errors and SEs of one seed under city and firm clustering ([] if refused)."""
    from vaer.config.loader import validate_config
    from vaer.did import CellOptions, PanelColumns, att_gt
    from vaer.did.stage import DidResult, did_sample, true_att_gt
    from vaer.measures.study import load_study_data

    with tempfile.TemporaryDirectory() as folder:
        config = validate_config(build_raw(design, seed, n_firms, 999, Path(folder)))
    panel = load_study_data(config.data, config.roles, config.measures, seed=seed).source_panel
    try:
        sample, _ = did_sample(panel.frame, config.roles, config.did)
    except ValueError:  # a one-city cohort, refused as by the stage
        return []
    z = norm.ppf(0.975)
    rows = []
    for clustering, column in (("city", "cluster"), ("firm", "unit")):
        cells = att_gt(
            sample,
            PanelColumns(unit="unit", period="year", cohort="cohort", cluster=column, outcome="y"),
            method="dr",
            options=CellOptions(control_group="never"),
        )
        result = DidResult(
            att_gt=cells, aggregates={}, pretrend=None, outcome="y", dropped={},
            sample=sample[["unit", "year", "cohort"]],
        )  # fmt: skip
        error = cells.att - true_att_gt(result, panel.synthetic.pilot.effect)
        for k in range(len(error)):
            rows.append(
                {
                    "seed": seed,
                    "clustering": clustering,
                    "cell": f"{int(cells.group[k])}:{int(cells.time[k])}",
                    "error": float(error[k]),
                    "se": float(cells.se[k]),
                    "covered": bool(abs(error[k]) <= z * cells.se[k]),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--design", choices=list(DESIGNS), default="a150")
    parser.add_argument("--cities", type=int, help="replace the design's number of cities")
    parser.add_argument("--n-firms", type=int, default=5000)
    args = parser.parse_args()
    design = DESIGNS[args.design]
    if args.cities:
        design = dataclasses.replace(design, n_cities=args.cities)
    rows = [r for seed in range(args.seeds) for r in one_seed(design, seed, args.n_firms)]
    frame = pd.DataFrame(rows)
    print(
        f"design {args.design}, {design.n_cities} cities, {args.n_firms} firms, tuning seeds "
        f"0-{args.seeds - 1} ({frame['seed'].nunique()} estimable)"
    )
    for clustering, part in frame.groupby("clustering"):
        per_cell = part.groupby("cell").agg(sd=("error", "std"), se=("se", "mean"))
        ratio = float(np.mean(per_cell["sd"] / per_cell["se"]))
        print(
            f"  clustered by {clustering}: cell coverage {part['covered'].mean():.3f}, "
            f"mean SD/SE {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
