"""Resilience outcomes from growth over a shock window (Martin et al. 2016).

``resistance = g_trough - g_expected``, ``recovery = g_recovery - g_expected_recovery``,
Martin's ratio ``(g - g_exp) / |g_exp|``, survival (exports still positive in the
recovery years), and the composite: the mean of standardised resistance and recovery.

References
----------
Martin, R., Sunley, P., Gardiner, B. and Tyler, P. (2016). How regions react to
recessions: resilience and the role of economic structure. *Regional Studies* 50(4).
"""

from __future__ import annotations

import numpy as np


def excess_growth(g: np.ndarray, expected: np.ndarray | float) -> np.ndarray:
    """Resistance (trough growth) or recovery (recovery growth) minus expected growth."""
    return np.asarray(g, dtype=np.float64) - np.asarray(expected, dtype=np.float64)


def martin_ratio(g: np.ndarray, expected: np.ndarray | float) -> np.ndarray:
    """Martin's ratio form ``(g - g_exp) / |g_exp|``; NaN where ``g_exp = 0``."""
    g = np.asarray(g, dtype=np.float64)
    expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), g.shape)
    scale = np.abs(expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, (g - expected) / np.where(scale > 0, scale, 1.0), np.nan)


def survival(recovery_level: np.ndarray) -> np.ndarray:
    """1.0 if the firm still exports in the recovery years (mean level > 0), else 0.0."""
    return (np.asarray(recovery_level, dtype=np.float64) > 0).astype(np.float64)


def composite(resistance: np.ndarray, recovery: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Mean of standardised resistance and recovery, ``(z_res + z_rec) / 2``.

    Standardised with the mean and population standard deviation (ddof 0) of the rows
    given.

    Returns
    -------
    values : ndarray
    sd_resistance, sd_recovery : float
        The standard deviations used (the outcome is ``res / (2 sd_res) + rec / (2 sd_rec)``
        plus a constant).

    Raises
    ------
    ValueError
        If either input is constant or NaN (no scale to standardise by).
    """
    res = np.asarray(resistance, dtype=np.float64)
    rec = np.asarray(recovery, dtype=np.float64)
    sd_res, sd_rec = float(np.std(res)), float(np.std(rec))
    if not (sd_res > 0 and sd_rec > 0):
        raise ValueError(
            "the composite needs resistance and recovery that vary across firms; "
            f"got standard deviations {sd_res} and {sd_rec}"
        )
    values = 0.5 * ((res - res.mean()) / sd_res + (rec - rec.mean()) / sd_rec)
    return values, sd_res, sd_rec


def winsorize(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, int]:
    """Clip values to their ``low`` and ``high`` quantiles (linear interpolation).

    Returns
    -------
    clipped : ndarray
    n_clipped : int
        How many values were changed.

    Raises
    ------
    ValueError
        If not ``0 <= low < high <= 1``.
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(
            f"winsorising quantiles must satisfy 0 <= low < high <= 1; got {low}, {high}"
        )
    values = np.asarray(values, dtype=np.float64)
    lo, hi = np.quantile(values, [low, high])
    clipped = np.clip(values, lo, hi)
    return clipped, int(np.sum(clipped != values))
