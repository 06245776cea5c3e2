"""Callaway–Sant'Anna group-time average treatment effects ATT(g, t) on a panel.

For each cohort ``g`` (units first treated in period ``g``) and period ``t``,

``ATT(g, t) = E[Y_t(g) - Y_t(inf) | G = g]``,

identified under (conditional) parallel trends by comparing the change of the outcome
from a base period ``b`` to ``t`` of cohort ``g`` with that of a comparison group: the
never treated (``control_group="never"``) or the units not yet treated by
``max(t, b) + anticipation`` (``"notyet"``). For post periods (``t >= g``) the base is the
last period before ``g - anticipation``; for pre periods it is ``t - 1`` with
``base_period="varying"`` (short placebo differences) or the same long base with
``"universal"`` (whose reference cell ``t = b`` is 0 by construction). Each cell is a
two-period problem solved by :func:`vaer.did.drdid.two_period_att` (doubly robust,
IPW or outcome regression), as R ``did::att_gt`` does.

Unbalanced panels: a cell uses the units of cohort ``g`` and of the comparison group
that are observed in both ``b`` and ``t``; the others are counted, per cell and reason,
in :attr:`ATTGTResult.drops`. Cells left with no treated or no comparison unit are not
estimated and listed in :attr:`ATTGTResult.skipped`.

Influence functions: column ``k`` of :attr:`ATTGTResult.influence` is the cell's
influence function rescaled to all ``n`` units of the panel (``n / n_k`` times the
two-period one, 0 for units outside the cell), so that
``att_k - ATT_k = mean_i influence[i, k] + o_p(n^{-1/2})``. Standard errors cluster
these by :func:`vaer.did.inference.cluster_se_df`; in the default ``"small_cluster"``
inference mode each unit's column is first scaled by its cluster's leverage in its arm
of the cell (:func:`vaer.did.inference.arm_leverage_factor`), so that aggregations,
bands and tests built from these columns inherit the adjustment.

Reference: Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-differences with
multiple time periods", Journal of Econometrics 225(2), 200-230.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vaer.compute import Backend, LocalBackend
from vaer.did.drdid import METHODS, EstimationError, TwoPeriodFit, two_period_att
from vaer.did.inference import (
    arm_leverage_factor,
    check_bootstrap_args,
    check_inference,
    cluster_se_df,
    family_critical,
    multiplier_bootstrap,
)
from vaer.did.panel import Panel, PanelColumns, build_panel

CONTROL_GROUPS = ("never", "notyet")
"""Comparison groups of :class:`CellOptions`."""
BASE_PERIODS = ("varying", "universal")
"""Base-period rules of :class:`CellOptions`."""


@dataclass(frozen=True)
class CellOptions:
    """Options shared by every estimator of the ATT(g, t) cells.

    Attributes
    ----------
    control_group : {"never", "notyet"}
        Comparison units: never treated, or never treated plus not yet treated by
        ``max(t, base) + anticipation``.
    anticipation : int
        Number of periods before ``g`` in which units may already react (>= 0).
    base_period : {"varying", "universal"}
        Base period of pre-treatment cells (module docstring).
    alpha : float
        Intervals have coverage ``1 - alpha``; in (0, 1).
    inference : {"small_cluster", "asymptotic"}
        ``"small_cluster"``: leverage-adjusted (CR2) cluster variances, Satterthwaite t
        intervals, Bonferroni-t bands; ``"asymptotic"``: as R ``did`` (CR1, normal,
        bootstrap sup-t bands). See :mod:`vaer.did.inference`.
    trim_level : float
        Comparison units with a propensity at or above it get zero weight; in (0.5, 1].

    Raises
    ------
    ValueError
        On construction, naming the first invalid setting and its allowed values.
    """

    control_group: str = "never"
    anticipation: int = 0
    base_period: str = "varying"
    alpha: float = 0.05
    inference: str = "small_cluster"
    trim_level: float = 0.995

    def __post_init__(self) -> None:
        if self.control_group not in CONTROL_GROUPS:
            raise ValueError(
                f"`control_group` must be one of {CONTROL_GROUPS}; got {self.control_group!r}"
            )
        if self.base_period not in BASE_PERIODS:
            raise ValueError(
                f"`base_period` must be one of {BASE_PERIODS}; got {self.base_period!r}"
            )
        anticipation = self.anticipation
        if (
            isinstance(anticipation, bool)
            or not isinstance(anticipation, int | np.integer)
            or anticipation < 0
        ):
            raise ValueError(f"`anticipation` must be an int >= 0; got {anticipation!r}")
        if not 0.5 < self.trim_level <= 1.0:
            raise ValueError(f"`trim_level` must be in (0.5, 1]; got {self.trim_level!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1); got {self.alpha!r}")
        check_inference(self.inference)


DEFAULT_OPTIONS = CellOptions()
"""The default :class:`CellOptions` (never-treated comparisons, no anticipation, varying
base period, 95% small-cluster intervals, trimming at 0.995)."""


@dataclass(frozen=True)
class ATTGTResult:
    """Group-time ATTs with their per-unit influence functions.

    Attributes
    ----------
    group, time, base_period : numpy.ndarray
        ``(n_cells,)`` cohort, period and base period of each cell.
    att, se : numpy.ndarray
        ``(n_cells,)`` ATT(g, t) and its city-cluster-robust standard error (NaN for a
        universal base period's reference cell, fixed at 0).
    n_treated, n_control : numpy.ndarray
        ``(n_cells,)`` units of the cohort and of the comparison group used by the cell.
    influence : numpy.ndarray
        ``(n_units, n_cells)`` influence functions, rows aligned to ``unit_ids``.
    unit_ids : pandas.Index
        Unit ids of the rows of ``influence``.
    cohort, cluster : numpy.ndarray
        ``(n_units,)`` cohort (0 = never treated) and cluster code of each unit.
    cluster_ids : pandas.Index
        Cluster labels behind the codes.
    periods : numpy.ndarray
        The panel's periods.
    drops : pandas.DataFrame
        Per cell: eligible treated and comparison units, units used, units left out
        because unobserved in the base period only, in ``t`` only, or in both, and
        comparison units given zero weight by propensity trimming.
    skipped : pandas.DataFrame
        Cells not estimated (group, time, base_period, reason).
    method, control_group, base_period_rule : str
        The options used.
    anticipation : int
        Periods of anticipation.
    alpha : float
        One minus the coverage of the intervals.
    inference : str
        ``"small_cluster"`` or ``"asymptotic"`` (:mod:`vaer.did.inference`).
    df : numpy.ndarray
        Degrees of freedom of each cell's t interval (infinite when asymptotic).
    crit_value : float
        Sup-t critical value of the simultaneous band over all cells (NaN without
        bootstrap).
    se_boot : numpy.ndarray or None
        Bootstrap standard errors (None without bootstrap).
    """

    group: np.ndarray
    time: np.ndarray
    base_period: np.ndarray
    att: np.ndarray
    se: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    influence: np.ndarray
    unit_ids: pd.Index
    cohort: np.ndarray
    cluster: np.ndarray
    cluster_ids: pd.Index
    periods: np.ndarray
    drops: pd.DataFrame
    skipped: pd.DataFrame
    method: str
    control_group: str
    base_period_rule: str
    anticipation: int
    alpha: float
    inference: str
    df: np.ndarray
    crit_value: float = float("nan")
    se_boot: np.ndarray | None = field(default=None)

    @property
    def event_time(self) -> np.ndarray:
        """``time - group`` of each cell."""
        return self.time - self.group

    @property
    def post(self) -> np.ndarray:
        """True for post-treatment cells (``time >= group``)."""
        return self.time >= self.group

    @property
    def n_units(self) -> int:
        """Number of units of the panel."""
        return len(self.unit_ids)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    def to_frame(self) -> pd.DataFrame:
        """One row per cell.

        Returns
        -------
        pandas.DataFrame
            Columns group, time, event_time, base_period, att, se, df, ci_low, ci_high
            (pointwise), band_low, band_high (simultaneous; asymptotic mode: NaN without
            bootstrap), n_treated, n_control, post.
        """
        z, band = family_critical(self.alpha, self.df, self.inference, self.crit_value)
        return pd.DataFrame(
            {
                "group": self.group,
                "time": self.time,
                "event_time": self.event_time,
                "base_period": self.base_period,
                "att": self.att,
                "se": self.se,
                "df": self.df,
                "ci_low": self.att - z * self.se,
                "ci_high": self.att + z * self.se,
                "band_low": self.att - band * self.se,
                "band_high": self.att + band * self.se,
                "n_treated": self.n_treated,
                "n_control": self.n_control,
                "post": self.post,
            }
        )

    def influence_frame(self) -> pd.DataFrame:
        """The influence functions as a DataFrame: units x (group, time) columns."""
        columns = pd.MultiIndex.from_arrays([self.group, self.time], names=["group", "time"])
        return pd.DataFrame(self.influence, index=self.unit_ids, columns=columns)


def check_method(method: str) -> None:
    """Raise unless ``method`` is one of :data:`vaer.did.drdid.METHODS`."""
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")


@dataclass(frozen=True)
class _Cell:
    group: int
    t: int  # period index
    b: int  # base period index


def cell_arms(panel: Panel, cell: _Cell, options: CellOptions) -> tuple[np.ndarray, np.ndarray]:
    """``(n_units,)`` masks of a cell's cohort and of its comparison units (the never
    treated, or with ``control_group="notyet"`` also the units not yet treated by
    ``max(t, base) + anticipation``), observed or not."""
    cohort = panel.cohort
    treated = cohort == cell.group
    never = cohort == 0
    if options.control_group == "never":
        return treated, never
    last = max(panel.periods[cell.t], panel.periods[cell.b]) + options.anticipation
    return treated, never | ((cohort > last) & ~treated)


def result_options(method: str, options: CellOptions) -> dict[str, Any]:
    """The option fields of an :class:`ATTGTResult` estimated by ``method`` with
    ``options``."""
    return {
        "method": method, "control_group": options.control_group,
        "base_period_rule": options.base_period, "anticipation": int(options.anticipation),
        "alpha": float(options.alpha), "inference": options.inference,
    }  # fmt: skip


def _cells(panel: Panel, options: CellOptions) -> list[_Cell]:
    """Every (g, t) cell of the panel with its base period (module docstring)."""
    periods, anticipation = panel.periods, options.anticipation
    cohorts = np.unique(panel.cohort[panel.cohort > 0])
    cells: list[_Cell] = []
    for g in cohorts:
        pre = np.flatnonzero(periods + anticipation < g)
        if len(pre) == 0:
            n_units = int(np.sum(panel.cohort == g))
            raise ValueError(
                f"cohort {int(g)} ({n_units} units) has no pre-period: no period before "
                f"{int(g)} - anticipation ({anticipation}) in the panel (first period "
                f"{int(periods[0])}); drop these units or code them as always treated elsewhere"
            )
        base_post = int(pre[-1])
        if options.base_period == "varying":
            for t in range(1, len(periods)):
                b = base_post if periods[t] >= g else t - 1
                cells.append(_Cell(int(g), t, b))
        else:
            cells.extend(_Cell(int(g), t, base_post) for t in range(len(periods)))
    return cells


def att_gt(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    covariates: Sequence[str] | pd.DataFrame | None = None,
    method: str = "dr",
    options: CellOptions = DEFAULT_OPTIONS,
    n_boot: int = 0,
    boot_weights: str = "mammen",
    random_state: int | np.random.Generator | None = None,
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ATTGTResult:
    """Estimate every ATT(g, t) of a staggered adoption panel (Callaway–Sant'Anna).

    Parameters
    ----------
    data : pandas.DataFrame or None
        Long panel, one row per unit and period (``None`` if every role is an array).
    columns : PanelColumns
        The unit, period, cohort, cluster and outcome roles: column names of ``data`` or
        per-row arrays (:class:`vaer.did.panel.PanelColumns`).
    covariates : list of str, pandas.DataFrame or None
        Time-invariant pre-period covariates: column names (value at each unit's first
        observed period) or a DataFrame indexed by unit id. A constant is always added.
    method : {"dr", "ipw", "reg"}
        Doubly robust (Sant'Anna–Zhao 2020, R ``drdid_panel``), normalised IPW, or
        outcome regression.
    options : CellOptions
        Comparison group, anticipation, base period, ``alpha``, inference mode and
        propensity trimming (dr, ipw) of the cells (:class:`CellOptions`).
    n_boot : int
        Cluster multiplier bootstrap draws for the simultaneous band over all cells
        (0 = no bootstrap; asymptotic mode only).
    boot_weights : {"mammen", "rademacher"}
        Multiplier distribution.
    random_state : int, numpy.random.Generator or None
        Seed of the bootstrap.
    backend : vaer.compute.Backend, optional
        Where the cells are fitted, one task per cell sample (default: in this process);
        the result is the same on every backend (:func:`fit_cells`).
    progress : callable, optional
        Called with ``(samples fitted, samples)`` as cell samples finish.

    Returns
    -------
    ATTGTResult
        Cells, estimates, clustered standard errors, influence functions, drop counts.

    Raises
    ------
    ValueError
        On an invalid method or bootstrap option, invalid panel (see
        :func:`vaer.did.panel.build_panel`), no treated units, no never-treated units
        with ``control_group="never"``, a cohort with no pre-period, fewer than two
        clusters, a singular covariate design or a non-converging propensity model in
        some cell, or no estimable cell.
    """
    check_method(method)
    panel = checked_panel(data, columns, covariates, options, n_boot, boot_weights)
    fit_cell = _DRDIDCell(panel.covariates, method, options.trim_level)
    result = fit_cells(panel, fit_cell, method, options, backend=backend, progress=progress)
    if n_boot == 0:
        return result
    boot = multiplier_bootstrap(
        result.influence, panel.cluster, panel.n_clusters, n_boot=n_boot, weights=boot_weights,
        alpha=options.alpha, random_state=random_state,
    )  # fmt: skip
    return dataclasses.replace(result, crit_value=boot.crit_value, se_boot=boot.se)


@dataclass(frozen=True)
class _DRDIDCell:
    """:func:`att_gt`'s cell fitter: :func:`vaer.did.drdid.two_period_att` on the
    sample's rows of the ``(n_units, k)`` design ``covariates`` (a picklable
    :data:`CellFitter`)."""

    covariates: np.ndarray
    method: str
    trim_level: float

    def __call__(self, delta: np.ndarray, treated: np.ndarray, rows: np.ndarray) -> TwoPeriodFit:
        return two_period_att(
            delta, treated, self.covariates[rows], method=self.method, trim_level=self.trim_level
        )


def checked_panel(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    covariates: Sequence[str] | pd.DataFrame | None,
    options: CellOptions,
    n_boot: int = 0,
    boot_weights: str = "mammen",
) -> Panel:
    """The validated panel of an ATT(g, t) estimation, after the checks every estimator
    of the cells shares (bootstrap options, clusters, treated and comparison units,
    periods); the arguments are :func:`att_gt`'s."""
    check_bootstrap_args(n_boot, boot_weights, options.alpha)
    if options.inference == "small_cluster" and n_boot:
        raise ValueError(
            "`n_boot` draws a bootstrap band for inference='asymptotic'; the small-cluster "
            "mode's bands are Bonferroni-t: pass n_boot=0"
        )
    panel = build_panel(data, columns, covariates)
    if panel.n_clusters < 2:
        raise ValueError(f"cluster-robust inference needs >= 2 clusters; got {panel.n_clusters}")
    if not np.any(panel.cohort > 0):
        raise ValueError("no treated units: every unit has cohort 0/NaN (never treated)")
    if options.control_group == "never" and not np.any(panel.cohort == 0):
        raise ValueError(
            "control_group='never' needs never-treated units (cohort 0 or NaN) and there are "
            "none; use control_group='notyet'"
        )
    if len(panel.periods) < 2:
        raise ValueError(f"the panel needs >= 2 periods; got {len(panel.periods)}")
    return panel


CellFitter = Callable[[np.ndarray, np.ndarray, np.ndarray], TwoPeriodFit]
"""Fits the cells that share one sample: ``(delta_y, treated, rows) -> TwoPeriodFit``, with
``delta_y`` the ``(n_s, m)`` outcome changes of the cells, ``treated`` the ``(n_s,)`` cohort
indicator and ``rows`` the sample's row numbers in the panel's unit arrays. It runs
wherever the backend puts its task (another process, another machine), so it must be a
pure function of its arguments and of what it closes over (seeds included)."""


@dataclass(frozen=True)
class _Sample:
    """One task of :func:`fit_cells`: the cells of cohort ``group`` that share their units
    (``rows`` of the panel), with their periods ``t`` and base periods ``b`` (indices)."""

    group: int
    rows: np.ndarray
    t: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class _SampleFit:
    """The task function of :func:`fit_cells`: ``fit_cell`` on one :class:`_Sample`.

    The outcome matrix and cohorts travel once with the function (Ray ships a ``map``'s
    function once); a sample's outcome changes are built where it is fitted. The fit
    runs with one BLAS thread: OpenBLAS splits a large product's sums over its threads,
    so the last bits of a fit depended on the thread count (1e-14 on ATT(g, t) of a
    100,000-firm panel between this process and a worker with one thread); with one
    thread everywhere the result is the same bit for bit on every backend, and on this
    2-core machine faster (cs_did on 1,000,000 firm-years: 0.34 s instead of 0.59 s).
    An :class:`EstimationError` is returned, not raised, so that every backend reports
    it the same way (the first failing sample in input order).
    """

    fit_cell: CellFitter
    outcome: np.ndarray
    cohort: np.ndarray

    def __call__(self, sample: _Sample) -> TwoPeriodFit | EstimationError:
        y = self.outcome[sample.rows]
        treated = self.cohort[sample.rows] == sample.group
        try:
            with _blas_controller().limit(limits=1, user_api="blas"):
                return self.fit_cell(y[:, sample.t] - y[:, sample.b], treated, sample.rows)
        except EstimationError as error:
            return error


@functools.cache
def _blas_controller() -> Any:
    """This process's ``threadpoolctl.ThreadpoolController``, built once: building one
    inspects every loaded library (milliseconds), which a panel with one sample per cell
    (unbalanced) paid once per cell."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def fit_cells(
    panel: Panel,
    fit_cell: CellFitter,
    method: str,
    options: CellOptions,
    *,
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ATTGTResult:
    """Every ATT(g, t) of ``panel`` with ``fit_cell``, clustered and counted (no bootstrap
    band: :func:`att_gt` adds it).

    The cells, their samples (cohort ``g`` and the comparison group observed in both the
    base period and ``t``), the influence functions' rescaling, the inference and the
    drop counts are the same for every estimator of the cells; only the two-period fit
    differs (:func:`att_gt`'s R ``DRDID`` estimators, :func:`vaer.did.dml_did.dml_att_gt`'s
    cross-fitted ones). ``method`` names the estimator in the result; ``options`` are the
    cells' (:class:`CellOptions`), ``backend`` and ``progress`` :func:`att_gt`'s.

    The cells of a cohort that share their units (a *sample*: with never-treated controls
    on a balanced panel, all of the cohort's cells) are fitted together, one task per
    sample, by ``backend.map`` (default: in this process). The tasks are pure functions
    of the panel and ``fit_cell`` and the results are assembled in input order, so the
    result does not depend on the backend. ``progress`` is called with
    ``(samples fitted, samples)`` as tasks finish.
    """
    cells = _cells(panel, options)
    periods, cohort, observed = panel.periods, panel.cohort, panel.observed
    n = panel.n_units
    kept: list[_Cell] = []
    records: list[dict[str, int]] = []
    skipped: list[dict[str, object]] = []
    groups: dict[tuple[int, bytes], list[int]] = {}
    masks: dict[tuple[int, bytes], np.ndarray] = {}
    reference: list[int] = []
    for cell in cells:
        treated, control = cell_arms(panel, cell, options)
        obs_t, obs_b = observed[:, cell.t], observed[:, cell.b]
        both = obs_t & obs_b
        eligible = treated | control
        record = {
            "group": cell.group,
            "time": int(periods[cell.t]),
            "base_period": int(periods[cell.b]),
            "eligible_treated": int(treated.sum()),
            "eligible_control": int(control.sum()),
            "n_treated": int((treated & both).sum()),
            "n_control": int((control & both).sum()),
            "missing_base_only": int((eligible & obs_t & ~obs_b).sum()),
            "missing_time_only": int((eligible & obs_b & ~obs_t).sum()),
            "missing_both": int((eligible & ~obs_t & ~obs_b).sum()),
            "trimmed": 0,
        }
        if record["n_treated"] == 0 or record["n_control"] == 0:
            who = "treated" if record["n_treated"] == 0 else "comparison"
            skipped.append(
                {
                    "group": record["group"],
                    "time": record["time"],
                    "base_period": record["base_period"],
                    "reason": f"no {who} unit observed in both the base period and t",
                }
            )
            continue
        position = len(kept)
        kept.append(cell)
        records.append(record)
        if cell.t == cell.b:
            reference.append(position)
            continue
        sample = eligible & both
        key = (cell.group, np.packbits(sample).tobytes())
        groups.setdefault(key, []).append(position)
        masks[key] = sample
    if not kept:
        raise ValueError("no (g, t) cell has both treated and comparison units observed")

    samples = [
        _Sample(
            group=key[0],
            rows=np.flatnonzero(masks[key]),
            t=np.asarray([kept[p].t for p in positions], dtype=np.int64),
            b=np.asarray([kept[p].b for p in positions], dtype=np.int64),
        )
        for key, positions in groups.items()
    ]
    runner = backend if backend is not None else LocalBackend()
    fits = runner.map(_SampleFit(fit_cell, panel.outcome, cohort), samples, on_done=progress)
    att = np.zeros(len(kept))
    influence = np.zeros((n, len(kept)))
    for sample, positions, fit in zip(samples, groups.values(), fits, strict=True):
        if isinstance(fit, EstimationError):
            names = ", ".join(f"({sample.group}, {int(periods[t])})" for t in sample.t)
            raise ValueError(f"cells (g, t) = {names}: {fit}")
        rows = sample.rows
        att[positions] = fit.att
        scale = np.full(len(rows), n / len(rows))
        if options.inference == "small_cluster":
            treated = cohort[rows] == sample.group
            scale *= arm_leverage_factor(panel.cluster[rows], treated, panel.n_clusters)
        influence[np.ix_(rows, np.asarray(positions, dtype=np.int64))] = (
            fit.influence * scale[:, None]
        )
        for p in positions:
            records[p]["trimmed"] = fit.n_trimmed

    se, df = cluster_se_df(influence, panel.cluster, panel.n_clusters, options.inference)
    se[reference] = np.nan
    df[reference] = np.nan
    drops = pd.DataFrame.from_records(records)
    return ATTGTResult(
        group=np.array([c.group for c in kept], dtype=np.int64),
        time=periods[[c.t for c in kept]],
        base_period=periods[[c.b for c in kept]],
        att=att,
        se=se,
        n_treated=drops["n_treated"].to_numpy(),
        n_control=drops["n_control"].to_numpy(),
        influence=influence,
        unit_ids=panel.unit_ids,
        cohort=cohort,
        cluster=panel.cluster,
        cluster_ids=panel.cluster_ids,
        periods=periods,
        drops=drops,
        skipped=pd.DataFrame(skipped, columns=["group", "time", "base_period", "reason"]),
        df=df,
        **result_options(method, options),
    )
