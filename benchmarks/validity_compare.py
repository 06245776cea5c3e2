"""Before and after a change of default: the ATE rows of two validity runs, seed by seed.

Reads two per-seed CSVs written by ``validity.py`` (``--before``, ``--after``), keeps the
ATE rows (``claim == ate_coverage``, the cluster-robust row) of the seeds both runs
finished for each design and estimator, and prints one Markdown line per design and
estimator: bias / mean SE, spread / mean SE and coverage before -> after, the paired
shift of the estimate in SEs with its Monte-Carlo SE, and the seeds. Paired seeds make
the shift far more precise than either bias: the same data, only the code differs.

Usage::

    cd benchmarks && python validity_compare.py \\
        --before validity_runs/seeds_full.csv.gz \\
        --after validity_runs/seeds_ate_outcome_model.csv.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ["design", "estimator", "seed"]


def ate_frame(path: Path) -> pd.DataFrame:
    """The cluster-robust ATE rows of a per-seed CSV, one per design, estimator and seed."""
    frame = pd.read_csv(path, low_memory=False)
    ate = frame[frame["claim"] == "ate_coverage"]
    return ate.drop_duplicates(KEYS, keep="last")[[*KEYS, "estimate", "se", "truth", "value"]]


def compare(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per design and estimator, before and after on the seeds both have.

    Returns
    -------
    DataFrame
        Columns ``design``, ``estimator``, ``seeds``, ``bias_before``, ``bias_after``
        (mean error / mean SE), ``spread_before``, ``spread_after`` (sd of the errors /
        mean SE), ``coverage_before``, ``coverage_after``, ``shift`` (mean of
        ``(after - before) / mean SE before``) and ``shift_se`` (its Monte-Carlo SE).
    """
    paired = before.merge(after, on=KEYS, suffixes=("_b", "_a"))
    lines = []
    for (design, estimator), group in paired.groupby(["design", "estimator"], sort=True):
        se_b, se_a = group["se_b"].mean(), group["se_a"].mean()
        error_b = group["estimate_b"] - group["truth_b"]
        error_a = group["estimate_a"] - group["truth_a"]
        shift = (group["estimate_a"] - group["estimate_b"]) / se_b
        lines.append(
            {
                "design": design,
                "estimator": estimator,
                "seeds": len(group),
                "bias_before": error_b.mean() / se_b,
                "bias_after": error_a.mean() / se_a,
                "spread_before": error_b.std() / se_b,
                "spread_after": error_a.std() / se_a,
                "coverage_before": group["value_b"].mean(),
                "coverage_after": group["value_a"].mean(),
                "shift": shift.mean(),
                "shift_se": shift.std() / np.sqrt(len(group)),
            }
        )
    return pd.DataFrame(lines)


def markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table."""
    out = [
        "| design | estimator | bias / SE | spread / SE | coverage | paired shift / SE | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        out.append(
            f"| {r.design} | {r.estimator} | {r.bias_before:+.2f} -> {r.bias_after:+.2f} | "
            f"{r.spread_before:.2f} -> {r.spread_after:.2f} | "
            f"{r.coverage_before:.2f} -> {r.coverage_after:.2f} | "
            f"{r.shift:+.3f} ({r.shift_se:.3f}) | {r.seeds} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    args = parser.parse_args()
    print(markdown(compare(ate_frame(args.before), ate_frame(args.after))))


if __name__ == "__main__":
    main()
