"""From a validated analysis table to the arrays estimators take.

Text and boolean columns among the modifiers and controls are one-hot encoded with the
first level (in sorted order) dropped, so linear final stages stay identified; encoded
columns are named ``column=level`` and :attr:`AnalysisData.feature_groups` maps each
original column to its encoded columns, so every output can speak of the original names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.config.models import Roles


@dataclass(frozen=True)
class AnalysisData:
    """Arrays of one study, aligned row by row.

    Attributes
    ----------
    units : ndarray of shape (n,)
        Unit ids.
    y : ndarray of shape (n,)
        Outcome.
    t : ndarray of shape (n,)
        Treatment (continuous VA exposure).
    x : DataFrame of shape (n, p)
        Encoded modifiers (float64): the features the effect may vary with.
    w : DataFrame of shape (n, q)
        Encoded controls that are not modifiers (float64); may have zero columns.
    clusters : ndarray of shape (n,)
        Integer cluster codes (each unit its own cluster when ``roles.cluster`` is unset).
    firm_types : DataFrame
        The raw firm-type columns, for group effects.
    feature_groups : dict
        Original column -> encoded column names, over modifiers and controls.
    instrument : ndarray of shape (n,) or None
    """

    units: np.ndarray
    y: np.ndarray
    t: np.ndarray
    x: pd.DataFrame
    w: pd.DataFrame
    clusters: np.ndarray
    firm_types: pd.DataFrame
    feature_groups: dict[str, list[str]] = field(default_factory=dict)
    instrument: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.y)

    @property
    def n_clusters(self) -> int:
        """Number of distinct clusters."""
        return len(np.unique(self.clusters))

    @property
    def xw(self) -> pd.DataFrame:
        """Modifiers and controls side by side, the nuisance models' features."""
        return pd.concat([self.x, self.w], axis=1)


def _is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def encode_features(
    frame: pd.DataFrame, columns: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Encode ``columns`` of ``frame`` as float64, one-hot for categorical ones.

    Returns
    -------
    encoded : DataFrame
        One column per numeric column, ``column=level`` per non-reference level otherwise.
    groups : dict
        Original column -> its encoded column names.
    """
    parts: list[pd.DataFrame] = []
    groups: dict[str, list[str]] = {}
    for column in columns:
        series = frame[column]
        if _is_categorical(series):
            levels = sorted(series.astype(str).unique())
            values = series.astype(str).to_numpy()
            names = [f"{column}={level}" for level in levels[1:]]
            block = pd.DataFrame(
                {
                    name: (values == level).astype(np.float64)
                    for name, level in zip(names, levels[1:], strict=True)
                },
                index=frame.index,
            )
        else:
            names = [column]
            block = pd.DataFrame({column: series.to_numpy(dtype=np.float64)}, index=frame.index)
        parts.append(block)
        groups[column] = names
    encoded = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
    return encoded.reset_index(drop=True), groups


def build_analysis_data(frame: pd.DataFrame, roles: Roles) -> AnalysisData:
    """Turn a validated table into :class:`AnalysisData`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per unit, already checked by :func:`vaer.data.validation.validate_table`.
    roles : Roles
        The study's column roles.
    """
    x, x_groups = encode_features(frame, roles.modifiers)
    controls = [c for c in roles.controls if c not in roles.modifiers]
    w, w_groups = encode_features(frame, controls)
    if roles.cluster:
        clusters = pd.factorize(frame[roles.cluster], sort=True)[0]
    else:
        clusters = np.arange(len(frame))
    instrument = frame[roles.instrument].to_numpy(dtype=np.float64) if roles.instrument else None
    return AnalysisData(
        units=frame[roles.unit].to_numpy(),
        y=frame[roles.outcome].to_numpy(dtype=np.float64),
        t=frame[roles.treatment].to_numpy(dtype=np.float64),
        x=x,
        w=w,
        clusters=np.asarray(clusters, dtype=np.int64),
        firm_types=frame[list(roles.firm_types)].astype(str).reset_index(drop=True),
        feature_groups={**x_groups, **w_groups},
        instrument=instrument,
    )
