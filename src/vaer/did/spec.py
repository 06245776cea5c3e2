"""What every staggered-DiD estimator of :mod:`vaer.did` is told: the panel's columns and
the options of its (g, t) cells, each checked once.

:class:`PanelColumns` names the five roles of a long unit-period panel;
:class:`CellOptions` holds the options that the Callaway–Sant'Anna cells share whatever
estimates them (comparison group, anticipation, base period, interval level, inference
mode, propensity trimming). The estimators (:func:`vaer.did.att_gt.att_gt`,
:func:`vaer.did.dml_did.dml_att_gt`, the by-type, mechanism and regression estimators)
take these objects and hand them down to their helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vaer.did.inference import check_inference

ColumnSpec = str | Sequence[Any] | np.ndarray | pd.Series
"""A column name of the panel's DataFrame, or one value per row."""


@dataclass(frozen=True, eq=False)
class PanelColumns:
    """The roles of a long unit-period panel: column names of its DataFrame, or arrays of
    one value per row.

    Attributes
    ----------
    unit : str or array-like
        Unit id (e.g. the firm).
    period : str or array-like
        Integer period (e.g. the year).
    cohort : str or array-like
        First treated period; 0, NaN or +inf = never treated; constant within a unit.
    cluster : str or array-like
        Cluster id for inference (e.g. the city); constant within a unit.
    outcome : str or array-like
        The outcome (finite).

    Notes
    -----
    Each role is checked against the data by :func:`vaer.did.panel.build_panel` (a name
    must be a column, an array must have one value per row).
    """

    unit: ColumnSpec
    period: ColumnSpec
    cohort: ColumnSpec
    cluster: ColumnSpec
    outcome: ColumnSpec


CONTROL_GROUPS = ("never", "notyet")
"""Comparison groups of :class:`CellOptions`."""
BASE_PERIODS = ("varying", "universal")
"""Base-period rules of :class:`CellOptions`."""


@dataclass(frozen=True)
class CellOptions:
    """Options shared by every estimator of the ATT(g, t) cells.

    Attributes
    ----------
    control_group : {"never", "notyet"}
        Comparison units: never treated, or never treated plus not yet treated by
        ``max(t, base) + anticipation``.
    anticipation : int
        Number of periods before ``g`` in which units may already react (>= 0).
    base_period : {"varying", "universal"}
        Base period of pre-treatment cells (:mod:`vaer.did.att_gt`).
    alpha : float
        Intervals have coverage ``1 - alpha``; in (0, 1).
    inference : {"small_cluster", "asymptotic"}
        ``"small_cluster"``: leverage-adjusted (CR2) cluster variances, Satterthwaite t
        intervals, Bonferroni-t bands; ``"asymptotic"``: as R ``did`` (CR1, normal,
        bootstrap sup-t bands). See :mod:`vaer.did.inference`.
    trim_level : float
        Comparison units with a propensity at or above it get zero weight; in (0.5, 1].

    Raises
    ------
    ValueError
        On construction, naming the first invalid setting and its allowed values.
    """

    control_group: str = "never"
    anticipation: int = 0
    base_period: str = "varying"
    alpha: float = 0.05
    inference: str = "small_cluster"
    trim_level: float = 0.995

    def __post_init__(self) -> None:
        if self.control_group not in CONTROL_GROUPS:
            raise ValueError(
                f"`control_group` must be one of {CONTROL_GROUPS}; got {self.control_group!r}"
            )
        if self.base_period not in BASE_PERIODS:
            raise ValueError(
                f"`base_period` must be one of {BASE_PERIODS}; got {self.base_period!r}"
            )
        anticipation = self.anticipation
        if (
            isinstance(anticipation, bool)
            or not isinstance(anticipation, int | np.integer)
            or anticipation < 0
        ):
            raise ValueError(f"`anticipation` must be an int >= 0; got {anticipation!r}")
        if not 0.5 < self.trim_level <= 1.0:
            raise ValueError(f"`trim_level` must be in (0.5, 1]; got {self.trim_level!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1); got {self.alpha!r}")
        check_inference(self.inference)


DEFAULT_OPTIONS = CellOptions()
"""The default :class:`CellOptions` (never-treated comparisons, no anticipation, varying
base period, 95% small-cluster intervals, trimming at 0.995)."""
