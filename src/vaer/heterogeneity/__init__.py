"""Heterogeneity of the effect across firms: GATEs by firm type with equality tests,
sorted GATES and CLAN, the calibration test and best linear projection, RATE (AUTOC,
Qini, TOC) and a depth-2 policy tree, all from doubly robust scores with cluster-robust
inference for a finite number of clusters: CR2 standard errors with Bell-McCaffrey
t-tests and HTZ F-tests (:mod:`vaer.heterogeneity.ols`), a cluster bootstrap with
t(G - 1) for RATE, and within-fold evaluation of cross-fitted predictions
(:mod:`vaer.heterogeneity.folds`) (DESIGN.md section 7)."""

from vaer.heterogeneity.blp import BlpResult, best_linear_projection
from vaer.heterogeneity.calibration import CalibrationResult, test_calibration
from vaer.heterogeneity.gates import GateResult, estimate_gates
from vaer.heterogeneity.multiple_testing import band_critical, holm, romano_wolf, t_draws
from vaer.heterogeneity.ols import OlsFit, cluster_design, cluster_ols, group_design
from vaer.heterogeneity.policy_tree import PolicyTreeResult, fit_policy_tree, split_candidates
from vaer.heterogeneity.rate import RateResult, rank_average_treatment_effect
from vaer.heterogeneity.sorted_gates import SortedGatesResult, clan_variables, sorted_gates
from vaer.heterogeneity.stage import (
    EstimatorHeterogeneity,
    HeterogeneityResult,
    analyze_heterogeneity,
)
from vaer.heterogeneity.truth_check import gate_truth_metrics, true_gates

__all__ = [
    "BlpResult",
    "CalibrationResult",
    "EstimatorHeterogeneity",
    "GateResult",
    "HeterogeneityResult",
    "OlsFit",
    "PolicyTreeResult",
    "RateResult",
    "SortedGatesResult",
    "analyze_heterogeneity",
    "band_critical",
    "best_linear_projection",
    "clan_variables",
    "cluster_design",
    "cluster_ols",
    "estimate_gates",
    "fit_policy_tree",
    "gate_truth_metrics",
    "group_design",
    "holm",
    "rank_average_treatment_effect",
    "romano_wolf",
    "sorted_gates",
    "split_candidates",
    "t_draws",
    "test_calibration",
    "true_gates",
]
