r"""Mechanism tests of a staggered design: the DiD effect of adoption on each mediator.

A channel works through a mediator (e.g. platform use) only if adoption moves it. For each
mediator column ``M`` of the panel, the Callaway–Sant'Anna estimate of
:math:`\mathrm{ATT}^M(g, t) = E[M_t(g) - M_t(\infty) \mid G = g]` is formed exactly as
for the outcome (:func:`vaer.did.att_gt.att_gt` with ``M`` as the outcome: same cohorts,
comparison group, base periods, covariates and city-clustered inference), and aggregated
(:func:`vaer.did.aggregate.aggregate`; ``group`` by default, the aggregation whose
overall ATT is the mean of the CATT pseudo-outcomes of :mod:`vaer.did.pseudo`). The
two-sided p-value tests ``ATT^M = 0`` with the aggregate's t reference (small-cluster
Satterthwaite degrees of freedom, or the normal in the asymptotic mode).

Reference: Callaway, B. and Sant'Anna, P. H. C. (2021), Journal of Econometrics 225(2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from vaer.did.aggregate import AGGREGATIONS, aggregate
from vaer.did.att_gt import DEFAULT_OPTIONS, CellOptions, att_gt
from vaer.did.inference import interval_critical
from vaer.did.panel import PanelColumns

MECHANISM_COLUMNS = [
    "mediator", "aggregation", "att", "se", "df", "ci_low", "ci_high", "p_value", "n_units",
    "n_clusters",
]  # fmt: skip
"""Columns of ``tables/did_mechanisms.csv``."""


def did_mechanisms(
    data: pd.DataFrame,
    mediators: Sequence[str],
    columns: PanelColumns,
    *,
    covariates: Sequence[str] | pd.DataFrame | None = None,
    aggregation: str = "group",
    options: CellOptions = DEFAULT_OPTIONS,
) -> pd.DataFrame:
    """The DiD effect of adoption on each mediator.

    Parameters
    ----------
    data : pandas.DataFrame
        The long panel.
    mediators : sequence of str
        Mediator columns (yearly values).
    columns : PanelColumns
        The panel's roles (:class:`vaer.did.panel.PanelColumns`); each mediator in turn
        takes the place of its outcome.
    covariates, options
        As :func:`vaer.did.att_gt.att_gt` (doubly robust cells).
    aggregation : {"simple", "dynamic", "group", "calendar"}
        Which aggregation's overall ATT is reported.

    Returns
    -------
    pandas.DataFrame
        One row per mediator, :data:`MECHANISM_COLUMNS`.

    Raises
    ------
    ValueError
        If ``mediators`` is empty, a mediator is not a column, the aggregation is
        unknown, or as :func:`~vaer.did.att_gt.att_gt` (e.g. a mediator with missing
        values: drop those firm-years).
    """
    if not mediators:
        raise ValueError("`mediators` is empty: name the mediator columns of the panel")
    absent = [m for m in mediators if m not in data.columns]
    if absent:
        raise ValueError(f"mediator columns {absent} are not in the panel")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"`aggregation` must be one of {AGGREGATIONS}; got {aggregation!r}")
    rows = []
    for mediator in mediators:
        try:
            result = att_gt(
                data, replace(columns, outcome=mediator), covariates=covariates, method="dr",
                options=options,
            )  # fmt: skip
        except ValueError as error:
            raise ValueError(f"mechanism test of mediator '{mediator}': {error}") from None
        overall = aggregate(result, aggregation)
        est, se, df = overall.overall_estimate, overall.overall_se, overall.overall_df
        half = float(interval_critical(options.alpha, np.array([df]))[0]) * se
        rows.append(
            {
                "mediator": mediator,
                "aggregation": aggregation,
                "att": est,
                "se": se,
                "df": df,
                "ci_low": est - half,
                "ci_high": est + half,
                "p_value": float(2.0 * stats.t.sf(abs(est / se), df)) if se > 0 else np.nan,
                "n_units": result.n_units,
                "n_clusters": result.n_clusters,
            }
        )
    return pd.DataFrame(rows, columns=MECHANISM_COLUMNS)
