"""What the did stage tells every estimator, read once from the run's ``did:`` section.

The did stage (:mod:`vaer.did.stage`, with :mod:`vaer.did.type_stage` and
:mod:`vaer.did.catt_stage`) estimates on one sample of firm-years whose columns are
:data:`SAMPLE_COLUMNS` (:func:`vaer.did.stage.did_sample` builds it); its cells' options,
``dml_did``'s cross-fitting and the aggregations' event window come from the config here.
"""

from __future__ import annotations

from vaer.config.did import DidConfig
from vaer.context import RunContext
from vaer.did.att_gt import CellOptions
from vaer.did.dml_did import CrossFitting
from vaer.did.panel import PanelColumns
from vaer.estimators.learners import make_classifier, make_regressor

SAMPLE_COLUMNS = PanelColumns(
    unit="unit", period="year", cohort="cohort", cluster="cluster", outcome="y"
)
"""The roles of the did sample's columns."""


def cell_options(config: DidConfig) -> CellOptions:
    """The cells' options of ``did:`` (comparison group, anticipation, base period,
    ``alpha``, inference mode; the default propensity trimming).

    Parameters
    ----------
    config : DidConfig
        The run's ``did:`` section.

    Returns
    -------
    CellOptions
    """
    return CellOptions(
        config.control_group, config.anticipation, config.base_period, config.alpha,
        config.inference,
    )  # fmt: skip


def crossfitting(ctx: RunContext, config: DidConfig) -> CrossFitting:
    """``dml_did``'s nuisances: the run's learners (``nuisance:``), ``did.dml_folds`` folds
    of cities, the run's seed.

    Parameters
    ----------
    ctx : RunContext
        The run (its nuisance config and seed).
    config : DidConfig
        The run's ``did:`` section.

    Returns
    -------
    CrossFitting
    """
    nuisance = ctx.config.nuisance
    return CrossFitting(
        propensity_model=make_classifier(nuisance, ctx.seed),
        outcome_model=make_regressor(nuisance, ctx.seed),
        n_folds=config.dml_folds,
        random_state=ctx.seed,
    )


def event_window(config: DidConfig) -> tuple[float, float]:
    """``(min_e, max_e)`` of the aggregations (unbounded where unset)."""
    return (
        -float("inf") if config.min_e is None else float(config.min_e),
        float("inf") if config.max_e is None else float(config.max_e),
    )
