"""Summing SHAP values of encoded columns back to the study's original columns.

A categorical firm type is one-hot encoded as ``column=level`` columns
(:func:`vaer.data.design.encode_features`); by the additivity of Shapley values the
sum over a group of encoded columns is the contribution of the original column, so every
firm-type dimension gets one value per unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def modifier_groups(
    encoded_columns: Sequence[str], feature_groups: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Original column -> its encoded columns, for the original columns behind ``encoded_columns``.

    Parameters
    ----------
    encoded_columns : sequence of str
        Columns of the explained matrix (e.g. ``AnalysisData.x.columns``).
    feature_groups : mapping
        ``AnalysisData.feature_groups`` (original column -> encoded columns).

    Returns
    -------
    dict
        In the order of ``encoded_columns``; an encoded column that no group names is its
        own group.

    Raises
    ------
    ValueError
        If an encoded column belongs to two groups.
    """
    owner: dict[str, str] = {}
    for original, names in feature_groups.items():
        for name in names:
            if name in owner:
                raise ValueError(
                    f"encoded column '{name}' belongs to both '{owner[name]}' and '{original}'"
                )
            owner[name] = original
    groups: dict[str, list[str]] = {}
    for column in encoded_columns:
        groups.setdefault(owner.get(column, column), []).append(column)
    return groups


def sum_groups(
    values: np.ndarray, encoded_columns: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Sum the columns of ``values`` (SHAP per encoded column) within each group.

    Parameters
    ----------
    values : ndarray of shape (n, p)
    encoded_columns : sequence of str, length p
    groups : mapping
        Original column -> encoded columns, from :func:`modifier_groups`.

    Returns
    -------
    DataFrame of shape (n, len(groups))
        One column per original column.

    Raises
    ------
    ValueError
        If ``values`` does not have one column per encoded column, or a group names an
        unknown column.
    """
    values = np.asarray(values, dtype=np.float64)
    columns = list(encoded_columns)
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise ValueError(
            f"`values` must have shape (n, {len(columns)}) to match `encoded_columns`; "
            f"got {values.shape}"
        )
    position = {name: j for j, name in enumerate(columns)}
    summed = {}
    for original, names in groups.items():
        unknown = [name for name in names if name not in position]
        if unknown:
            raise ValueError(f"group '{original}' names unknown encoded columns {unknown}")
        summed[original] = values[:, [position[name] for name in names]].sum(axis=1)
    return pd.DataFrame(summed)
