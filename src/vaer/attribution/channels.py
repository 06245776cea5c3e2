r"""From per-feature SHAP values to mechanism channels, with cluster-bootstrap intervals.

The contribution of channel :math:`c` to unit :math:`i`'s effect is the sum of its
proxies' SHAP values, :math:`\phi_{ic} = \sum_{j \in c} \phi_{ij}` (Shapley values are
additive). Channel :math:`c`'s share is its mean absolute contribution over the sum of
all channels' mean absolute contributions,

.. math:: s_c = \frac{\frac1n\sum_i |\phi_{ic}|}{\sum_{c'} \frac1n\sum_i |\phi_{ic'}|},

the same definition as :meth:`vaer.data.truth.Truth.channel_shares`. Intervals come from
a cluster bootstrap over the explained units (clusters resampled with replacement,
percentile intervals; Cameron, Gelbach and Miller, 2008, *Rev. Econ. Stat.* 90(3)): they
describe the sampling variability of the shares over firms for the fitted effect
function, not the estimation error of the function itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SHARE_COLUMNS = ["channel", "share", "ci_low", "ci_high", "mean_abs_shap"]


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


def _bootstrap_weights(clusters: np.ndarray, n_bootstrap: int, random_state: int) -> np.ndarray:
    """Unit weights (n_bootstrap, n): how often each unit's cluster was drawn."""
    codes, uniques = pd.factorize(np.asarray(clusters))
    g = len(uniques)
    rng = np.random.default_rng(random_state)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_bootstrap).astype(np.float64)
    return counts[:, codes]


def _shares(abs_contrib: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Shares from absolute contributions (n, K); weights (B, n) give (B, K)."""
    if weights is None:
        mean_abs = abs_contrib.mean(axis=0)
        total = mean_abs.sum()
        return mean_abs / total if total > 0 else np.full_like(mean_abs, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = weights @ abs_contrib
        return weighted / weighted.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ChannelShares:
    """Channel shares of mean |SHAP| with bootstrap intervals.

    Attributes
    ----------
    table : DataFrame
        Columns ``channel, share, ci_low, ci_high, mean_abs_shap`` (plus ``dimension,
        level, n`` for shares by firm type), one row per channel (and group).
    n_bootstrap : int
    ci_level : float
    """

    table: pd.DataFrame
    n_bootstrap: int
    ci_level: float


def _check_bootstrap(n_bootstrap: int, ci_level: float, clusters: np.ndarray, n: int) -> None:
    if not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise ValueError(f"`n_bootstrap` must be an int >= 0; got {n_bootstrap!r}")
    if not 0.5 < ci_level < 1.0:
        raise ValueError(f"`ci_level` must be in (0.5, 1); got {ci_level}")
    if len(clusters) != n:
        raise ValueError(f"`clusters` must have one entry per unit ({n}); got {len(clusters)}")


def _rows(
    contrib: pd.DataFrame,
    abs_contrib: np.ndarray,
    weights: np.ndarray | None,
    ci_level: float,
) -> pd.DataFrame:
    point = _shares(abs_contrib, None)
    if weights is not None and len(weights):
        draws = _shares(abs_contrib, weights)
        alpha = (1 - ci_level) / 2
        low = np.nanquantile(draws, alpha, axis=0)
        high = np.nanquantile(draws, 1 - alpha, axis=0)
    else:
        low = high = np.full(len(point), np.nan)
    return pd.DataFrame(
        {
            "channel": list(contrib.columns),
            "share": point,
            "ci_low": low,
            "ci_high": high,
            "mean_abs_shap": abs_contrib.mean(axis=0),
        }
    )


def channel_shares(
    contributions: pd.DataFrame,
    clusters: np.ndarray,
    *,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    random_state: int = 0,
) -> ChannelShares:
    """Each channel's share of mean |contribution|, with cluster-bootstrap intervals.

    Parameters
    ----------
    contributions : DataFrame of shape (n, K)
        From :func:`channel_contributions`.
    clusters : ndarray of shape (n,)
        Cluster of each explained unit (the bootstrap resamples clusters).
    n_bootstrap : int
        Bootstrap replicates; 0 gives no intervals (NaN).
    ci_level : float
        Level of the percentile intervals, in (0.5, 1).
    random_state : int

    Returns
    -------
    ChannelShares

    Raises
    ------
    ValueError
        If ``n_bootstrap`` < 0, ``ci_level`` is outside (0.5, 1), or ``clusters`` has the
        wrong length.
    """
    _check_bootstrap(n_bootstrap, ci_level, clusters, len(contributions))
    abs_contrib = np.abs(contributions.to_numpy(dtype=np.float64))
    weights = _bootstrap_weights(clusters, n_bootstrap, random_state) if n_bootstrap else None
    table = _rows(contributions, abs_contrib, weights, ci_level)[SHARE_COLUMNS]
    return ChannelShares(table=table, n_bootstrap=n_bootstrap, ci_level=ci_level)


def channel_shares_by_type(
    contributions: pd.DataFrame,
    firm_types: pd.DataFrame,
    clusters: np.ndarray,
    *,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    random_state: int = 0,
) -> ChannelShares:
    """Channel shares within each level of each firm-type column.

    Every group uses the same cluster-bootstrap draws (so intervals of different groups
    are comparable); a replicate that draws no unit of a group is skipped for it.

    Parameters
    ----------
    contributions : DataFrame of shape (n, K)
    firm_types : DataFrame of shape (n, d)
        Firm-type labels of the explained units, one column per dimension.
    clusters : ndarray of shape (n,)
    n_bootstrap, ci_level, random_state
        As in :func:`channel_shares`.

    Returns
    -------
    ChannelShares
        ``table`` has columns ``dimension, level, n`` before the share columns.

    Raises
    ------
    ValueError
        As :func:`channel_shares`, or if ``firm_types`` has the wrong number of rows.
    """
    _check_bootstrap(n_bootstrap, ci_level, clusters, len(contributions))
    if len(firm_types) != len(contributions):
        raise ValueError(
            f"`firm_types` must have one row per unit ({len(contributions)}); got {len(firm_types)}"
        )
    abs_contrib = np.abs(contributions.to_numpy(dtype=np.float64))
    weights = _bootstrap_weights(clusters, n_bootstrap, random_state) if n_bootstrap else None
    parts = []
    for dimension in firm_types.columns:
        labels = firm_types[dimension].astype(str).to_numpy()
        for level in sorted(set(labels)):
            mask = labels == level
            sub_weights = weights[:, mask] if weights is not None else None
            if sub_weights is not None:
                sub_weights = sub_weights[sub_weights.sum(axis=1) > 0]
            rows = _rows(contributions.loc[mask], abs_contrib[mask], sub_weights, ci_level)
            rows.insert(0, "n", int(mask.sum()))
            rows.insert(0, "level", level)
            rows.insert(0, "dimension", str(dimension))
            parts.append(rows)
    columns = ["dimension", "level", "n", *SHARE_COLUMNS]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return ChannelShares(table=table[columns], n_bootstrap=n_bootstrap, ci_level=ci_level)
