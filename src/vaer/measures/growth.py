"""Export growth over a shock window: DHS and log growth, window levels per firm.

References
----------
Davis, S., Haltiwanger, J. and Schuh, S. (1996). *Job Creation and Destruction*. MIT Press.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def dhs_growth(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Davis-Haltiwanger-Schuh growth ``(x1 - x0) / (0.5 * (x1 + x0))``, in [-2, 2].

    An exit (``x1 = 0 < x0``) is -2, an entry (``x0 = 0 < x1``) is 2, and ``x0 = x1 = 0``
    is undefined (NaN).

    Parameters
    ----------
    x0, x1 : array of shape (n,)
        Base and end levels (>= 0).

    Returns
    -------
    ndarray of shape (n,)
    """
    x0 = np.asarray(x0, dtype=np.float64)
    x1 = np.asarray(x1, dtype=np.float64)
    mid = 0.5 * (x0 + x1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mid > 0, (x1 - x0) / np.where(mid > 0, mid, 1.0), np.nan)


def log_growth(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Log growth ``log(x1) - log(x0)``; undefined (NaN) unless both levels are positive."""
    x0 = np.asarray(x0, dtype=np.float64)
    x1 = np.asarray(x1, dtype=np.float64)
    ok = (x0 > 0) & (x1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, np.log(np.where(ok, x1, 1.0)) - np.log(np.where(ok, x0, 1.0)), np.nan)


def growth(x0: np.ndarray, x1: np.ndarray, kind: str) -> np.ndarray:
    """``dhs_growth`` or ``log_growth`` by name.

    Raises
    ------
    ValueError
        If ``kind`` is not 'dhs' or 'log'.
    """
    if kind == "dhs":
        return dhs_growth(x0, x1)
    if kind == "log":
        return log_growth(x0, x1)
    raise ValueError(f"`growth` must be 'dhs' or 'log'; got {kind!r}")


def window_levels(
    panel: pd.DataFrame,
    *,
    unit: str,
    time: str,
    exports: str,
    pre: Sequence[int],
    trough: Sequence[int],
    recovery: Sequence[int],
) -> pd.DataFrame:
    """Export levels of every firm over a shock window.

    ``base`` is the mean of exports over the pre-period years in which the firm has a row
    (NaN if it has none); ``trough`` and ``recovery`` are means over their years with a
    missing row counting as zero exports (the firm has exited).

    Parameters
    ----------
    panel : DataFrame
        Firm-year rows, one per firm and year.
    unit, time, exports : str
        Column names.
    pre, trough, recovery : sequence of int
        The window's years.

    Returns
    -------
    DataFrame
        Indexed by firm id: ``base``, ``trough``, ``recovery``, ``in_base_year`` (the firm
        has a row in the last pre-period year).
    """
    years = sorted({*pre, *trough, *recovery})
    rows = panel.loc[panel[time].isin(years), [unit, time, exports]]
    wide = rows.pivot(index=unit, columns=time, values=exports)
    wide = wide.reindex(columns=years)
    firms = pd.Index(panel[unit].unique())
    wide = wide.reindex(firms)
    return pd.DataFrame(
        {
            "base": wide[list(pre)].mean(axis=1, skipna=True),
            "trough": wide[list(trough)].fillna(0.0).mean(axis=1),
            "recovery": wide[list(recovery)].fillna(0.0).mean(axis=1),
            "in_base_year": wide[max(pre)].notna(),
        },
        index=firms,
    )
