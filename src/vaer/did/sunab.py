"""Sun-Abraham interaction-weighted event study.

The regression ``Y_it = a_i + l_t + sum_{g, l != r} d_{g,l} 1{G_i = g} 1{t - g = l} + e_it``
with one coefficient per treated cohort ``g`` and event time ``l`` (the reference
``r = -1 - anticipation`` left out), unit and period fixed effects (pyfixest, through
:func:`vaer.did.twfe.fit_fe`), errors clustered (e.g. by city). The comparison units are
the never treated or, when there are none, the last-treated cohort in the periods before
it is treated (``t < g_last - anticipation``; later periods are dropped). Each ``d_{g,l}``
is then the cohort's average effect ``l`` periods after adoption relative to period
``r``, free of the other cohorts' effects; the event-time effect is their average
weighted by the cohorts' shares of the observations at that event time,

``theta(l) = sum_g w_{g,l} d_{g,l}``, ``w_{g,l} = n_{g,l} / sum_{g'} n_{g',l}``,

with standard errors by the delta method from the clustered covariance of the ``d``
(the weights taken as fixed, as R ``fixest::aggregate`` does).

On a balanced panel with never-treated comparisons and no covariates ``d_{g,l}`` is
exactly Callaway-Sant'Anna's ATT(g, g + l) with never-treated controls and the universal
base period ``g - 1`` (both are the cohort's mean change from ``g - 1`` minus the never
treated's), and ``theta(l)`` is its ``dynamic`` aggregation; after adoption the varying
base period gives the same cells.

Reference: Sun, L. and Abraham, S. (2021), "Estimating dynamic treatment effects in event
studies with heterogeneous treatment effects", Journal of Econometrics 225(2), 175-199.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from vaer.did.panel import PanelColumns
from vaer.did.twfe import EventStudyResult, check_clusters, fit_fe, long_panel, panel_counts

CONTROLS = ("auto", "never", "last")


def _name(group: int, event_time: int) -> str:
    return f"sa_{int(group)}_{'m' if event_time < 0 else 'p'}{abs(int(event_time))}"


def sun_abraham(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    control: Literal["auto", "never", "last"] = "auto",
    anticipation: int = 0,
    alpha: float = 0.05,
) -> EventStudyResult:
    """Sun-Abraham event-time effects (module docstring).

    Parameters
    ----------
    data, columns
        As :func:`vaer.did.twfe.twfe`.
    control : {"auto", "never", "last"}
        Comparison units: the never treated, the last-treated cohort, or ``"auto"`` (the
        never treated if there are any, else the last-treated cohort).
    anticipation : int
        Periods of anticipation: the reference event time is ``-1 - anticipation``.
    alpha : float
        One minus the coverage of the intervals.

    Returns
    -------
    EventStudyResult
        With ``cells``: group, event_time, estimate, se, n_obs, weight.

    Raises
    ------
    ValueError
        On an invalid panel or ``control``, ``control="never"`` without never-treated
        units, fewer than two treated cohorts for ``"last"``, or fewer than two clusters.
    """
    if control not in CONTROLS:
        raise ValueError(f"`control` must be one of {CONTROLS}; got {control!r}")
    frame = long_panel(data, columns)
    has_never = bool((frame["cohort"] == 0).any())
    if control == "never" and not has_never:
        raise ValueError("Sun-Abraham with `control='never'` needs never-treated units")
    chosen = "never" if (control == "never" or (control == "auto" and has_never)) else "last"
    if chosen == "last":
        cohorts = np.unique(frame.loc[frame["cohort"] > 0, "cohort"])
        if len(cohorts) < 2:
            raise ValueError(
                "Sun-Abraham with the last-treated cohort as comparison needs at least two "
                "treated cohorts"
            )
        last = int(cohorts[-1])
        frame = frame[frame["period"] < last - anticipation]
        frame = frame.assign(cohort=frame["cohort"].where(frame["cohort"] != last, 0))
        frame = frame.reset_index(drop=True)
    check_clusters(frame, "Sun-Abraham")
    reference = -1 - anticipation
    treated = frame["cohort"].to_numpy() > 0
    relative = (frame["period"] - frame["cohort"]).to_numpy()
    cells = (
        pd.DataFrame({"group": frame["cohort"][treated], "event_time": relative[treated]})
        .value_counts()
        .rename("n_obs")
        .reset_index()
        .sort_values(["event_time", "group"], ignore_index=True)
    )
    cells = cells[cells["event_time"] != reference].reset_index(drop=True)
    names = [_name(g, e) for g, e in zip(cells["group"], cells["event_time"], strict=True)]
    group = frame["cohort"].to_numpy()
    dummies = pd.DataFrame(
        {
            name: ((group == g) & (relative == e)).astype(np.float64)
            for name, g, e in zip(names, cells["group"], cells["event_time"], strict=True)
        }
    )
    model = fit_fe(pd.concat([frame, dummies], axis=1), names)
    beta = model.coef()[names].to_numpy(float)
    index = {name: k for k, name in enumerate(model.coef().index)}
    vcov = np.asarray(model._vcov)[np.ix_([index[n] for n in names], [index[n] for n in names])]
    cells["estimate"] = beta
    cells["se"] = np.sqrt(np.diag(vcov))
    cells["weight"] = cells["n_obs"] / cells.groupby("event_time")["n_obs"].transform("sum")
    keys = np.unique(cells["event_time"].to_numpy())
    n_obs, n_units, n_clusters = panel_counts(frame)
    weights = np.zeros((len(keys), len(names)))
    for row, event in enumerate(keys):
        at = (cells["event_time"] == event).to_numpy()
        weights[row, at] = cells["weight"].to_numpy()[at]
    return EventStudyResult(
        keys=keys.astype(np.int64), estimate=weights @ beta,
        se=np.sqrt(np.einsum("ij,jk,ik->i", weights, vcov, weights)), df=int(model._df_t),
        n_obs=n_obs, n_units=n_units, n_clusters=n_clusters, alpha=alpha, cells=cells,
        control=chosen,
    )  # fmt: skip
