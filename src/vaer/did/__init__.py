"""Staggered difference-in-differences: Callaway–Sant'Anna ATT(g, t), aggregations, inference.

The numerical core only (no config, no pipeline): :func:`att_gt` estimates every
group-time ATT with doubly robust, IPW or outcome-regression two-period estimators and
keeps per-unit influence functions; :func:`aggregate` forms the simple, event-time,
group and calendar aggregations; :func:`pretrend_test` tests the pre-period event-time
ATTs jointly. Standard errors cluster the influence functions (e.g. by city); uniform
bands come from a cluster multiplier bootstrap. Every estimator takes the panel's roles as
a :class:`PanelColumns` and the cells' options as a :class:`CellOptions`, each checked
once when built.
"""

from vaer.did.aggregate import AGGREGATIONS, AggregateResult, aggregate
from vaer.did.att_gt import ATTGTResult, CellOptions, att_gt
from vaer.did.inference import BootstrapResult, cluster_se, cluster_vcov, multiplier_bootstrap
from vaer.did.panel import PanelColumns
from vaer.did.pretrend import PretrendTest, pretrend_test

__all__ = [
    "AGGREGATIONS",
    "ATTGTResult",
    "AggregateResult",
    "BootstrapResult",
    "CellOptions",
    "PanelColumns",
    "PretrendTest",
    "aggregate",
    "att_gt",
    "cluster_se",
    "cluster_vcov",
    "multiplier_bootstrap",
    "pretrend_test",
]
