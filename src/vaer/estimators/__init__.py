"""Estimation: econml estimators on shared cross-fitted nuisances, DR scores, inference."""

from vaer.estimators.fit import fit_estimators
from vaer.estimators.inference import MeanEstimate, cluster_robust_mean
from vaer.estimators.results import AteEstimate, EstimationResult, EstimatorResult
from vaer.estimators.scores import continuous_dr_scores

__all__ = [
    "AteEstimate",
    "EstimationResult",
    "EstimatorResult",
    "MeanEstimate",
    "cluster_robust_mean",
    "continuous_dr_scores",
    "fit_estimators",
]
