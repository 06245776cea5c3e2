"""From a validated analysis table to the arrays estimators take.

Text and boolean columns among the modifiers and controls are one-hot encoded with the
first level (in sorted order) dropped, so linear final stages stay identified; encoded
columns are named ``column=level`` and :attr:`AnalysisData.feature_groups` maps each
original column to its encoded columns, so every output can speak of the original names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

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
    modifier_encoder : FeatureEncoder or None
        How ``x`` was encoded from the raw modifier columns (the logged model applies it
        to new firms).
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
    modifier_encoder: FeatureEncoder | None = field(default=None, compare=False, repr=False)

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


@dataclass(frozen=True)
class FeatureEncoder:
    """The encoding of :func:`encode_features`, fitted once and reusable on new rows.

    Remembers, per categorical column, its sorted levels (the first is the dropped
    reference level), so firms that were not in the fitting table get exactly the same
    encoded columns in the same order. Used by the logged CATE model to encode the raw
    columns of new firms.

    Attributes
    ----------
    columns : tuple of str
        Original columns, in order.
    levels : dict
        Categorical column -> all its levels as strings, sorted; numeric columns are absent.
    """

    columns: tuple[str, ...]
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: Sequence[str]) -> FeatureEncoder:
        """Learn which of ``columns`` are categorical and their levels.

        Raises
        ------
        ValueError
            If a column is not in ``frame``.
        """
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the table; have {list(frame.columns)}")
        levels = {
            column: tuple(sorted(frame[column].astype(str).unique()))
            for column in columns
            if _is_categorical(frame[column])
        }
        return cls(columns=tuple(columns), levels=levels)

    @property
    def groups(self) -> dict[str, list[str]]:
        """Original column -> its encoded column names."""
        return {
            column: [f"{column}={level}" for level in self.levels[column][1:]]
            if column in self.levels
            else [column]
            for column in self.columns
        }

    @property
    def feature_names(self) -> list[str]:
        """All encoded column names, in order."""
        return [name for names in self.groups.values() for name in names]

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode ``frame`` as float64 columns :attr:`feature_names`, with a fresh 0..n-1 index.

        Raises
        ------
        ValueError
            If a column is missing, a categorical column holds a level not seen by
            :meth:`fit`, or a numeric column cannot be read as numbers.
        """
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"columns {missing} are missing; the encoder needs {list(self.columns)}"
            )
        blocks: dict[str, np.ndarray] = {}
        for column in self.columns:
            series = frame[column]
            if column in self.levels:
                known = self.levels[column]
                values = series.astype(str).to_numpy()
                unseen = sorted(set(values) - set(known))
                if unseen:
                    raise ValueError(
                        f"column '{column}' has levels {unseen} not seen when fitting; "
                        f"known levels: {list(known)}"
                    )
                for level in known[1:]:
                    blocks[f"{column}={level}"] = (values == level).astype(np.float64)
            else:
                try:
                    blocks[column] = series.to_numpy(dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise ValueError(
                        f"column '{column}' must be numeric, as when fitting; got {series.dtype}"
                    ) from exc
        return pd.DataFrame(blocks, index=pd.RangeIndex(len(frame)), columns=self.feature_names)


def encode_features(
    frame: pd.DataFrame, columns: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Encode ``columns`` of ``frame`` as float64, one-hot for categorical ones.

    Equivalent to ``FeatureEncoder.fit(frame, columns)`` followed by ``transform(frame)``.

    Returns
    -------
    encoded : DataFrame
        One column per numeric column, ``column=level`` per non-reference level otherwise.
    groups : dict
        Original column -> its encoded column names.
    """
    encoder = FeatureEncoder.fit(frame, columns)
    return encoder.transform(frame), encoder.groups


def build_analysis_data(frame: pd.DataFrame, roles: Roles) -> AnalysisData:
    """Turn a validated table into :class:`AnalysisData`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per unit, already checked by :func:`vaer.data.validation.validate_table`.
    roles : Roles
        The study's column roles.
    """
    modifier_encoder = FeatureEncoder.fit(frame, roles.modifiers)
    x = modifier_encoder.transform(frame)
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
        feature_groups={**modifier_encoder.groups, **w_groups},
        instrument=instrument,
        modifier_encoder=modifier_encoder,
    )


def sample_clusters(
    clusters: np.ndarray, max_units: int | None, random_state: int
) -> np.ndarray | None:
    """A mask of whole clusters drawn at random until at least ``max_units`` units, or
    None when there are no more than ``max_units`` units (or no cap is set).

    Stages that compare fits on the same units (refuters against a reference refit, the
    mechanism tests) use it to bound their cost on very large samples; their standard
    errors grow by about ``sqrt(n / max_units)``.

    Parameters
    ----------
    clusters : ndarray of shape (n,)
    max_units : int or None
    random_state : int

    Returns
    -------
    ndarray of bool of shape (n,), or None
    """
    if max_units is None or len(clusters) <= max_units:
        return None
    order = np.random.default_rng(random_state).permutation(np.unique(clusters))
    sizes = pd.Series(clusters).value_counts().reindex(order).to_numpy()
    needed = int(np.searchsorted(np.cumsum(sizes), max_units)) + 1
    return np.isin(clusters, order[:needed])


def subset(data: AnalysisData, keep: np.ndarray) -> AnalysisData:
    """The units where the boolean mask ``keep`` is true (clusters re-coded 0..G-1)."""
    keep = np.asarray(keep, dtype=bool)
    clusters = pd.factorize(data.clusters[keep], sort=True)[0].astype(np.int64)
    return replace(
        data,
        units=data.units[keep],
        y=data.y[keep],
        t=data.t[keep],
        x=data.x.loc[keep].reset_index(drop=True),
        w=data.w.loc[keep].reset_index(drop=True),
        clusters=clusters,
        firm_types=data.firm_types.loc[keep].reset_index(drop=True),
        instrument=None if data.instrument is None else data.instrument[keep],
    )
