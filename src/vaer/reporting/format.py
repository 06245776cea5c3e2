"""Number formatting for reading: significant digits, p-values and significance stars."""

from __future__ import annotations

import math

from scipy import stats


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (no scientific notation for common sizes)."""
    if _missing(value):
        return "–"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - magnitude, 0)
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{decimals}f}"


def stars(p_value: float) -> str:
    """``***`` p < 0.01, ``**`` p < 0.05, ``*`` p < 0.10 (nothing for a missing p-value)."""
    if _missing(p_value):
        return ""
    if p_value < 0.01:
        return "***"
    if p_value < 0.05:
        return "**"
    if p_value < 0.10:
        return "*"
    return ""


def p_text(p_value: float) -> str:
    """A p-value for reading: three decimals, ``<0.001`` below that."""
    if _missing(p_value):
        return "–"
    if p_value < 0.001:
        return "<0.001"
    return f"{p_value:.3f}"


def normal_p_value(estimate: float, se: float) -> float:
    """Two-sided p-value of ``estimate = 0`` under normality; NaN without a positive SE."""
    if _missing(estimate) or _missing(se) or se <= 0:
        return float("nan")
    return float(2 * stats.norm.sf(abs(estimate / se)))


def percent(share: float, digits: int = 0) -> str:
    """A share in [0, 1] as a percentage, e.g. ``0.423 -> "42%"``."""
    if _missing(share):
        return "–"
    return f"{100 * share:.{digits}f}%"
