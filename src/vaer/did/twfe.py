"""Two-way fixed effects: the static DiD regression and the plain leads-and-lags event study.

``twfe``: ``Y_it = a_i + l_t + b D_it + e_it`` with ``D_it = 1{t >= G_i - anticipation}``
for units of a treated cohort ``G_i`` (0 for the never treated), unit and period fixed
effects, errors clustered (e.g. by city). With staggered adoption and effects that vary
over time or cohorts ``b`` is a weighted average of 2x2 comparisons some of which use
already-treated units as controls (:mod:`vaer.did.bacon`); it is reported beside
Callaway-Sant'Anna, not instead of it.

``twfe_event_study``: the same regression with one dummy per event time ``t - G_i``
(pooled over cohorts, ``-1 - anticipation`` left out as the reference) instead of
``D_it``; under heterogeneous effects its coefficients mix other event times' effects in
(Sun and Abraham 2021), which :mod:`vaer.did.sunab` repairs.

The fixed effects are projected out by pyfixest (imported here, lazily: its import takes
seconds). Standard errors are pyfixest's CRV1 with its default small-sample correction
(R ``fixest``'s default): ``V = G/(G-1) (N-1)/(N-K) V_0`` with ``G``
clusters, ``N`` observations and ``K`` the slope coefficients plus the number of
periods (unit effects nested in the clusters are not counted); intervals and p-values
use the t distribution with ``G - 1`` degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vaer.did.panel import PanelColumns, build_panel

EVENT_PREFIX = "es_"
FIXEF_TOL = 1e-10
"""Convergence tolerance of pyfixest's alternating projections (its default, 1e-6, moved
standard errors in the sixth digit on a small unbalanced panel)."""


@dataclass(frozen=True)
class TWFEResult:
    """The static two-way fixed effects coefficient.

    Attributes
    ----------
    estimate, se : float
        ``b`` and its cluster-robust standard error.
    df : int
        Degrees of freedom of the t distribution behind the interval (``G - 1``).
    n_obs, n_units, n_clusters : int
        Unit-periods, units and clusters of the regression.
    alpha : float
        One minus the coverage of the interval.
    """

    estimate: float
    se: float
    df: int
    n_obs: int
    n_units: int
    n_clusters: int
    alpha: float = 0.05

    @property
    def ci(self) -> tuple[float, float]:
        """The ``1 - alpha`` interval ``b +- t_{G-1} se``."""
        half = float(stats.t.ppf(1.0 - self.alpha / 2.0, self.df)) * self.se
        return self.estimate - half, self.estimate + half

    def to_frame(self) -> pd.DataFrame:
        """One row in the layout of ``did_aggregates`` (aggregation ``simple``, overall)."""
        low, high = self.ci
        return pd.DataFrame(
            {
                "aggregation": ["simple"], "key": [np.nan], "estimate": [self.estimate],
                "se": [self.se], "ci_low": [low], "ci_high": [high], "band_low": [np.nan],
                "band_high": [np.nan], "overall": [True],
            }
        )  # fmt: skip


@dataclass(frozen=True)
class EventStudyResult:
    """Event-time effects of a regression event study.

    Attributes
    ----------
    keys : numpy.ndarray
        Event times (the reference ``-1 - anticipation`` is left out: 0 by construction).
    estimate, se : numpy.ndarray
        ``(n_keys,)`` estimates and cluster-robust standard errors.
    df : int
        Degrees of freedom of the t intervals (``G - 1``).
    n_obs, n_units, n_clusters : int
        Unit-periods, units and clusters of the regression.
    alpha : float
        One minus the coverage of the intervals.
    cells : pandas.DataFrame
        Sun-Abraham only: per cohort and event time the interaction coefficient, its SE,
        the observations and the weight in the event-time average (else empty).
    control : str
        The comparison units: ``"never"`` or ``"last"`` (the last-treated cohort, before
        it is treated).
    """

    keys: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    df: int
    n_obs: int
    n_units: int
    n_clusters: int
    alpha: float = 0.05
    cells: pd.DataFrame | None = None
    control: str = "never"

    def to_frame(self) -> pd.DataFrame:
        """One row per event time in the layout of ``did_aggregates`` (``dynamic``)."""
        half = float(stats.t.ppf(1.0 - self.alpha / 2.0, self.df)) * self.se
        nan = np.full(len(self.keys), np.nan)
        return pd.DataFrame(
            {
                "aggregation": "dynamic", "key": self.keys.astype(float),
                "estimate": self.estimate, "se": self.se, "ci_low": self.estimate - half,
                "ci_high": self.estimate + half, "band_low": nan, "band_high": nan,
                "overall": np.zeros(len(self.keys), dtype=bool),
            }
        )  # fmt: skip


def long_panel(data: pd.DataFrame | None, columns: PanelColumns) -> pd.DataFrame:
    """The panel checked by :func:`vaer.did.panel.build_panel` (integer periods, finite
    outcomes, one row per unit-period, cohort and cluster constant within a unit), as a
    long frame with columns ``unit`` (code), ``period``, ``cohort`` (0 = never),
    ``cluster`` (code) and ``y``, sorted by unit and period."""
    panel = build_panel(data, columns)
    rows, periods = np.nonzero(panel.observed)
    return pd.DataFrame(
        {
            "unit": rows.astype(np.int64),
            "period": panel.periods[periods],
            "cohort": panel.cohort[rows],
            "cluster": panel.cluster[rows],
            "y": panel.outcome[rows, periods],
        }
    )


def fit_fe(frame: pd.DataFrame, regressors: list[str]) -> Any:
    """``y ~ regressors | unit + period`` by pyfixest, CRV1 clustered by ``cluster``.

    Raises
    ------
    ValueError
        If pyfixest drops a regressor as collinear with the fixed effects (the design
        does not identify it).
    """
    import pyfixest
    from threadpoolctl import threadpool_limits

    formula = f"y ~ {' + '.join(regressors)} | unit + period"
    # one BLAS thread: pyfixest's X'X of a tall n x k design took 4.9 s with OpenBLAS's
    # two threads on a busy 2-core machine and 0.016 s with one (78,000 x 33)
    with threadpool_limits(limits=1, user_api="blas"):
        model = pyfixest.feols(
            formula, data=frame, vcov={"CRV1": "cluster"}, fixef_rm="none", fixef_tol=FIXEF_TOL,
            copy_data=False, store_data=False,
        )  # fmt: skip
    kept = list(model.coef().index)
    dropped = [name for name in regressors if name not in kept]
    if dropped:
        raise ValueError(
            f"two-way fixed effects: {dropped} are collinear with the unit and period "
            "effects (the panel does not identify them)"
        )
    return model


def panel_counts(frame: pd.DataFrame) -> tuple[int, int, int]:
    """Observations, units and clusters of a :func:`long_panel` frame."""
    return len(frame), int(frame["unit"].nunique()), int(frame["cluster"].nunique())


def check_clusters(frame: pd.DataFrame, estimator: str = "two-way fixed effects") -> None:
    """Raise a ValueError naming ``estimator`` if ``frame`` has fewer than two clusters."""
    if frame["cluster"].nunique() < 2:
        raise ValueError(f"{estimator}: clustered errors need at least two clusters")


def twfe(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    anticipation: int = 0,
    alpha: float = 0.05,
) -> TWFEResult:
    """The static TWFE DiD coefficient with cluster-robust errors (module docstring).

    Parameters
    ----------
    data : pandas.DataFrame or None
        Long panel, one row per unit-period (unbalanced allowed).
    columns : PanelColumns
        The unit, period, cohort (first treated period, 0 = never), cluster and outcome
        roles (:class:`vaer.did.panel.PanelColumns`).
    anticipation : int
        Treatment switches on ``anticipation`` periods before the cohort's period.
    alpha : float
        One minus the coverage of the interval.

    Returns
    -------
    TWFEResult

    Raises
    ------
    ValueError
        On an invalid panel, fewer than two clusters, or a treatment dummy that does not
        vary within units and periods.
    """
    frame = long_panel(data, columns)
    check_clusters(frame)
    treated = (frame["cohort"] > 0) & (frame["period"] >= frame["cohort"] - anticipation)
    frame["d"] = treated.astype(np.float64)
    model = fit_fe(frame, ["d"])
    n_obs, n_units, n_clusters = panel_counts(frame)
    return TWFEResult(
        estimate=float(model.coef()["d"]), se=float(model.se()["d"]), df=int(model._df_t),
        n_obs=n_obs, n_units=n_units, n_clusters=n_clusters, alpha=alpha,
    )  # fmt: skip


def event_name(event_time: int) -> str:
    """Column name of an event-time dummy (``es_m2``, ``es_p0``...)."""
    return f"{EVENT_PREFIX}{'m' if event_time < 0 else 'p'}{abs(int(event_time))}"


def twfe_event_study(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    anticipation: int = 0,
    alpha: float = 0.05,
) -> EventStudyResult:
    """The plain TWFE event study: pooled event-time dummies (module docstring).

    Parameters and errors as :func:`twfe`; it also needs never-treated units (without
    them the fully dynamic specification is not identified).
    """
    frame = long_panel(data, columns)
    check_clusters(frame)
    if not (frame["cohort"] == 0).any():
        raise ValueError(
            "the TWFE event study with every event time needs never-treated units; the "
            "panel has none"
        )
    reference = -1 - anticipation
    treated = frame["cohort"].to_numpy() > 0
    relative = np.where(treated, frame["period"] - frame["cohort"], reference)
    keys = np.array(sorted(set(relative[treated].tolist()) - {reference}), dtype=np.int64)
    names = [event_name(e) for e in keys]
    dummies = pd.DataFrame(
        {name: (relative == e).astype(np.float64) for name, e in zip(names, keys, strict=True)}
    )
    model = fit_fe(pd.concat([frame, dummies], axis=1), names)
    n_obs, n_units, n_clusters = panel_counts(frame)
    return EventStudyResult(
        keys=keys, estimate=model.coef()[names].to_numpy(float),
        se=model.se()[names].to_numpy(float), df=int(model._df_t), n_obs=n_obs,
        n_units=n_units, n_clusters=n_clusters, alpha=alpha,
    )  # fmt: skip
