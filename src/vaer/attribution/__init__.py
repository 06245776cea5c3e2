"""Attribution of effect heterogeneity: SHAP of tau_hat(x), channels, mechanism tests.

``shap`` is imported lazily, only by the model-agnostic permutation path.
"""

from vaer.attribution.channels import (
    ChannelShares,
    channel_contributions,
    channel_shares,
    channel_shares_by_type,
)
from vaer.attribution.explain import ShapExplanation, explain_effect, resolve_method
from vaer.attribution.mechanisms import MechanismEstimate, mechanism_tests
from vaer.attribution.stage import AttributionResult, run_attribution
from vaer.attribution.truth_check import attribution_truth_metrics

__all__ = [
    "AttributionResult",
    "ChannelShares",
    "MechanismEstimate",
    "ShapExplanation",
    "attribution_truth_metrics",
    "channel_contributions",
    "channel_shares",
    "channel_shares_by_type",
    "explain_effect",
    "mechanism_tests",
    "resolve_method",
    "run_attribution",
]
