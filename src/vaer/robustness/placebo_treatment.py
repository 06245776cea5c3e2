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

Pass rule: each placebo refit's cluster-robust t-statistic is tested against 0 with
Student's t on G - 1 degrees of freedom at level ``alpha / repeats``
(:func:`vaer.robustness.rules.zero_test`). The placebo effect is exactly 0 when the model
is right, so the check raises a false alarm in at most ``alpha`` of runs when the
cluster-robust SE is valid. The placebo's deviations sum to zero in every cluster, so
city-level shocks cancel out of its estimate and its SE rests on firm-level variation.

Reference: Sharma, A. and Kiciman, E. (2020), DoWhy: An end-to-end library for causal
inference, arXiv:2011.04216 (placebo refuters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from vaer.data.design import AnalysisData
from vaer.robustness.plan import Plan, check_row, n_clusters
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult
from vaer.robustness.rules import row_level, zero_test

CHECK = "placebo_treatment"


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


def placebo_treatment_plan(
    data: AnalysisData, *, repeats: int, random_state: int, alpha: float = 0.05
) -> Plan:
    """``repeats`` placebo refits, each tested for a zero effect at level ``alpha / repeats``.

    Parameters
    ----------
    data : AnalysisData
    repeats : int
        Independent permutations.
    random_state : int
    alpha : float
        False-alarm rate of the check as a whole when the model is right.

    Raises
    ------
    ValueError
        If ``repeats`` < 1 or ``alpha`` is not in (0, 0.5].
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1; got {repeats}")
    level = row_level(alpha, repeats)
    rng = np.random.default_rng(random_state)
    datasets = tuple(placebo_data(data, rng) for _ in range(repeats))
    clusters = n_clusters(data)

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        rows = []
        for k, refit in enumerate(refits):
            verdict = zero_test(refit.ate.estimate, refit.ate.se, n_clusters=clusters, level=level)
            rows.append(
                check_row(
                    CHECK,
                    f"permutation {k + 1}",
                    refit.ate,
                    reference=0.0,
                    reference_se=0.0,
                    rule=f"placebo effect is 0: |t| = {abs(verdict.statistic):.2f} vs "
                    f"{verdict.critical:.2f} (t, {clusters - 1} df, level {level:.3g}); "
                    f"false alarm {alpha:.0%} when the model is right",
                    verdict=verdict,
                    alpha=alpha,
                )
            )
        return rows

    return Plan(CHECK, datasets, evaluate)
