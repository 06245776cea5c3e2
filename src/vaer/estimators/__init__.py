"""Estimation: econml estimators on shared cross-fitted nuisances, DR scores, inference."""

from vaer.estimators.fit import fit_estimators
from vaer.estimators.inference import GroupMeans, MeanEstimate, cluster_robust_mean, group_means
from vaer.estimators.results import AteEstimate, EstimationResult, EstimatorResult
from vaer.estimators.scores import aipw_scores, continuous_dr_scores, iv_dr_scores

__all__ = [
    "AteEstimate",
    "EstimationResult",
    "EstimatorResult",
    "GroupMeans",
    "MeanEstimate",
    "aipw_scores",
    "cluster_robust_mean",
    "continuous_dr_scores",
    "fit_estimators",
    "group_means",
    "iv_dr_scores",
]
