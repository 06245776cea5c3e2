"""Attribution of effect heterogeneity: cluster-honest SHAP of tau_hat(x), channel shares
with intervals that include estimation error, mechanism tests.

``shap`` is imported lazily, only by the model-agnostic permutation path.
"""

from vaer.attribution.channels import (
    ChannelShares,
    channel_contributions,
    channel_shares,
    channel_shares_by_type,
    feature_importance,
)
from vaer.attribution.explain import ShapExplanation, explain_effect, resolve_method
from vaer.attribution.honest import explain_across_folds
from vaer.attribution.importance import importance_scores, importance_table
from vaer.attribution.mechanisms import MechanismEstimate, mechanism_tests
from vaer.attribution.refits import FinalStage, cluster_folds, final_stages, fit_fold_models
from vaer.attribution.stage import AttributionResult, run_attribution, run_mechanism_tests
from vaer.attribution.truth_check import attribution_truth_metrics

__all__ = [
    "AttributionResult",
    "ChannelShares",
    "FinalStage",
    "MechanismEstimate",
    "ShapExplanation",
    "attribution_truth_metrics",
    "channel_contributions",
    "channel_shares",
    "channel_shares_by_type",
    "cluster_folds",
    "explain_across_folds",
    "explain_effect",
    "feature_importance",
    "final_stages",
    "fit_fold_models",
    "importance_scores",
    "importance_table",
    "mechanism_tests",
    "resolve_method",
    "run_attribution",
    "run_mechanism_tests",
]
