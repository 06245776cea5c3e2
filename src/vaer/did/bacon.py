"""Goodman-Bacon decomposition of the two-way fixed effects DiD coefficient.

On a balanced panel with staggered adoption, the TWFE coefficient of
``Y_it = a_i + l_t + b D_it`` is a weighted average of every 2x2 DiD between two timing
groups (Goodman-Bacon 2021, Theorem 1). With timing groups ``k`` (adopting in period
``t_k``; ``k`` earlier than ``l``) and the never treated ``U``, unit shares ``n_k``, the
share of periods each group is treated ``D_k``, and ``V`` the variance of the two-way
demeaned treatment dummy over all unit-periods:

- treated vs never treated, ``b_kU``: group ``k``'s mean change from before ``t_k`` to
  after, minus ``U``'s; weight ``s_kU = (n_k + n_U)^2 n_kU (1 - n_kU) D_k (1 - D_k) / V``
  with ``n_kU = n_k / (n_k + n_U)``;
- earlier vs later, ``b^k_kl``: ``k`` treated, ``l`` (not yet treated) as control, over
  the periods before ``t_l``; weight ``s^k_kl = ((n_k + n_l)(1 - D_l))^2 n_kl (1 - n_kl)
  ((D_k - D_l) / (1 - D_l)) ((1 - D_k) / (1 - D_l)) / V``;
- later vs earlier, ``b^l_kl``: ``l`` treated, the already-treated ``k`` as control, over
  the periods from ``t_k`` on; weight ``s^l_kl = ((n_k + n_l) D_k)^2 n_kl (1 - n_kl)
  (D_l / D_k) ((D_k - D_l) / D_k) / V``, with ``n_kl = n_k / (n_k + n_l)``.

The weights sum to one and ``sum s b = b_TWFE`` exactly. The later-vs-earlier
comparisons are the "forbidden" ones: when effects grow over time, the already-treated
control's own change moves the estimate, possibly below zero.

Unbalanced panels: the theorem needs a balanced panel, so the decomposition is computed
on the balanced subpanel (the units observed in every period) and says so:
:attr:`BaconResult.n_units_left_out` and ``n_rows_left_out`` count what it leaves out,
and :attr:`BaconResult.twfe` is the TWFE coefficient of that subpanel (which the weighted
sum reproduces), not of the full panel.

Reference: Goodman-Bacon, A. (2021), "Difference-in-differences with variation in
treatment timing", Journal of Econometrics 225(2), 254-277.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from vaer.did.panel import PanelColumns, build_panel

TREATED_VS_NEVER = "treated_vs_never"
EARLIER_VS_LATER = "earlier_vs_later"
LATER_VS_EARLIER = "later_vs_earlier"
COLUMNS = ["comparison_type", "treated_cohort", "control_cohort", "estimate", "weight"]


@dataclass(frozen=True)
class BaconResult:
    """The 2x2 comparisons behind a TWFE coefficient, with their weights.

    Attributes
    ----------
    table : pandas.DataFrame
        comparison_type (``treated_vs_never``, ``earlier_vs_later``,
        ``later_vs_earlier``), treated_cohort, control_cohort (0 = never treated),
        estimate, weight.
    twfe : float
        The TWFE coefficient of the (balanced sub)panel decomposed; equals
        ``sum(weight * estimate)``.
    n_units : int
        Units of the balanced subpanel.
    n_units_left_out, n_rows_left_out : int
        Units not observed in every period (and their unit-periods), left out.
    """

    table: pd.DataFrame
    twfe: float
    n_units: int
    n_units_left_out: int
    n_rows_left_out: int

    @property
    def balanced(self) -> bool:
        """Whether the whole panel was decomposed (no unit left out)."""
        return self.n_units_left_out == 0

    @property
    def forbidden_weight(self) -> float:
        """Total weight of the later-vs-earlier (already-treated control) comparisons."""
        rows = self.table["comparison_type"] == LATER_VS_EARLIER
        return float(self.table.loc[rows, "weight"].sum())


def _change(y: np.ndarray, after: np.ndarray, before: np.ndarray) -> float:
    return float(y[after].mean() - y[before].mean())


def bacon_decomposition(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    anticipation: int = 0,
) -> BaconResult:
    """Decompose the TWFE DiD coefficient into 2x2 comparisons (module docstring).

    Parameters
    ----------
    data : pandas.DataFrame or None
        Long panel, one row per unit-period.
    columns : PanelColumns
        The unit, period, cohort (first treated period, 0 = never) and outcome roles
        (:class:`vaer.did.panel.PanelColumns`; the decomposition clusters nothing, so its
        cluster role is not used).
    anticipation : int
        Treatment switches on ``anticipation`` periods before the cohort's period (as in
        :func:`vaer.did.twfe.twfe`): the timing groups adopt at ``cohort - anticipation``.

    Returns
    -------
    BaconResult

    Raises
    ------
    ValueError
        On an invalid panel, no unit observed in every period, a cohort treated from the
        first period on (always treated), or no variation in treatment timing.
    """
    panel = build_panel(data, replace(columns, cluster=columns.unit))
    full = panel.observed.all(axis=1)
    if not full.any():
        raise ValueError(
            "Bacon decomposition: no unit is observed in every period; the decomposition "
            "needs a balanced (sub)panel"
        )
    y = panel.outcome[full]
    periods = panel.periods
    adoption = np.where(panel.cohort[full] > 0, panel.cohort[full] - anticipation, 0)
    adoption = np.where(adoption > periods[-1], 0, adoption)  # adopting after the panel
    if np.any((adoption > 0) & (adoption <= periods[0])):
        always = sorted(
            {int(g) for g in panel.cohort[full][(adoption > 0) & (adoption <= periods[0])]}
        )
        raise ValueError(
            f"Bacon decomposition: cohorts {always} are treated from the first period on "
            "(always treated); start the panel earlier or leave them out"
        )
    groups = [int(g) for g in np.unique(adoption[adoption > 0])]
    if not groups:
        raise ValueError("Bacon decomposition: no treated cohort in the balanced subpanel")
    n = len(y)
    share = {g: float(np.mean(adoption == g)) for g in [0, *groups]}
    mean_y = {g: y[adoption == g].mean(axis=0) for g in [0, *groups] if share[g] > 0}
    dummy = {g: (periods >= g).astype(float) if g else np.zeros(len(periods)) for g in mean_y}
    treated_share = {g: float(d.mean()) for g, d in dummy.items()}
    by_period = sum(share[g] * dummy[g] for g in mean_y)
    overall = sum(share[g] * treated_share[g] for g in mean_y)
    demeaned = {g: dummy[g] - treated_share[g] - by_period + overall for g in mean_y}
    variance = sum(share[g] * float(np.mean(demeaned[g] ** 2)) for g in mean_y)
    if variance <= 0:
        raise ValueError(
            "Bacon decomposition: the treatment does not vary within units and periods"
        )
    coefficient = sum(share[g] * float(np.mean(demeaned[g] * mean_y[g])) for g in mean_y) / variance

    rows: list[tuple[str, int, int, float, float]] = []
    if 0 in mean_y:
        n_u = share[0]
        for k in groups:
            post = periods >= k
            estimate = _change(mean_y[k], post, ~post) - _change(mean_y[0], post, ~post)
            n_ku = share[k] / (share[k] + n_u)
            d_k = treated_share[k]
            weight = (share[k] + n_u) ** 2 * n_ku * (1 - n_ku) * d_k * (1 - d_k) / variance
            rows.append((TREATED_VS_NEVER, k + anticipation, 0, estimate, weight))
    for a, k in enumerate(groups):
        for l_ in groups[a + 1 :]:
            pre, post = periods < k, periods >= l_
            mid = ~pre & ~post
            n_kl = share[k] / (share[k] + share[l_])
            d_k, d_l = treated_share[k], treated_share[l_]
            pair = share[k] + share[l_]
            early = _change(mean_y[k], mid, pre) - _change(mean_y[l_], mid, pre)
            weight_early = (
                (pair * (1 - d_l)) ** 2 * n_kl * (1 - n_kl)
                * ((d_k - d_l) / (1 - d_l)) * ((1 - d_k) / (1 - d_l)) / variance
            )  # fmt: skip
            late = _change(mean_y[l_], post, mid) - _change(mean_y[k], post, mid)
            weight_late = (
                (pair * d_k) ** 2 * n_kl * (1 - n_kl) * (d_l / d_k) * ((d_k - d_l) / d_k)
                / variance
            )  # fmt: skip
            rows.append(
                (EARLIER_VS_LATER, k + anticipation, l_ + anticipation, early, weight_early)
            )
            rows.append((LATER_VS_EARLIER, l_ + anticipation, k + anticipation, late, weight_late))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return BaconResult(
        table=table, twfe=float(coefficient), n_units=n,
        n_units_left_out=int((~full).sum()),
        n_rows_left_out=int(panel.observed[~full].sum()),
    )  # fmt: skip
