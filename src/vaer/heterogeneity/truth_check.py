"""Accuracy of the GATEs against known truth (synthetic data only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaer.data.truth import Truth
from vaer.heterogeneity.gates import CROSS
from vaer.heterogeneity.stage import HeterogeneityResult


def true_gates(truth: Truth, units: np.ndarray, dimension: str) -> pd.Series:
    """True GATE per level of ``dimension`` over ``units``; crossed dimensions
    (``a x b``) are formed from their two columns like :mod:`vaer.heterogeneity.gates`."""
    if CROSS not in dimension:
        return truth.gates(dimension, units)
    first, second = dimension.split(CROSS, 1)
    frame = truth.firm_types.loc[units]
    labels = (frame[first].astype(str) + CROSS + frame[second].astype(str)).to_numpy()
    return pd.Series(truth.tau_for(units)).groupby(labels).mean()


def gate_truth_metrics(
    result: HeterogeneityResult, truth: Truth, units: np.ndarray
) -> dict[str, float]:
    """Per estimator: the share of GATE CIs that cover the true GATE and the RMSE of the
    GATEs, over every dimension and level of the GATE table.

    Returns
    -------
    dict
        Keys ``<estimator>.gate_coverage`` and ``<estimator>.gate_rmse``; empty when a
        dimension is not among the truth's firm types.
    """
    out: dict[str, float] = {}
    for item in result.estimators:
        table = item.gates.to_frame()
        if table.empty:
            continue
        try:
            expected = {d: true_gates(truth, units, d) for d in table["dimension"].unique()}
        except KeyError:
            continue
        true = np.array(
            [expected[d][lvl] for d, lvl in zip(table["dimension"], table["level"], strict=True)]
        )
        covered = (table["ci_low"].to_numpy() <= true) & (true <= table["ci_high"].to_numpy())
        out[f"{item.estimator}.gate_coverage"] = float(covered.mean())
        out[f"{item.estimator}.gate_rmse"] = float(
            np.sqrt(np.mean((table["estimate"].to_numpy() - true) ** 2))
        )
    return out
