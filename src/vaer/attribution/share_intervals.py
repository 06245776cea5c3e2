"""What a channel-share interval covers, per effect model, and when it is withheld.

A channel's share (:mod:`vaer.attribution.channels`) is a functional of the estimated
effect function. Its Fieller interval includes the estimation error of that function but
not the difference between what the model can represent and the true effect:

- a **linear** final stage (exact linear SHAP) estimates the best linear projection of
  the effect on the modifiers, so its intervals are labelled as intervals for the shares
  of that projection (:meth:`vaer.data.truth.Truth.linear_projection_shares`). On the
  held-out table of ``benchmarks/heldout_designs.py`` (a U-shaped, a kinked and a step
  term) linear DML's supply-chain share averaged 0.18 against a true share of 0.46 and a
  projection share of 0.18;
- a **forest** (or any non-linear final stage) targets the true shares, but smooths the
  effect towards its linear base: on the same table its shares were biased by 1-1.5 of
  their SEs (digital capability 0.42 vs 0.36, supply chain 0.38 vs 0.46) and their 95%
  intervals covered the true shares in 66-82% of 100 seeds (validity section of
  ``benchmarks/RESULTS.md``). As for the per-firm intervals, no interval can adapt to a
  smoothing bias of unknown size (Armstrong and Kolesar, 2018, *Econometrica* 86(2)), so
  these intervals are withheld unless ``attribution.smoothed_share_intervals`` asks for
  them, labelled as covering the shares of the model's smoothed effect. The point shares
  and the one-sided test that a channel carries no heterogeneity are kept: a channel
  whose proxies do not move the effect has share 0 for the true and the smoothed effect
  alike (its interval reached 0 in 97-100% of seeds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LINEAR_PROJECTION = (
    "best linear projection: shares of the linear effect in the modifiers closest to the "
    "true effect"
)
SMOOTHED = "smoothed effect: shares of the model's smoothed effect, not the true shares"
WITHHELD = (
    "withheld: a non-linear model's smoothing bias is not in the interval "
    "(attribution.smoothed_share_intervals prints it)"
)
INTERVAL_COLUMNS = ("ci_low", "ci_high", "share_se")


def share_interval_label(method: str, print_smoothed: bool) -> str:
    """What the share intervals of a model explained by ``method`` cover.

    Parameters
    ----------
    method : str
        The SHAP route (``linear``, ``tree_surrogate`` or ``permutation``); only
        ``linear`` means a final stage linear in the modifiers.
    print_smoothed : bool
        ``attribution.smoothed_share_intervals``.

    Returns
    -------
    str
        :data:`LINEAR_PROJECTION`, :data:`SMOOTHED` or :data:`WITHHELD`.
    """
    if method == "linear":
        return LINEAR_PROJECTION
    return SMOOTHED if print_smoothed else WITHHELD


def label_share_intervals(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """``table`` with an ``interval`` column saying ``label``, and its interval columns
    set to NaN when ``label`` is :data:`WITHHELD`."""
    out = table.copy()
    if label == WITHHELD:
        for column in INTERVAL_COLUMNS:
            if column in out:
                out[column] = np.nan
    out["interval"] = label
    return out
