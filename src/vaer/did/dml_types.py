r"""ATT(g, t) by firm type with cross-fitted ML nuisances (``dml_did`` by type).

The estimand of a level ``l`` of a firm-type dimension is the one of
:mod:`vaer.did.types`, ``ATT_l(g, t) = E[Y_t(g) - Y_t(inf) | G = g, L = l]``, and the
estimator is its level mean of the orthogonal DR-DiD terms of :mod:`vaer.did.dml_did`:
per cell sample, the propensity :math:`p(X, L)` and the comparison units' outcome change
:math:`m(X, L)` are cross-fitted over folds of whole clusters by the same code as
:func:`vaer.did.dml_did.dml_att_gt` (:func:`~vaer.did.dml_did.crossfit_nuisances`), with
the indicators of every firm-type dimension's levels added to the features (the
nuisances must condition on the level: :mod:`vaer.did.drdid_levels` argues why; with
several dimensions, parallel trends are assumed given the covariates and all the types,
as a flexible learner given all of them would), and the level's ATT is

.. math::

    \widehat{ATT}_l = \frac{\sum_i S_i w^1_i (\Delta Y_i - \hat m_i)}{\sum_i S_i w^1_i}
                    - \frac{\sum_i S_i w^0_i (\Delta Y_i - \hat m_i)}{\sum_i S_i w^0_i},

``S_i = 1{L_i = l}`` (:func:`~vaer.did.dml_did.orthogonal_terms` with ``subset``): each
arm normalised within the level. One nuisance fit per cell sample serves every level of
every dimension; orthogonality makes the influence function the score itself, so the
inference, aggregations and tables are :mod:`vaer.did.types`' and
:mod:`vaer.did.type_tables`' unchanged.

Exact identity (a test): with one level there is no indicator to add, and every cell,
standard error and aggregation equals :func:`~vaer.did.dml_did.dml_att_gt`'s with the
same learners, folds and seed.

References: Chang, N.-C. (2020), "Double/debiased machine learning for difference-in-
differences models", The Econometrics Journal 23(2), 177-191. Sant'Anna, P. H. C. and
Zhao, J. (2020), Journal of Econometrics 219(1), 101-122.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vaer.compute import Backend
from vaer.did.aggregate import AGGREGATIONS
from vaer.did.att_gt import DEFAULT_OPTIONS, CellOptions, checked_panel
from vaer.did.dml_did import (
    METHOD,
    CellNuisances,
    CrossFitting,
    crossfit_nuisances,
    orthogonal_terms,
)
from vaer.did.drdid_levels import LevelFit
from vaer.did.panel import PanelColumns
from vaer.did.types import TypeATT, _type_labels, by_dimension

NUISANCE = "crossfit"
"""The ``nuisance`` of a :class:`~vaer.did.types.TypeATT` from :func:`dml_att_gt_by_type`."""


def level_terms(
    delta_y: np.ndarray,
    d: np.ndarray,
    nuisances: CellNuisances,
    level: np.ndarray,
    n_levels: int,
    *,
    trim_level: float = 0.995,
) -> LevelFit:
    """ATT and influence functions of every level of one sample on its fitted nuisances.

    Parameters
    ----------
    delta_y, d : numpy.ndarray
        As :func:`vaer.did.dml_did.orthogonal_two_period_att`.
    nuisances : CellNuisances
        Cross-fitted on the sample with features that include the level's indicators.
    level : numpy.ndarray
        ``(n,)`` level code of each unit in ``0..n_levels-1``.
    n_levels : int
        Number of levels.
    trim_level : float
        Comparison units with a propensity at or above it get zero weight.

    Returns
    -------
    LevelFit
        Levels with no treated or no comparison unit in the sample are NaN.

    Raises
    ------
    EstimationError
        If a level has no comparison weight left after trimming.
    """
    n, m = delta_y.shape
    n_treated = np.bincount(level[d], minlength=n_levels)
    n_control = np.bincount(level[~d], minlength=n_levels)
    att = np.full((n_levels, m), np.nan)
    influence = np.zeros((n_levels, n, m))
    trimmed = 0
    for code in np.flatnonzero((n_treated > 0) & (n_control > 0)):
        fit = orthogonal_terms(delta_y, d, nuisances, trim_level=trim_level, subset=level == code)
        att[code] = fit.att
        influence[code] = fit.influence
        trimmed += fit.n_trimmed
    return LevelFit(att, influence, n_treated, n_control, trimmed)


def level_indicators(labels: pd.DataFrame) -> np.ndarray:
    """``(n, k)`` indicators of every level but the first of each column of ``labels``."""
    columns = [
        (labels[c].to_numpy() == level).astype(np.float64)
        for c in labels.columns
        for level in sorted(set(labels[c]))[1:]
    ]
    return np.column_stack(columns) if columns else np.zeros((len(labels), 0))


def dml_att_gt_by_type(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    types: Sequence[str] | pd.DataFrame,
    crossfit: CrossFitting,
    covariates: Sequence[str] | pd.DataFrame | None = None,
    options: CellOptions = DEFAULT_OPTIONS,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    aggregations: Sequence[str] = AGGREGATIONS,
    backend: Backend | None = None,
) -> dict[str, TypeATT]:
    """``dml_did``'s ATT(g, t) and aggregations per level of each firm-type dimension.

    Parameters
    ----------
    data, columns, crossfit, covariates, options, backend
        As :func:`vaer.did.dml_did.dml_att_gt` (covariates: the nuisances' features, to
        which the level indicators of every dimension are added).
    types : list of str or pandas.DataFrame
        As :func:`vaer.did.types.att_gt_by_type`.
    min_e, max_e, aggregations
        As :func:`vaer.did.types.att_gt_by_type`.

    Returns
    -------
    dict
        Dimension -> :class:`~vaer.did.types.TypeATT` (``nuisance == "crossfit"``, cells'
        ``method == "dml"``).

    Raises
    ------
    ValueError
        On the inputs :func:`vaer.did.types.att_gt_by_type` refuses, or
        a cell sample the cross-fitting cannot split (the message names the cells).
    """
    panel = checked_panel(data, columns, covariates, options)
    labels = _type_labels(data, columns, panel, types)
    features = np.column_stack([panel.covariates[:, 1:], level_indicators(labels)])
    fitted: dict[bytes, CellNuisances] = {}  # one fit per cell sample, for every dimension

    def fit_levels(
        delta: np.ndarray, treated: np.ndarray, rows: np.ndarray, codes: np.ndarray, n_levels: int
    ) -> LevelFit:
        key = rows.tobytes() + treated.tobytes()
        if key not in fitted:
            fitted[key] = crossfit_nuisances(
                delta, treated, features[rows], panel.cluster[rows], crossfit, backend
            )
        return level_terms(
            delta, treated, fitted[key], codes, n_levels, trim_level=options.trim_level
        )

    return by_dimension(
        panel, labels, fit_levels, options, method=METHOD, hint="lower did.dml_folds",
        nuisance=NUISANCE, min_e=min_e, max_e=max_e, aggregations=aggregations,
    )  # fmt: skip
