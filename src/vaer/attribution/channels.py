r"""From per-feature SHAP values to mechanism channels: contributions, shares, intervals.

The contribution of channel :math:`c` to unit :math:`i`'s effect is the sum of its
proxies' SHAP values, :math:`\phi_{ic} = \sum_{j \in c} \phi_{ij}` (Shapley values are
additive). A channel's *share* is its part of the variance of the channels'
contributions across firms,

.. math:: s_c = \frac{\operatorname{Var}\phi_c(X)}{\sum_{c'} \operatorname{Var}\phi_{c'}(X)},

estimated without the upward bias of squared noise from two independent cluster-honest
explanations of each firm and the firms' doubly robust scores, with Fieller intervals
from cluster-robust variances that include the effect model's estimation error
(:mod:`vaer.attribution.importance`, where the estimand and the estimator are argued).
:meth:`vaer.data.truth.Truth.channel_shares` defines the true shares the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.attribution.explain import HonestPair, ShapExplanation
from vaer.attribution.importance import IMPORTANCE_COLUMNS, importance_scores, importance_table

SHARE_COLUMNS = ["channel", *IMPORTANCE_COLUMNS, "mean_abs_shap"]
"""Columns of a channel-share table (``tables/shap_channels.csv`` adds ``estimator``):

``share``
    estimated share of the channel in the variance of the channels' SHAP contributions
    across firms (can be slightly negative for a channel without effect);
``ci_low``, ``ci_high``
    Fieller interval of the share at ``ci_level``, clipped to [0, 1];
``share_se``
    delta-method standard error of the share;
``importance``, ``importance_se``
    the debiased variance of the channel's contribution (the share's numerator) and its
    cluster-robust standard error;
``p_value``
    one-sided test that the channel carries no heterogeneity (importance 0);
``mean_abs_shap``
    mean absolute per-firm contribution (descriptive; biased up by estimation noise).
"""


def channel_contributions(
    shap: pd.DataFrame, mechanisms: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Per-unit channel contributions: the sum of each channel's proxies' SHAP values.

    Parameters
    ----------
    shap : DataFrame of shape (n, k)
        SHAP values by original column.
    mechanisms : mapping
        Channel -> proxy columns (``roles.mechanisms``).

    Returns
    -------
    DataFrame of shape (n, n_channels)

    Raises
    ------
    ValueError
        If ``mechanisms`` is empty, or a proxy is not among the explained columns.
    """
    if not mechanisms:
        raise ValueError("`roles.mechanisms` is empty: name channel -> proxy columns")
    columns = {}
    for channel, proxies in mechanisms.items():
        missing = [p for p in proxies if p not in shap.columns]
        if missing or not proxies:
            raise ValueError(
                f"roles.mechanisms.{channel}: proxies {missing or '[]'} have no SHAP values; "
                "a proxy must be one of `roles.modifiers` "
                f"({', '.join(map(str, shap.columns))})"
            )
        columns[channel] = shap[list(proxies)].sum(axis=1).to_numpy(dtype=np.float64)
    return pd.DataFrame(columns, index=shap.index)


@dataclass(frozen=True)
class ChannelShares:
    """Channel shares with intervals.

    Attributes
    ----------
    table : DataFrame
        :data:`SHARE_COLUMNS` (plus ``dimension, level, n, n_clusters`` first for shares
        by firm type), one row per channel (and group).
    ci_level : float
    """

    table: pd.DataFrame
    ci_level: float


def _pair_of(explanation: ShapExplanation) -> HonestPair:
    if explanation.pair is None:
        raise ValueError(
            "channel shares need a cross-fold explanation (two cluster-honest explanations "
            "of every firm, from `explain_across_folds`); this one explains a single model"
        )
    return explanation.pair


def contribution_scores(
    explanation: ShapExplanation,
    groups: Mapping[str, Sequence[str]] | None,
    pseudo_outcome: np.ndarray,
) -> pd.DataFrame:
    r"""Per-unit scores :math:`\psi_{ic}` (:func:`importance_scores`) of each channel, or
    of each explained column when ``groups`` is None.

    Parameters
    ----------
    explanation : ShapExplanation
        A cross-fold explanation (``pair`` set).
    groups : mapping or None
        Channel -> proxy columns.
    pseudo_outcome : ndarray of shape (n,)
        The estimator's doubly robust scores at the explained units.

    Raises
    ------
    ValueError
        If the explanation has no pair, or as :func:`channel_contributions` and
        :func:`importance_scores`.
    """
    pair = _pair_of(explanation)
    first, second = pair.first, pair.second
    if groups is not None:
        first = channel_contributions(first, groups)
        second = channel_contributions(second, groups)
    return importance_scores(
        first,
        second,
        pair.first_prediction,
        pair.second_prediction,
        pseudo_outcome,
        pair.folds,
    )


def _check(ci_level: float, clusters: np.ndarray, pseudo_outcome: np.ndarray, n: int) -> None:
    if not 0.5 < ci_level < 1.0:
        raise ValueError(f"`ci_level` must be in (0.5, 1); got {ci_level}")
    if len(clusters) != n:
        raise ValueError(f"`clusters` must have one entry per unit ({n}); got {len(clusters)}")
    if np.shape(pseudo_outcome) != (n,):
        raise ValueError(
            f"`pseudo_outcome` must have one entry per unit ({n}); got {np.shape(pseudo_outcome)}"
        )


def _table(
    psi: pd.DataFrame, contributions: pd.DataFrame, clusters: np.ndarray, ci_level: float
) -> pd.DataFrame:
    table = importance_table(psi, clusters, ci_level)
    table["mean_abs_shap"] = contributions.abs().mean().to_numpy()
    return table.rename_axis("channel").reset_index()[SHARE_COLUMNS]


def channel_shares(
    explanation: ShapExplanation,
    mechanisms: Mapping[str, Sequence[str]],
    pseudo_outcome: np.ndarray,
    clusters: np.ndarray,
    *,
    ci_level: float = 0.95,
) -> ChannelShares:
    """Each channel's share of the variance of the channels' contributions, with Fieller
    intervals that include the effect model's estimation error.

    Parameters
    ----------
    explanation : ShapExplanation
        Cross-fold explanation of the estimator (``pair`` set).
    mechanisms : mapping
        Channel -> proxy columns.
    pseudo_outcome : ndarray of shape (n,)
        The estimator's doubly robust scores at the explained units.
    clusters : ndarray of shape (n,)
        Cluster of each explained unit.
    ci_level : float
        In (0.5, 1).

    Returns
    -------
    ChannelShares

    Raises
    ------
    ValueError
        If the explanation is not cross-fold, ``ci_level`` is outside (0.5, 1), or an
        array has the wrong length.
    """
    n = len(explanation.values)
    _check(ci_level, clusters, pseudo_outcome, n)
    psi = contribution_scores(explanation, mechanisms, pseudo_outcome)
    contributions = channel_contributions(explanation.values, mechanisms)
    table = _table(psi, contributions, np.asarray(clusters), ci_level)
    return ChannelShares(table=table, ci_level=ci_level)


def channel_shares_by_type(
    explanation: ShapExplanation,
    mechanisms: Mapping[str, Sequence[str]],
    firm_types: pd.DataFrame,
    pseudo_outcome: np.ndarray,
    clusters: np.ndarray,
    *,
    ci_level: float = 0.95,
) -> ChannelShares:
    """Channel shares within each level of each firm-type column.

    Within a group the share is the channel's part of the mean squared contribution
    (contributions centred over all explained firms), estimated from the same per-firm
    scores as :func:`channel_shares` restricted to the group's firms; the one-step
    correction is exact for groups whose type is independent of the channel's proxies
    and approximate otherwise. Groups with fewer than 2 clusters get NaN.

    Parameters
    ----------
    explanation, mechanisms, pseudo_outcome, clusters, ci_level
        As in :func:`channel_shares`.
    firm_types : DataFrame of shape (n, d)
        Firm-type labels of the explained units, one column per dimension.

    Returns
    -------
    ChannelShares
        ``table`` has columns ``dimension, level, n, n_clusters`` before
        :data:`SHARE_COLUMNS`.

    Raises
    ------
    ValueError
        As :func:`channel_shares`, or if ``firm_types`` has the wrong number of rows.
    """
    n = len(explanation.values)
    _check(ci_level, clusters, pseudo_outcome, n)
    if len(firm_types) != n:
        raise ValueError(f"`firm_types` must have one row per unit ({n}); got {len(firm_types)}")
    clusters = np.asarray(clusters)
    psi = contribution_scores(explanation, mechanisms, pseudo_outcome)
    contributions = channel_contributions(explanation.values, mechanisms)
    parts = []
    for dimension in firm_types.columns:
        labels = firm_types[dimension].astype(str).to_numpy()
        for level in sorted(set(labels)):
            mask = labels == level
            n_clusters = len(pd.unique(clusters[mask]))
            if n_clusters >= 2:
                rows = _table(psi[mask], contributions[mask], clusters[mask], ci_level)
            else:
                rows = pd.DataFrame({"channel": list(psi.columns)}).reindex(columns=SHARE_COLUMNS)
            rows.insert(0, "n_clusters", n_clusters)
            rows.insert(0, "n", int(mask.sum()))
            rows.insert(0, "level", level)
            rows.insert(0, "dimension", str(dimension))
            parts.append(rows)
    columns = ["dimension", "level", "n", "n_clusters", *SHARE_COLUMNS]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return ChannelShares(table=table[columns], ci_level=ci_level)


def feature_importance(
    explanation: ShapExplanation,
    pseudo_outcome: np.ndarray,
    clusters: np.ndarray,
    *,
    ci_level: float = 0.95,
) -> pd.DataFrame:
    """Importance and share of every explained modifier (as :func:`channel_shares`, one
    modifier per group; shares over all modifiers).

    Returns
    -------
    DataFrame
        Indexed by modifier, :data:`vaer.attribution.importance.IMPORTANCE_COLUMNS`.
    """
    n = len(explanation.values)
    _check(ci_level, clusters, pseudo_outcome, n)
    psi = contribution_scores(explanation, None, pseudo_outcome)
    return importance_table(psi, np.asarray(clusters), ci_level)
