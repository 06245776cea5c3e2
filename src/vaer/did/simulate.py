"""A staggered-adoption firm panel with city shocks and a known ATT(g, t).

Design (all parameters below are arguments):

- ``n_clusters`` cities with development ``z_c ~ N(0, 1)``; each city adopts in one of
  the ``cohorts`` or never, independently, with probabilities
  ``P(never | z) = 1 / (1 + K exp(a + b z))`` and ``P(g | z) = exp(a + b z) / (1 + K
  exp(a + b z))`` for each of the ``K`` cohorts (``a = adoption_shift``,
  ``b = adoption_slope``): developed cities adopt more often, so adoption is confounded.
- ``n_units`` firms placed in cities uniformly at random; covariates
  ``x1 = z_c + N(0, 1)`` and ``x2 ~ Bernoulli(0.5)``.
- Untreated outcome ``Y_it(0) = alpha_i + 0.1 (t - t_0) + trend (t - t_0)(x1 + 0.5 x2)
  + u_ct + e_it`` with ``alpha_i = x1 + N(0, 1)``, city-year shocks
  ``u_ct ~ N(0, cluster_sd^2)`` and ``e_it ~ N(0, noise_sd^2)``: parallel trends hold
  conditional on ``(x1, x2)`` (linearly), not unconditionally when ``trend != 0``.
- Effect for a firm of cohort ``g`` at ``t >= g``: ``tau(g, e) (1 + 0.5 eta_i)`` with
  ``e = t - g``, ``tau(g, e) = (1 + 0.3 e)(1 + 0.25 k_g)`` (``k_g`` = 0, 1, 2, ... the
  cohort's rank) and ``eta_i ~ N(0, 1)`` independent of everything, so
  ``ATT(g, t) = tau(g, t - g)`` exactly; no anticipation.
- ``pretrend_slope = lambda`` (default 0) breaks parallel trends with a known linear
  violation: the untreated outcome of every firm of an adopting cohort gets
  ``+ lambda (t - t_0)``. The event-study estimand against a reference period ``r``
  (universal base ``g - 1``) is then ``ATT(e) + lambda (e - r)`` for every cohort, so the
  violation ``delta(e) = lambda (e + 1)`` is linear: its second differences are 0 (it
  lies in Rambachan and Roth's ``Delta^SD(M)`` for every ``M >= 0``) and its post-period
  changes equal the pre-period ones (``Delta^RM(Mbar)`` for ``Mbar >= 1``)
  (:meth:`StaggeredTruth.violation`). ``ATT(g, t)`` itself is unchanged.
- Firm types (``type_effects`` given; none by default, and then the panel is the one
  above draw for draw): the levels ``l_0, l_1, ...`` of a ``firm_type`` column (e.g.
  SOE / private / foreign), drawn after every other random number with
  ``P(l_k | z_c) = exp(k s z_c) / sum_j exp(j s z_c)`` (``s = type_slope``: later levels
  sit in more developed cities, which adopt more often, so type and adoption are
  confounded beyond ``x1``), a type-specific untreated trend ``type_trend * k * (t - t_0)``
  added to ``Y_it(0)`` (so a comparison of all types, or nuisances blind to the type, is
  biased), and the effect multiplied by ``m_k = type_effects[l_k]``:
  ``ATT_l(g, t) = m_l tau(g, t - g)`` exactly. All ``m_k`` equal (e.g.
  :data:`HOMOGENEOUS_TYPES`) is the homogeneous-effect variant: equal ATTs by type.
- Channels (``channels=True``; off by default, and then the panel is the one above draw
  for draw): three time-invariant pre-period mechanism proxies drawn after every other
  random number, ``spillover ~ N(0, 1)`` (knowledge spillover), ``export_cost ~ U(0, 1)``
  (export cost) and ``flexibility = 0.8 z_c + 0.6 N(0, 1)`` (supply-chain flexibility, a
  proxy that tracks city development and adoption but moves no effect), and an additive
  effect term ``h(x) = f_s(spillover) + f_c(export_cost)`` with
  ``f_s(s) = 0.6 s`` and ``f_c(c) = 1.2 (c^2 - 1/3)`` (population means 0) added to every
  treated firm-year: the effect of firm ``i`` at ``t >= g`` is
  ``tau(g, e) (1 + 0.5 eta_i) + h(x_i)``. ``ATT(g, t)`` is unchanged (the proxies are
  independent of adoption and ``E h = 0``). The firm's post-period average effect is
  ``A_g (1 + 0.5 eta_i) + h(x_i)`` with ``A_g`` the mean of ``tau(g, e)`` over its post
  periods; given adoption every cohort is equally likely whatever ``z`` (the cohorts
  share one adoption odds), so the **CATT** of a firm with covariates ``x``,
  ``E[post-period average effect | X = x, G > 0]``, is exactly ``mean_g A_g + h(x)``
  (:meth:`StaggeredTruth.catt_truth`), and the true SHAP value of proxy ``j`` is
  ``f_j(x_j) - mean f_j`` (additive effect; mean over the panel's firms, so a firm's
  values sum to its CATT minus the mean CATT; 0 for ``flexibility``, ``x1`` and ``x2``).
  Two yearly mediators are drawn as well, ``m_platform`` and ``m_null``:
  ``M_it = a_i + 0.05 (t - t_0) + 0.1 (t - t_0) x1 + v_ct + N(0, 1)`` with
  ``a_i ~ N(0, 1)`` and city-year shocks ``v_ct ~ N(0, cluster_sd^2)``, plus ``0.4``
  (``m_platform``) or ``0`` (``m_null``) in treated firm-years: their ATT(g, t) are
  exactly 0.4 and 0 (:data:`MEDIATOR_EFFECTS`) under parallel trends given ``x1``.
- ``unbalanced=True``: a firm enters at a random period (with probability 0.3, else at
  the first) and exits at a random later period (with probability 0.3, else stays),
  independently of everything else (missing completely at random), keeping >= 2 periods.

The population cohort shares ``P(G = g) = E_z[P(g | z)]`` and ``E[z | G = g]`` are
computed by Gauss–Hermite quadrature, so the truth of every aggregation is exact too, and
so is the pre-trend an estimator without covariates should find
(:meth:`StaggeredTruth.unconditional_pre_att`); with firm types, so are the joint shares
``P(G = g, L = l) = E_z[P(g | z) P(l | z)]`` and every aggregation of the ATT by type
(:meth:`StaggeredTruth.type_aggregate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.data.truth import Truth

HETEROGENEOUS_TYPES = {"soe": 0.5, "private": 1.0, "foreign": 1.5}
"""Firm types with effects half, once and one and a half times ``tau(g, e)``."""
HOMOGENEOUS_TYPES = {"soe": 1.0, "private": 1.0, "foreign": 1.0}
"""The same types (same selection and untreated trends) with equal effects."""
CHANNELS = {
    "knowledge_spillover": ["spillover"],
    "export_cost": ["export_cost"],
    "supply_chain": ["flexibility"],
}
"""Mechanism channel -> proxy columns of a panel simulated with ``channels=True``."""
MEDIATOR_EFFECTS = {"m_platform": 0.4, "m_null": 0.0}
"""True ATT(g, t) of each mediator of a panel simulated with ``channels=True``."""
CATT_FEATURES = ("x1", "x2", "spillover", "export_cost", "flexibility")
"""The pre-period covariates of a panel simulated with ``channels=True``."""


def channel_effect(spillover: np.ndarray, export_cost: np.ndarray) -> pd.DataFrame:
    """The additive terms ``f_j`` of the effect (module docstring), one column per proxy
    (``flexibility``, ``x1`` and ``x2`` have none: their columns are 0)."""
    s = np.asarray(spillover, dtype=np.float64)
    c = np.asarray(export_cost, dtype=np.float64)
    zero = np.zeros_like(s)
    return pd.DataFrame(
        {
            "x1": zero,
            "x2": zero,
            "spillover": 0.6 * s,
            "export_cost": 1.2 * (c**2 - 1.0 / 3.0),
            "flexibility": zero,
        }
    )


@dataclass(frozen=True)
class StaggeredTruth:
    """The exact estimands of a simulated staggered panel.

    Attributes
    ----------
    cohorts : tuple of int
        Adoption periods.
    periods : tuple of int
        Panel periods.
    cohort_share : dict
        Population share ``P(G = g)`` of each cohort (0 = never treated).
    mean_development : dict
        ``E[z | G = g]`` of each cohort.
    trend : float
        Strength of the covariate-specific trend.
    pretrend_slope : float
        Slope of the treated cohorts' untreated path (0: parallel trends hold given the
        covariates).
    type_effect : dict
        Firm-type level -> effect multiplier ``m_l`` (empty without firm types).
    type_cohort_share : dict
        Level -> {cohort -> ``P(G = g, L = l)``} (empty without firm types).
    """

    cohorts: tuple[int, ...]
    periods: tuple[int, ...]
    cohort_share: dict[int, float]
    mean_development: dict[int, float]
    trend: float
    pretrend_slope: float = 0.0

    def violation(self, event_time: int) -> float:
        """The parallel-trends violation ``pretrend_slope * (event_time + 1)`` of an
        event-time estimate against the reference period ``-1`` (universal base, no
        anticipation), the same for every cohort."""
        return self.pretrend_slope * (event_time + 1)

    type_effect: dict[str, float] = field(default_factory=dict)
    type_cohort_share: dict[str, dict[int, float]] = field(default_factory=dict)
    firm_covariates: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def post_average(self, group: int) -> float:
        """``A_g``: the mean of ``tau(g, t - g)`` over the panel's periods ``t >= g``."""
        return float(np.mean([self.tau(group, t) for t in self.periods if t >= group]))

    def catt_truth(self) -> Truth:
        """The exact CATT of every firm and its SHAP values (``channels=True`` only).

        The CATT of firm ``i`` is ``E[post-period average effect | X = x_i, G > 0] =
        mean_g A_g + h(x_i)`` (module docstring); ``shap`` holds ``f_j(x_ij) - mean_i
        f_j`` for every covariate of :data:`CATT_FEATURES`; ``mechanisms`` is
        :data:`CHANNELS` and ``mediator_effects`` :data:`MEDIATOR_EFFECTS`.

        Returns
        -------
        vaer.data.truth.Truth
            Indexed by firm id (the panel's ``firm`` column).

        Raises
        ------
        ValueError
            If the panel was simulated without ``channels=True``, or with firm types
            (their effect multipliers depend on city development, so the CATT given the
            covariates has no closed form).
        """
        if self.firm_covariates is None:
            raise ValueError(
                "the CATT truth needs a panel simulated with channels=True "
                "(simulate_staggered(..., channels=True))"
            )
        if self.type_effect:
            raise ValueError(
                "the CATT truth is exact only without firm types (type_effects=None): a "
                "type's effect multiplier depends on city development, not on the covariates"
            )
        cov = self.firm_covariates
        terms = channel_effect(cov["spillover"].to_numpy(), cov["export_cost"].to_numpy())
        terms.index = cov.index
        mean_a = float(np.mean([self.post_average(g) for g in self.cohorts]))
        catt = mean_a + terms.sum(axis=1).to_numpy()
        return Truth(
            units=cov.index.to_numpy(),
            tau=catt,
            shap=terms - terms.mean(),
            mechanisms={k: list(v) for k, v in CHANNELS.items()},
            mediator_effects=dict(MEDIATOR_EFFECTS),
        )

    def type_att_gt(self, level: str, group: int, time: int) -> float:
        """ATT of the firms of a type level in cell (g, t): ``m_l tau(g, t - g)``.

        Raises
        ------
        KeyError
            If the panel has no such level.
        """
        return self.type_effect[level] * self.tau(group, time)

    def type_aggregate(self, level: str, aggregation: str) -> tuple[dict[int, float], float]:
        """Exact aggregation of the ATT of one type level, weighting cohorts by their share
        within the level (as :func:`vaer.did.aggregate.aggregate` with no event window).

        Parameters
        ----------
        level : str
            A level of ``firm_type``.
        aggregation : {"simple", "dynamic", "group", "calendar"}

        Returns
        -------
        (dict, float)
            Key (event time, cohort or period; empty for ``"simple"``) -> value, and the
            overall aggregate.

        Raises
        ------
        KeyError
            If the panel has no such level.
        ValueError
            On an unknown aggregation.
        """
        share = self.type_cohort_share[level]
        first, last = self.periods[0], self.periods[-1]

        def att(g: int, t: int) -> float:
            return self.type_att_gt(level, g, t)

        def mean(cells: list[tuple[int, int]]) -> float:
            w = np.array([share[g] for g, _ in cells])
            return float(w @ np.array([att(g, t) for g, t in cells]) / w.sum())

        post = [(g, t) for g in self.cohorts for t in self.periods if t >= g]
        if aggregation == "simple":
            return {}, mean(post)
        if aggregation == "dynamic":
            events = sorted({t - g for g in self.cohorts for t in self.periods[1:]})
            keyed = {
                e: mean([(g, g + e) for g in self.cohorts if first <= g + e <= last])
                for e in events
            }
            return keyed, float(np.mean([v for e, v in keyed.items() if e >= 0]))
        if aggregation == "group":
            keyed = {g: float(np.mean([att(g, t) for t in self.periods if t >= g]))
                     for g in self.cohorts}  # fmt: skip
            w = np.array([share[g] for g in self.cohorts])
            return keyed, float(w @ np.array(list(keyed.values())) / w.sum())
        if aggregation == "calendar":
            keyed = {
                t: mean([(g, t) for g in self.cohorts if g <= t])
                for t in self.periods
                if t >= min(self.cohorts)
            }
            return keyed, float(np.mean(list(keyed.values())))
        raise ValueError(
            "`aggregation` must be one of ('simple', 'dynamic', 'group', 'calendar'); "
            f"got {aggregation!r}"
        )

    def unconditional_pre_att(self, event_time: int) -> float:
        """Expected pre-period event-time ATT (varying base) *without* covariate adjustment.

        With ``trend != 0`` parallel trends hold only given ``x1``; an unadjusted short
        difference of cohort ``g`` then has expectation
        ``trend * (E[z | G = g] - E[z | G = 0])``, since ``E[x1 | G] = E[z | G]``.
        Share-weighted over the cohorts with a cell at ``event_time < 0``.
        """
        first = self.periods[0]
        use = [g for g in self.cohorts if g + event_time > first]
        weights = np.array([self.cohort_share[g] for g in use])
        drift = np.array(
            [self.trend * (self.mean_development[g] - self.mean_development[0]) for g in use]
        )
        return float(weights @ drift / weights.sum())

    def tau(self, group: int, time: int) -> float:
        """ATT(g, t): ``tau(g, t - g)`` for ``t >= g``, else 0."""
        if time < group:
            return 0.0
        rank = self.cohorts.index(group)
        return (1.0 + 0.3 * (time - group)) * (1.0 + 0.25 * rank)

    def att_gt(self, group: np.ndarray, time: np.ndarray) -> np.ndarray:
        """ATT(g, t) for arrays of cells."""
        return np.array([self.tau(int(g), int(t)) for g, t in zip(group, time, strict=True)])

    def dynamic(self, event_time: int) -> float:
        """Event-time ATT: share-weighted mean of ATT(g, g + e) over cohorts with that cell."""
        last = self.periods[-1]
        first = self.periods[0]
        use = [g for g in self.cohorts if first <= g + event_time <= last]
        weights = np.array([self.cohort_share[g] for g in use])
        values = np.array([self.tau(g, g + event_time) for g in use])
        return float(weights @ values / weights.sum())

    def simple(self) -> float:
        """Simple aggregation: cohort-share weighted mean over all post cells."""
        weights, values = [], []
        for g in self.cohorts:
            for t in self.periods:
                if t >= g:
                    weights.append(self.cohort_share[g])
                    values.append(self.tau(g, t))
        w = np.array(weights)
        return float(w @ np.array(values) / w.sum())


def _shares(k: int, shift: float, slope: float) -> tuple[float, float, float, float]:
    """P(never), P(each cohort), E[z | never], E[z | a cohort] by Gauss–Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    odds = np.exp(shift + slope * nodes)
    never = 1.0 / (1.0 + k * odds)
    p_never = float(weights @ never)
    p_cohort = (1.0 - p_never) / k
    z_never = float(weights @ (nodes * never)) / p_never
    z_cohort = float(weights @ (nodes * odds * never)) / p_cohort
    return p_never, p_cohort, z_never, z_cohort


def _type_probs(z: np.ndarray, n_levels: int, slope: float) -> np.ndarray:
    """``(len(z), n_levels)`` type probabilities ``exp(k s z) / sum_j exp(j s z)``."""
    logits = slope * np.outer(z, np.arange(n_levels))
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def _type_shares(
    cohorts: tuple[int, ...], levels: list[str], shift: float, slope: float, type_slope: float
) -> dict[str, dict[int, float]]:
    """``P(G = g, L = l) = E_z[P(g | z) P(l | z)]`` by Gauss–Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    odds = np.exp(shift + slope * nodes)
    never = 1.0 / (1.0 + len(cohorts) * odds)
    types = _type_probs(nodes, len(levels), type_slope)
    return {
        level: {
            0: float(weights @ (never * types[:, k])),
            **{g: float(weights @ (odds * never * types[:, k])) for g in cohorts},
        }
        for k, level in enumerate(levels)
    }


def simulate_staggered(
    n_units: int = 2000,
    n_clusters: int = 60,
    *,
    periods: Sequence[int] = tuple(range(2010, 2020)),
    cohorts: Sequence[int] = (2014, 2015, 2016),
    cluster_sd: float = 0.5,
    noise_sd: float = 1.0,
    trend: float = 0.3,
    adoption_shift: float = -0.5,
    adoption_slope: float = 0.8,
    unbalanced: bool = False,
    pretrend_slope: float = 0.0,
    type_effects: Mapping[str, float] | None = None,
    type_slope: float = 0.5,
    type_trend: float = 0.1,
    channels: bool = False,
    random_state: int | np.random.Generator | None = None,
) -> tuple[pd.DataFrame, StaggeredTruth]:
    """Simulate the staggered panel described in the module docstring.

    Parameters
    ----------
    n_units, n_clusters : int
        Firms and cities.
    periods, cohorts : sequence of int
        Panel periods (consecutive integers) and adoption periods (inside the panel,
        after its first period).
    cluster_sd, noise_sd : float
        Standard deviations of the city-year shock and the idiosyncratic error.
    trend : float
        Strength of the covariate-specific trend (0: unconditional parallel trends).
    adoption_shift, adoption_slope : float
        Intercept and slope of the adoption log-odds in city development.
    unbalanced : bool
        Random entry and exit (missing completely at random).
    pretrend_slope : float
        Slope per period added to the untreated outcome of the adopting cohorts' firms (a
        known linear violation of parallel trends; 0 keeps them parallel).
    type_effects : mapping of str to float or None
        Firm-type levels (in this order) and the effect multiplier of each; None (the
        default) draws no type and leaves the panel as without this option.
        :data:`HETEROGENEOUS_TYPES` and :data:`HOMOGENEOUS_TYPES` are two designs.
    type_slope : float
        Selection of the type levels on city development.
    type_trend : float
        Untreated trend of level ``k`` per period, times ``k``.
    channels : bool
        Draw the mechanism proxies, their additive effect terms and the two mediators
        (module docstring); the CATT truth is then :meth:`StaggeredTruth.catt_truth`.
    random_state : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    (pandas.DataFrame, StaggeredTruth)
        Long panel with columns firm, city, year, cohort (0 = never), x1, x2, y (and
        firm_type with ``type_effects``; spillover, export_cost, flexibility, m_platform
        and m_null with ``channels``); and the truth.

    Raises
    ------
    ValueError
        If ``type_effects`` is empty.
    """
    if type_effects is not None and len(type_effects) == 0:
        raise ValueError("`type_effects` must name at least one level (or be None)")
    rng = np.random.default_rng(random_state)
    periods = tuple(int(p) for p in periods)
    cohorts = tuple(int(g) for g in cohorts)
    k = len(cohorts)
    n_t = len(periods)
    z = rng.normal(size=n_clusters)
    odds = np.exp(adoption_shift + adoption_slope * z)
    probs = np.column_stack([np.ones(n_clusters), np.repeat(odds[:, None], k, axis=1)])
    probs /= probs.sum(axis=1, keepdims=True)
    draws = (probs.cumsum(axis=1) < rng.random(n_clusters)[:, None]).sum(axis=1)
    city_cohort = np.array((0, *cohorts))[draws]

    city = rng.integers(0, n_clusters, size=n_units)
    x1 = z[city] + rng.normal(size=n_units)
    x2 = rng.binomial(1, 0.5, size=n_units).astype(float)
    alpha = x1 + rng.normal(size=n_units)
    eta = rng.normal(size=n_units)
    g = city_cohort[city]
    shock = rng.normal(scale=cluster_sd, size=(n_clusters, n_t))
    t_rel = np.arange(n_t, dtype=float)
    year = np.array(periods)
    y0 = (
        alpha[:, None]
        + 0.1 * t_rel[None, :]
        + trend * t_rel[None, :] * (x1 + 0.5 * x2)[:, None]
        + shock[city]
        + rng.normal(scale=noise_sd, size=(n_units, n_t))
    )
    if pretrend_slope != 0.0:  # no arithmetic at 0: the default panel stays bit-identical
        y0 = y0 + pretrend_slope * t_rel[None, :] * (g > 0)[:, None]
    rank = np.array([cohorts.index(c) if c > 0 else 0 for c in g])
    e = year[None, :] - g[:, None]
    treated = (g[:, None] > 0) & (e >= 0)
    tau = (1.0 + 0.3 * e) * (1.0 + 0.25 * rank)[:, None] * (1.0 + 0.5 * eta)[:, None]
    y = y0 + np.where(treated, tau, 0.0)

    keep = np.ones((n_units, n_t), dtype=bool)
    if unbalanced:
        entry = np.where(rng.random(n_units) < 0.3, rng.integers(0, n_t - 1, n_units), 0)
        span = n_t - entry
        stay = rng.random(n_units) >= 0.3
        length = np.where(stay, span, 2 + (rng.random(n_units) * (span - 1)).astype(int))
        length = np.minimum(length, span)
        keep = (t_rel[None, :] >= entry[:, None]) & (t_rel[None, :] < (entry + length)[:, None])

    levels = [] if type_effects is None else [str(level) for level in type_effects]
    if type_effects is not None:  # drawn last: the panel without types is unchanged
        probs_t = _type_probs(z[city], len(levels), type_slope)
        kind = (probs_t.cumsum(axis=1) < rng.random(n_units)[:, None]).sum(axis=1)
        multiplier = np.array([float(type_effects[level]) for level in levels])[kind]
        y += type_trend * kind[:, None] * t_rel[None, :]
        y += np.where(treated, tau * (multiplier - 1.0)[:, None], 0.0)

    covariates = None
    mediators: dict[str, np.ndarray] = {}
    if channels:  # drawn last: the panel without channels is unchanged
        spillover = rng.normal(size=n_units)
        export_cost = rng.random(n_units)
        flexibility = 0.8 * z[city] + 0.6 * rng.normal(size=n_units)
        h = channel_effect(spillover, export_cost).sum(axis=1).to_numpy()
        y += np.where(treated, h[:, None], 0.0)
        for name, effect in MEDIATOR_EFFECTS.items():
            base = rng.normal(size=n_units)
            city_m = rng.normal(scale=cluster_sd, size=(n_clusters, n_t))
            path = (
                base[:, None]
                + (0.05 + 0.1 * x1[:, None]) * t_rel[None, :]
                + city_m[city]
                + rng.normal(size=(n_units, n_t))
            )
            mediators[name] = path + np.where(treated, effect, 0.0)
        covariates = pd.DataFrame(
            {"x1": x1, "x2": x2, "spillover": spillover, "export_cost": export_cost,
             "flexibility": flexibility},
            index=pd.Index(np.arange(n_units), name="firm"),
        )  # fmt: skip

    firm_idx, t_idx = np.nonzero(keep)
    frame = pd.DataFrame(
        {
            "firm": firm_idx,
            "city": city[firm_idx],
            "year": year[t_idx],
            "cohort": g[firm_idx],
            "x1": x1[firm_idx],
            "x2": x2[firm_idx],
            "y": y[firm_idx, t_idx],
        }
    )
    if type_effects is not None:
        frame["firm_type"] = np.array(levels, dtype=object)[kind[firm_idx]]
    if covariates is not None:
        for name in ("spillover", "export_cost", "flexibility"):
            frame[name] = covariates[name].to_numpy()[firm_idx]
        for name, values in mediators.items():
            frame[name] = values[firm_idx, t_idx]
    p_never, p_cohort, z_never, z_cohort = _shares(k, adoption_shift, adoption_slope)
    truth = StaggeredTruth(
        cohorts=cohorts,
        periods=periods,
        cohort_share={0: p_never, **{c: p_cohort for c in cohorts}},
        mean_development={0: z_never, **{c: z_cohort for c in cohorts}},
        trend=float(trend),
        pretrend_slope=float(pretrend_slope),
        type_effect={level: float(type_effects[level]) for level in levels}
        if type_effects is not None
        else {},
        type_cohort_share=_type_shares(cohorts, levels, adoption_shift, adoption_slope, type_slope)
        if levels
        else {},
        firm_covariates=covariates,
    )
    return frame, truth
