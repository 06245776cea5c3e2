"""Number formatting for reading: significant digits and significance stars."""

from __future__ import annotations

import math


def sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (no scientific notation for common sizes)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - magnitude, 0)
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{decimals}f}"


def stars(p_value: float) -> str:
    """``***`` p < 0.01, ``**`` p < 0.05, ``*`` p < 0.10."""
    if p_value < 0.01:
        return "***"
    if p_value < 0.05:
        return "**"
    if p_value < 0.10:
        return "*"
    return ""
