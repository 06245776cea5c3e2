"""Honest DiD: confidence sets robust to bounded violations of parallel trends.

Rambachan and Roth (2023). The event-study estimates ``beta_hat`` (pre periods, then
post periods; the reference period, fixed at 0, left out) satisfy
``beta_hat ~ N(beta, Sigma)`` with ``beta = delta + (0, tau_post)``: ``delta`` is the
difference in trends of treated and comparison units (``delta_0 = 0`` at the reference
period), ``tau_post`` the effects. Parallel trends say ``delta_post = 0``; the honest
approach only assumes ``delta`` in a set ``Delta`` and gives confidence sets for
``theta = l' tau_post`` (here each post event time, and optionally their mean) that are
valid uniformly over ``Delta``:

- **Relative magnitudes** ``Delta^RM(Mbar)``: every post-period change of the trend
  ``|delta_{t+1} - delta_t|``, ``t >= 0``, is at most ``Mbar`` times the largest pre-period
  one. A union of ``2 T_pre`` polyhedra (which pre period attains the maximum, and its
  sign); the confidence set is the union of the conditional-least-favourable hybrid ARP
  confidence sets of the polyhedra (Rambachan and Roth, Lemma 2.2 and section 3.2;
  :mod:`vaer.did.honest_arp`), each the set of ``theta`` on a grid the test accepts, with
  its ends refined by bisection. Only the moments involving post periods are used (R
  ``HonestDiD``'s ``postPeriodMomentsOnly``): the pre-period moments of a polyhedron
  only say which pre period is the largest, and the union over polyhedra is
  ``Delta^RM`` without them. The FLCI is not used here: ``Delta^RM`` is not convex and
  Rambachan and Roth (section 4.2) show FLCIs can be inconsistent for it, while the
  hybrid test has uniform size and is consistent.
- **Smoothness** ``Delta^SD(M)``: the second differences of ``delta`` are at most ``M``
  in absolute value (``M = 0``: a linear trend, extrapolated from the pre periods). The
  optimal fixed-length confidence interval (FLCI; :mod:`vaer.did.honest_flci`), which
  Rambachan and Roth (section 4.1) recommend for ``Delta^SD``: near-optimal length, and
  uniformly valid since it is an affine estimator with its worst-case bias accounted for.

Both are what R ``HonestDiD`` computes by default for these two restrictions
(``createSensitivityResults`` with ``method = "FLCI"``; ``..._relativeMagnitudes`` with
``method = "C-LF"``), and the values agree with the ``honestdid`` Python port of it
(``tests/test_did_honest.py``).

The **breakdown value** of a target is the smallest ``Mbar`` (or ``M``) at which the
robust confidence set includes 0, found by doubling then bisection to a relative
tolerance (assuming, as the sensitivity plots of the paper do, that the set grows with
the bound); 0 when the ordinary interval already includes 0.

References
----------
Rambachan, A. and Roth, J. (2023), "A more credible approach to parallel trends",
Review of Economic Studies 90(5), 2555-2591.
Andrews, I., Roth, J. and Pakes, A. (2023), "Inference for linear conditional moment
inequalities", Review of Economic Studies 90(6), 2763-2791.
Armstrong, T. B. and Kolesar, M. (2018), "Optimal inference in a class of regression
models", Econometrica 86(2), 655-683.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from vaer.did.aggregate import aggregate
from vaer.did.att_gt import ATTGTResult
from vaer.did.honest_arp import (
    gaussian_draws,
    hybrid_accept,
    moment_problem,
    nuisance_design,
    vertices,
)
from vaer.did.honest_flci import flci
from vaer.did.inference import scaled_cluster_sums

METHODS = ("relative_magnitude", "smoothness")
BOUND_NAMES = {"relative_magnitude": "Mbar", "smoothness": "M"}


def _check_inputs(beta: np.ndarray, sigma: np.ndarray, n_pre: int, alpha: float) -> int:
    """Validate ``beta``/``sigma``/``n_pre``/``alpha``; return ``n_post``."""
    if beta.ndim != 1 or sigma.shape != (len(beta), len(beta)):
        raise ValueError(
            f"`sigma` must be a square matrix matching `beta`; got beta {beta.shape}, "
            f"sigma {sigma.shape}"
        )
    if not np.all(np.isfinite(beta)) or not np.all(np.isfinite(sigma)):
        raise ValueError("`beta` and `sigma` must be finite")
    if not 1 <= n_pre < len(beta):
        raise ValueError(
            f"`n_pre` must be between 1 and len(beta) - 1 = {len(beta) - 1}; got {n_pre}"
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1); got {alpha}")
    return len(beta) - n_pre


def relative_magnitude_pieces(n_pre: int, n_post: int, mbar: float) -> list[np.ndarray]:
    """The post-period moment matrices ``A`` (``A delta <= 0``) of ``Delta^RM(Mbar)``.

    One matrix per pre-period first difference ``s`` (``delta_{s+1} - delta_s``, the
    last being ``delta_0 - delta_{-1}``) and sign: rows
    ``+/- (delta_{t+1} - delta_t) - Mbar sign (delta_{s+1} - delta_s) <= 0`` for every
    post period ``t >= 0``; columns ``delta`` without the reference period. Identical
    matrices (``Mbar = 0``) appear once.
    """
    n_full = n_pre + 1 + n_post
    diff = np.zeros((n_full - 1, n_full))
    for r in range(n_full - 1):
        diff[r, r], diff[r, r + 1] = -1.0, 1.0
    post = diff[n_pre:]
    pieces: dict[bytes, np.ndarray] = {}
    for s in range(n_pre):
        for sign in (1.0, -1.0):
            bound = mbar * sign * diff[s]
            rows = np.vstack([post - bound, -post - bound])
            rows = np.delete(rows, n_pre, axis=1)
            rows = rows[np.any(np.abs(rows) > 1e-12, axis=1)]
            pieces.setdefault((np.round(rows, 12) + 0.0).tobytes(), rows)  # -0.0 -> 0.0
    return list(pieces.values())


def original_ci(
    beta: np.ndarray, sigma: np.ndarray, n_pre: int, l_vec: np.ndarray, alpha: float = 0.05
) -> tuple[float, float]:
    """The usual interval ``l' beta_post +/- z sd`` (exact parallel trends)."""
    estimate = float(l_vec @ beta[n_pre:])
    sd = float(np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec))
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    return estimate - z * sd, estimate + z * sd


def relative_magnitude_ci(
    beta: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    l_vec: np.ndarray,
    mbar: float,
    alpha: float = 0.05,
    *,
    kappa: float | None = None,
    n_sims: int = 10_000,
    grid_points: int = 200,
    grid: tuple[float, float] | None = None,
    refine: bool = True,
    random_state: int | np.random.Generator | None = 0,
    draws: np.ndarray | None = None,
) -> tuple[float, float]:
    """Hybrid ARP confidence set for ``l' tau_post`` under ``Delta^RM(Mbar)``.

    Parameters
    ----------
    beta, sigma : numpy.ndarray
        Event-study estimates (pre, then post; no reference period) and covariance.
    n_pre : int
        Pre periods (>= 1; the relative-magnitudes bound needs a pre-period change, so
        at least 2 estimated pre periods are advisable).
    l_vec : numpy.ndarray
        ``(n_post,)`` target weights.
    mbar : float
        ``Mbar >= 0``.
    alpha : float
        One minus the coverage.
    kappa : float or None
        First-stage size of the hybrid (default ``alpha / 10`` as in ARP and HonestDiD).
    n_sims : int
        Draws for the least-favourable critical value.
    grid_points : int
        Null values tested on the grid (then each end is refined by bisection).
    grid : (float, float) or None
        Grid ends; default ``l' beta_post +/- (Mbar sum_t t |l_t| max_pre + 20 sd)`` with
        ``max_pre`` the largest estimated pre-period change, widened while the set
        touches an end.
    refine : bool
        Bisect between the outermost accepted and the next rejected grid points (to
        1e-6 of the grid range); without it the ends are grid points (as HonestDiD).
    random_state : int, numpy.random.Generator or None
        Seed of the least-favourable draws.
    draws : numpy.ndarray or None
        ``(n_sims, n)`` draws of ``N(0, sigma)`` to use instead (shared across targets and
        bounds by :func:`honest_did`).

    Returns
    -------
    (float, float)
        Lowest and highest accepted ``theta`` (the convex hull of the accepted set;
        NaN, NaN if nothing is accepted; +/- inf if still accepted at the widest grid).

    Raises
    ------
    ValueError
        On bad inputs or ``mbar < 0``.
    """
    beta, sigma = np.asarray(beta, float), np.asarray(sigma, float)
    l_vec = np.asarray(l_vec, dtype=float)
    n_post = _check_inputs(beta, sigma, n_pre, alpha)
    if len(l_vec) != n_post:
        raise ValueError(f"`l_vec` must have one weight per post period ({n_post})")
    if not mbar >= 0:
        raise ValueError(f"the relative-magnitudes bound `mbar` must be >= 0; got {mbar}")
    kappa = alpha / 10.0 if kappa is None else kappa
    if draws is None:
        draws = gaussian_draws(sigma, n_sims, np.random.default_rng(random_state))
    pieces = relative_magnitude_pieces(n_pre, n_post, mbar)
    # every piece has the same post-period columns, so the same dual cone
    rays = vertices(nuisance_design(pieces[0][:, n_pre:], l_vec), np.ones(len(pieces[0])))
    problems = [
        moment_problem(a, beta, sigma, n_pre, l_vec, kappa=kappa, draws=draws, rays=rays)
        for a in pieces
    ]

    def accept(theta: np.ndarray) -> np.ndarray:
        out = np.zeros(len(theta), dtype=bool)
        for problem in problems:
            out |= hybrid_accept(problem, theta, alpha, kappa)
        return out

    if grid is None:
        centre = float(l_vec @ beta[n_pre:])
        sd = float(np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec))
        pre = np.append(beta[:n_pre], 0.0)
        max_pre = float(np.max(np.abs(np.diff(pre))))
        half = mbar * float(np.arange(1, n_post + 1) @ np.abs(l_vec)) * max_pre + 20.0 * sd
        low, high, widen = centre - half, centre + half, 4
    else:
        (low, high), widen = grid, 0
    for attempt in range(widen + 1):
        points = np.linspace(low, high, grid_points)
        ok = accept(points)
        if not ok.any():
            return float("nan"), float("nan")
        first, last = int(np.argmax(ok)), int(len(ok) - 1 - np.argmax(ok[::-1]))
        edge = first == 0 or last == len(ok) - 1
        if not edge or attempt == widen:
            break
        centre, half = (low + high) / 2.0, (high - low)
        low, high = centre - half, centre + half
    lower = -np.inf if first == 0 and grid is None else float(points[first])
    upper = np.inf if last == len(ok) - 1 and grid is None else float(points[last])
    if refine:
        tol = 1e-6 * (high - low)
        if first > 0:
            lower = _bisect(accept, float(points[first - 1]), float(points[first]), tol)
        if last < len(ok) - 1:
            upper = _bisect(accept, float(points[last + 1]), float(points[last]), tol)
    return lower, upper


def _bisect(
    accept: Callable[[np.ndarray], np.ndarray], rejected: float, accepted: float, tol: float
) -> float:
    """The accepted end between a rejected and an accepted null value (16 points a round,
    so each round shrinks the bracket 17-fold)."""
    while abs(accepted - rejected) > tol:
        points = np.linspace(rejected, accepted, 18)[1:-1]
        ok = accept(points)
        if ok.any():
            k = int(np.argmax(ok))
            accepted, rejected = float(points[k]), float(points[k - 1]) if k else rejected
        else:
            rejected = float(points[-1])
    return accepted


def smoothness_ci(
    beta: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    l_vec: np.ndarray,
    m: float,
    alpha: float = 0.05,
    cluster_sums: np.ndarray | None = None,
) -> tuple[float, float]:
    """The optimal FLCI for ``l' tau_post`` under ``Delta^SD(M)``
    (:func:`vaer.did.honest_flci.flci`; with ``cluster_sums``, its small-cluster folded-t
    critical value)."""
    beta, sigma = np.asarray(beta, float), np.asarray(sigma, float)
    l_vec = np.asarray(l_vec, dtype=float)
    n_post = _check_inputs(beta, sigma, n_pre, alpha)
    if len(l_vec) != n_post:
        raise ValueError(f"`l_vec` must have one weight per post period ({n_post})")
    interval = flci(beta, sigma, n_pre, l_vec, m, alpha, cluster_sums=cluster_sums)
    return interval.low, interval.high


def breakdown_value(
    interval: Callable[[float], tuple[float, float]],
    *,
    start: float,
    rtol: float = 0.01,
    max_bound: float = 1e6,
    known: dict[float, tuple[float, float]] | None = None,
) -> float:
    """The smallest bound whose robust interval includes 0 (doubling, then bisection).

    Parameters
    ----------
    interval : callable
        ``bound -> (ci_low, ci_high)``.
    start : float
        First positive bound tried when the interval at 0 excludes 0 (and no known
        bound covers 0).
    rtol : float
        Relative tolerance of the bisection.
    max_bound : float
        Give up (return inf) beyond it.
    known : dict or None
        Intervals already computed, ``bound -> (ci_low, ci_high)``: the search starts
        between the largest one excluding 0 and the next one.
    """
    known = dict(known or {})

    def covers(bound: float) -> bool:
        low, high = known[bound] if bound in known else interval(bound)
        if np.isnan(low) or np.isnan(high):  # nothing accepted: the data reject Delta
            return False
        return bool(low <= 0.0 <= high)

    if covers(0.0):
        return 0.0
    low, high = 0.0, start
    ordered = sorted(b for b in known if b > 0)
    covering = [b for b in ordered if covers(b)]
    if covering:
        high = covering[0]
        low = max([b for b in ordered if b < high], default=0.0)
    while not covers(high):
        low, high = high, 2.0 * high
        if high > max_bound:
            return float("inf")
    while high - low > rtol * high:
        middle = (low + high) / 2.0
        if covers(middle):
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class HonestResult:
    """Robust confidence sets of event-study targets.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method, bound and target: method (``original`` for the usual
        interval), bound_name (``Mbar``/``M``), bound, target (``e=<k>`` or
        ``average``), event_time (NaN for the average), estimate, ci_low, ci_high.
    breakdown : pandas.DataFrame
        One row per method and target: method, bound_name, target, event_time,
        breakdown (the smallest bound whose interval includes 0).
    event_times : numpy.ndarray
        Pre and post event times of ``beta`` (reference period left out).
    reference : int
        The reference event time.
    alpha : float
    smoothness_critical : str
        Critical value of the smoothness FLCIs: ``"folded_t"`` (small-cluster, with the
        event study's cluster sums) or ``"folded_normal"`` (Rambachan and Roth).
    """

    table: pd.DataFrame
    breakdown: pd.DataFrame
    event_times: np.ndarray
    reference: int
    alpha: float
    notes: tuple[str, ...] = field(default=())
    smoothness_critical: str = "folded_normal"


def honest_did(
    beta: np.ndarray,
    sigma: np.ndarray,
    event_times: Sequence[int] | np.ndarray,
    *,
    reference: int = -1,
    methods: Sequence[str] = METHODS,
    mbar: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    m: Sequence[float] | None = None,
    average: bool = True,
    alpha: float = 0.05,
    breakdown: bool = True,
    random_state: int | None = 0,
    cluster_sums: np.ndarray | None = None,
) -> HonestResult:
    """Rambachan-Roth sensitivity analysis of an event study.

    Parameters
    ----------
    beta : numpy.ndarray
        ``(n,)`` event-study estimates at ``event_times``.
    sigma : numpy.ndarray
        ``(n, n)`` their covariance.
    event_times : sequence of int
        Consecutive event times except ``reference`` (absent), sorted.
    reference : int
        The reference period (``-1 - anticipation``): earlier ones are pre periods.
    methods : sequence of {"relative_magnitude", "smoothness"}
    mbar : sequence of float
        ``Mbar`` values for relative magnitudes.
    m : sequence of float or None
        ``M`` values for smoothness; default ``0`` to twice the largest absolute second
        difference of the pre-period estimates, in five steps.
    average : bool
        Also the mean of the post-period effects.
    alpha : float
        One minus the coverage.
    breakdown : bool
        Compute the breakdown values.
    random_state : int or None
        Seed of the least-favourable draws.
    cluster_sums : numpy.ndarray, optional
        ``(G, n)`` cluster sums of the estimates' influence functions, ``sigma`` their
        cross-product (:attr:`EventStudyInputs.cluster_sums`). Given, the smoothness
        FLCIs use a folded Student t critical value with the Satterthwaite degrees of
        freedom of their estimator (:mod:`vaer.did.honest_flci`, "Few clusters");
        default: the folded normal of Rambachan and Roth.

    Returns
    -------
    HonestResult

    Raises
    ------
    ValueError
        On an unknown method, non-consecutive event times, fewer than two pre periods
        or no post period, or a negative bound.
    """
    unknown = [x for x in methods if x not in METHODS]
    if unknown:
        raise ValueError(f"honest DiD methods must be among {METHODS}; got {unknown}")
    times = np.asarray(event_times, dtype=int)
    beta, sigma = np.asarray(beta, float), np.asarray(sigma, float)
    if len(times) != len(beta):
        raise ValueError(f"`event_times` has {len(times)} entries for {len(beta)} estimates")
    full = np.sort(np.append(times, reference))
    if np.any(np.diff(full) != 1):
        raise ValueError(
            f"event times must be consecutive around the reference period {reference}; got "
            f"{times.tolist()}"
        )
    n_pre = int(np.sum(times < reference))
    if n_pre < 2 or n_pre == len(times):
        raise ValueError(
            f"honest DiD needs >= 2 pre periods and >= 1 post period; got {n_pre} pre and "
            f"{len(times) - n_pre} post"
        )
    if any(b < 0 for b in mbar) or (m is not None and any(b < 0 for b in m)):
        raise ValueError("the bounds `mbar` and `m` must be >= 0")
    _check_inputs(beta, sigma, n_pre, alpha)
    n_post = len(times) - n_pre
    post_times = times[n_pre:]
    targets: list[tuple[str, float, np.ndarray]] = [
        (f"e={int(e)}", float(e), np.eye(n_post)[k]) for k, e in enumerate(post_times)
    ]
    if average and n_post > 1:
        targets.append(("average", float("nan"), np.full(n_post, 1.0 / n_post)))
    if m is None:
        pre = np.append(beta[:n_pre], 0.0)
        scale = float(np.max(np.abs(np.diff(pre, 2)))) if n_pre >= 2 else 0.0
        m = tuple(np.linspace(0.0, 2.0 * scale, 5)) if scale > 0 else (0.0,)
    draws = gaussian_draws(sigma, 10_000, np.random.default_rng(random_state))
    rows: list[dict[str, object]] = []
    breaks: list[dict[str, object]] = []
    for name, event, l_vec in targets:
        estimate = float(l_vec @ beta[n_pre:])
        low, high = original_ci(beta, sigma, n_pre, l_vec, alpha)
        base = {"target": name, "event_time": event, "estimate": estimate}
        rows.append({"method": "original", "bound_name": "", "bound": 0.0, **base,
                     "ci_low": low, "ci_high": high})  # fmt: skip
        for method in methods:
            bounds = mbar if method == "relative_magnitude" else m
            interval = _interval(method, beta, sigma, n_pre, l_vec, alpha, draws, cluster_sums)
            known: dict[float, tuple[float, float]] = {}
            for bound in bounds:
                ci_low, ci_high = known[float(bound)] = interval(float(bound))
                rows.append({"method": method, "bound_name": BOUND_NAMES[method],
                             "bound": float(bound), **base, "ci_low": ci_low,
                             "ci_high": ci_high})  # fmt: skip
            if breakdown:
                sd = float(np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec))
                start = 0.25 if method == "relative_magnitude" else sd / 4.0
                value = breakdown_value(interval, start=start, known=known)
                breaks.append({"method": method, "bound_name": BOUND_NAMES[method],
                               "target": name, "event_time": event,
                               "breakdown": value})  # fmt: skip
    return HonestResult(
        table=pd.DataFrame(rows),
        breakdown=pd.DataFrame(
            breaks, columns=["method", "bound_name", "target", "event_time", "breakdown"]
        ),
        event_times=times,
        reference=int(reference),
        alpha=float(alpha),
        smoothness_critical="folded_normal" if cluster_sums is None else "folded_t",
    )


def _interval(
    method: str,
    beta: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    l_vec: np.ndarray,
    alpha: float,
    draws: np.ndarray,
    cluster_sums: np.ndarray | None,
) -> Callable[[float], tuple[float, float]]:
    if method == "relative_magnitude":
        return lambda bound: relative_magnitude_ci(
            beta, sigma, n_pre, l_vec, bound, alpha, draws=draws
        )
    return lambda bound: smoothness_ci(beta, sigma, n_pre, l_vec, bound, alpha, cluster_sums)


@dataclass(frozen=True)
class EventStudyInputs:
    """What honest DiD needs from an event study.

    Attributes
    ----------
    beta : numpy.ndarray
        ``(n,)`` event-time ATTs (reference period left out).
    sigma : numpy.ndarray
        ``(n, n)`` their cluster-robust covariance.
    event_times : numpy.ndarray
        ``(n,)`` their event times.
    reference : int
        The reference event time ``-1 - anticipation``.
    cluster_sums : numpy.ndarray
        ``(G, n)`` scaled cluster sums of the event-time influence functions
        (:func:`vaer.did.inference.scaled_cluster_sums`): ``sigma = cluster_sums' cluster_sums``.
    inference : str
        The ATT(g, t)'s inference mode (``"small_cluster"`` or ``"asymptotic"``).
    """

    beta: np.ndarray
    sigma: np.ndarray
    event_times: np.ndarray
    reference: int
    cluster_sums: np.ndarray
    inference: str


def event_study_inputs(
    cells: ATTGTResult, *, min_e: float = -np.inf, max_e: float = np.inf
) -> EventStudyInputs:
    """The dynamic aggregation of ATT(g, t) and its covariance, for :func:`honest_did`.

    ``Sigma`` is the cluster-robust covariance of the event-time influence functions
    (:func:`vaer.did.inference.cluster_vcov`) in the ATT(g, t)'s inference mode: CR2-scaled
    influence functions without a ``G/(G-1)`` factor in the small-cluster mode, CR1 in the
    asymptotic one; its diagonal is the event study's squared standard errors.

    Parameters
    ----------
    cells : ATTGTResult
        ATT(g, t) with ``base_period="universal"``: Rambachan and Roth's ``beta`` are
        all measured from one reference period. (With a varying base the pre-period
        estimates are one-period changes, not the trend ``delta``.)
    min_e, max_e : float
        Event-time window.

    Returns
    -------
    EventStudyInputs

    Raises
    ------
    ValueError
        If the base period is not universal.
    """
    if cells.base_period_rule != "universal":
        raise ValueError(
            "honest DiD needs ATT(g, t) with base_period='universal' (every event time "
            f"measured from one reference period); got {cells.base_period_rule!r}"
        )
    dynamic = aggregate(cells, "dynamic", min_e=min_e, max_e=max_e)
    reference = -1 - cells.anticipation
    keep = dynamic.keys != reference
    influence = dynamic.influence[:, keep]
    sums = scaled_cluster_sums(influence, dynamic.cluster, dynamic.n_clusters, dynamic.inference)
    return EventStudyInputs(
        beta=dynamic.estimate[keep],
        sigma=np.asarray(sums.T @ sums),
        event_times=dynamic.keys[keep],
        reference=reference,
        cluster_sums=sums,
        inference=dynamic.inference,
    )
