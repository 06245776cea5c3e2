"""Placebo treatment: the treatment permuted within cluster; the effect should vanish.

A plain permutation within cluster keeps each cluster's *mean* treatment, which is real
variation (a city's VA level, which the nuisance models do not see when it comes from
unobserved city components) and still moves with the outcome through the effect of VA: on
the synthetic table such a "placebo" keeps a third to a half of the real effect. The
placebo here is therefore the treatment's within-cluster deviation
``T_i - mean_c(T)``, permuted among the firms of the same cluster: it keeps the firm-level
spread of VA inside every city but no link to any firm's outcome (its expected effect is
exactly 0, since deviations sum to 0 within a cluster). Unlike dowhy's default placebo for
a float treatment (a draw from N(0, 0)), it has the real deviations' distribution.

Reference: Sharma, A. and Kiciman, E. (2020), DoWhy: An end-to-end library for causal
inference, arXiv:2011.04216 (placebo refuters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from vaer.data.design import AnalysisData
from vaer.robustness.plan import Plan, check_row
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult

CHECK = "placebo_treatment"
RULE = "placebo effect vanishes: its 95% CI covers 0"


def permute_within_cluster(
    values: np.ndarray, clusters: np.ndarray, random_state: int | np.random.Generator
) -> np.ndarray:
    """A copy of ``values`` shuffled among units of the same cluster.

    Parameters
    ----------
    values, clusters : ndarray of shape (n,)
    random_state : int or numpy Generator

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    values = np.asarray(values)
    clusters = np.asarray(clusters)
    if values.shape != clusters.shape:
        raise ValueError(
            f"`values` and `clusters` must have the same shape; got {values.shape} and "
            f"{clusters.shape}"
        )
    rng = np.random.default_rng(random_state)
    order = np.lexsort((rng.random(len(values)), clusters))  # by cluster, random within
    by_cluster = np.argsort(clusters, kind="stable")  # by cluster, original order within
    permuted = values.copy()
    permuted[by_cluster] = values[order]
    return permuted


def placebo_data(data: AnalysisData, random_state: int | np.random.Generator) -> AnalysisData:
    """``data`` with the treatment replaced by its within-cluster deviations, permuted
    within cluster (see the module docstring)."""
    cluster_mean = pd.Series(data.t).groupby(data.clusters).transform("mean").to_numpy()
    deviation = data.t - cluster_mean
    return replace(data, t=permute_within_cluster(deviation, data.clusters, random_state))


def placebo_treatment_plan(data: AnalysisData, *, repeats: int, random_state: int) -> Plan:
    """``repeats`` placebo refits, each passing if its 95% CI covers 0.

    Raises
    ------
    ValueError
        If ``repeats`` < 1.
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1; got {repeats}")
    rng = np.random.default_rng(random_state)
    datasets = tuple(placebo_data(data, rng) for _ in range(repeats))

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        return [
            check_row(
                CHECK,
                f"permutation {k + 1}",
                refit.ate,
                reference=0.0,
                rule=RULE,
                passed=refit.ate.covers(0.0),
            )
            for k, refit in enumerate(refits)
        ]

    return Plan(CHECK, datasets, evaluate)
