r"""The built-in synthetic firm-year panel with a known effect for every firm and shock.

This is the demo's default data (``data.source: synthetic``, ``data.mode: panel``) and the
project's ground truth: :mod:`vaer.measures` turns it into an analysis table (one row
per firm for one shock window) exactly as it would a real customs panel, and the truth
object says what every estimator should find in that table.

Parameters (``data.panel``, :class:`vaer.config.panel.SyntheticPanelConfig`)
------------------------------------------------------------------------------
``n_firms`` (20000), ``n_cities`` (150), ``n_industries`` (30), ``start_year`` (2005),
``end_year`` (2022); effect :math:`\bar\tau` = ``ate`` (0.5), :math:`h` =
``heterogeneity`` (1), :math:`\kappa` = ``confounding`` (1), :math:`\gamma` =
``unobserved_confounding`` (0), :math:`\pi` = ``instrument_strength`` (1),
:math:`\sigma` = ``noise`` (0.5), ``cluster_effect`` (0.3, sd of city shocks),
``industry_effect`` (0.2, sd of industry shocks), :math:`\rho` = ``recovery_ratio``
(0.6), ``entry_share`` (0.35), ``exit_rate`` (0.03), ``zero_rate`` (0.02),
``missing_rate`` (0.03). Every symbol below is one of these or a fixed constant.

Panel
-----
Years :math:`t = t_0, \dots, t_1` (``start_year``..``end_year``, default 2005-2022).
``n_cities`` cities :math:`c` with Zipf-like sizes (probability :math:`\propto
\text{rank}^{-0.8}`), region east/central/west (0.6/0.25/0.15); ``n_industries``
industries :math:`k` with Gamma(2)-distributed shares.

City :math:`c`: development :math:`D_c \sim N(0,1)`, a digital endowment
:math:`v_c \sim N(0, 0.5^2)`, a Broadband-China pilot wave :math:`w_c \in
\{2014, 2015, 2016, \text{never}\}` with probabilities 0.1/0.1/0.1/0.7, drawn independently
of everything else. City-year columns (repeated on each firm-year row):

.. math::
    \text{city\_dev}_{ct} &= D_c + 0.04 (t - t_0) + N(0, 0.05^2),\\
    L_{ct} &= 0.6 \kappa D_c + v_c + 0.1 (t - t_0) + \pi\,\text{pilot}_{ct} + N(0, 0.05^2),
    \quad \text{pilot}_{ct} = 1\{t \ge w_c\},\\
    \text{ict\_share}_{ct} &= 2 e^{0.5 L_{ct}} \quad\text{(ICT-service employment, \% of
    city employment)},\\
    \text{broadband\_rate}_{ct} &= 100 / (1 + e^{-(L_{ct} - 1)}) \quad\text{(users per 100
    people)},\\
    \text{ecommerce\_density}_{ct} &= e^{1 + 0.5 L_{ct} + N(0, 0.1^2)} \quad\text{(e-commerce
    sellers per 10k people)},

with :math:`\kappa` = ``confounding`` and :math:`\pi` = ``instrument_strength``. ``pilot``
is the instrument: it raises VA and enters nothing else.

Firm :math:`i` in city :math:`c(i)`, industry :math:`k(i)`: types ownership (SOE/private/
foreign 0.2/0.55/0.25), size class (small/medium/large 0.5/0.35/0.15), trade mode
(general/processing/mixed 0.55/0.25/0.2), factor intensity (labour/capital/technology
0.4/0.35/0.25), region of its city. Latent productivity :math:`P_i = 0.5 D_c + N(0,1)`,
geographic agglomeration ``geo_agglom`` :math:`A_i = 0.7 D_c + N(0, 0.7^2)`, an
unobserved confounder :math:`U_i \sim N(0,1)` (never in the panel). Entry: a share
``entry_share`` of firms enters in a year uniform over :math:`t_0+1, \dots, t_1-2`, the
rest exist from :math:`t_0` (founded 1985-2004); ``firm_age`` = year - founding year.
Exit: after entry the firm survives each year with hazard :math:`h_i = \text{exit\_rate}
\cdot e^{-0.3 P_i}`; a firm has rows only from entry to the year before exit (exits are
missing rows, i.e. zero exports). Firm-year columns:

.. math::
    \text{productivity}_{it} &= P_i + 0.02 (t - t_0) + N(0, 0.1^2),\\
    \text{platform}_{it} &= \kappa (0.3 D_c + 0.4 P_i + 0.3 A_i) + \gamma U_i
        + 0.3 \pi\,\text{pilot}_{ct} + 0.05 (t - t_0) + b_i + N(0, 0.15^2),
        \quad b_i \sim N(0, 0.8^2),

with :math:`\gamma` = ``unobserved_confounding``. ``platform`` is the firm's participation
in digital platforms (share of sales through them, standardised). Mechanism proxies
(``knowledge_spillover``, ``congestion``, ``supply_chain_flex``, ``market_response``,
``export_cost``, ``smart_green``) are stationary AR(1) processes with coefficient 0.8 and
unit variance (knowledge spillover :math:`0.4 D_c + \sqrt{0.84}\,\cdot` AR(1)); a share
``missing_rate`` of the firm-years of ``market_response`` and ``smart_green`` is missing
(at random). Baseline exports: :math:`\log X_{it} = 8 + 0.8\,\text{size}_i + 0.3 P_i +
m_i + 0.05 (t - t_0) + q_{k(i)t} + a_{it}` with :math:`m_i \sim N(0,1)`, industry-year
:math:`q_{kt} \sim N(0, 0.1^2)`, stationary AR(1) :math:`a_{it}` (coefficient 0.7, sd 0.3),
size 0/1/2 for small/medium/large; a share ``zero_rate`` of baseline firm-years export
nothing (:math:`X_{it} = 0`).

Shock windows
-------------
The three windows of :data:`vaer.config.panel.SHOCK_WINDOWS` (``gfc2009``,
``tradewar2019``, ``covid2020``) are generated in time order, each overwriting the export
values of its trough and recovery years. For window :math:`s` with pre-period years
:math:`\mathcal P`, pre-shock year :math:`t^* = \max \mathcal P`, trough years
:math:`\mathcal T` and recovery years :math:`\mathcal R`, and every firm with a row at
:math:`t^*`:

- base level :math:`X^0_i` = mean of :math:`X_{it}` over the years of :math:`\mathcal P`
  in which the firm has a row (as in :func:`vaer.measures.growth.window_levels`);
- VA exposure, exactly as the default measures build the treatment
  (``measures.va_index: lq`` with ``roles.va_firm: platform``):
  :math:`VA_i = LQ_{c(i)t^*} + \text{platform}_{it^*}` with the location quotient
  :math:`LQ_{ct^*} = \text{ict\_share}_{ct^*} / \overline{\text{ict\_share}}_{t^*}`
  (mean over the cities with at least one firm at :math:`t^*`);
- effect, additive in the modifiers measured at :math:`t^*`,
  :math:`\tau_{is} = \bar\tau + h (F_i - \overline{F})`, :math:`F_i = \sum_j f_j(x_{ij})`,
  mean over the firms with a row at :math:`t^*`, :math:`\bar\tau` = ``ate``,
  :math:`h` = ``heterogeneity``, and

  .. math::
      f_\text{ownership} &= 0.25\,1\{\text{private}\} - 0.20\,1\{\text{SOE}\}, \quad
      f_\text{trade\_mode} = 0.20\,1\{\text{general}\} - 0.15\,1\{\text{processing}\},\\
      f_\text{factor\_intensity} &= 0.15\,1\{\text{technology}\}, \quad
      f_\text{knowledge\_spillover} = 0.30\,K, \quad
      f_\text{supply\_chain\_flex} = 0.20 \tanh(2 S), \quad f_\text{congestion} = -0.15\,C,

  all other :math:`f_j = 0` (market responsiveness, export cost and smart/green have no
  effect on the effect);
- trough growth :math:`r_i = a_s + g(W_i) - \overline{g} + \tau_{is} VA_i -
  \overline{\tau VA} + \gamma U_i + u_{cs} + q_{ks} + \sigma \varepsilon_i` (bars: means over
  the firms with a row at :math:`t^*`, so the average firm's exports fall by about
  :math:`a_s` log points) with :math:`g(W) = \kappa (0.8\,\text{city\_dev} +
  0.5\,\text{productivity} + \sin A) + 0.02\,\text{firm\_age}` (all at :math:`t^*`),
  shock depths :math:`a_s` = -0.4/-0.2/-0.3, city shocks :math:`u_{cs} \sim N(0,
  \text{cluster\_effect}^2)`, industry shocks :math:`q_{ks} \sim N(0,
  \text{industry\_effect}^2)`, :math:`\sigma` = ``noise``; exports in trough year
  :math:`t \in \mathcal T` are :math:`X_{it} = X^0_i e^{r_i + \eta_t}` for firms with a
  row (:math:`\eta_t \sim N(0, 0.02^2)` common to all firms);
- recovery growth :math:`r'_i = a_s/2 + g'(W_i) - \overline{g'} + \rho\,(\tau_{is} VA_i -
  \overline{\tau VA}) + \gamma U_i + u'_{cs} + \sigma \varepsilon'_i`,
  :math:`g'(W) = \kappa (0.5\,\text{city\_dev} + 0.3\,\text{productivity} + 0.5 \cos A)
  + 0.01\,\text{firm\_age}`, :math:`\rho` =
  ``recovery_ratio``; :math:`X_{it} = X^0_i e^{r'_i + \eta'_t}` for :math:`t \in \mathcal R`;
- mediators: at the last trough year :math:`t^\dagger` each proxy moves to
  :math:`M_{it^\dagger} = M_{it^*} + \theta_m VA_i + 0.3\,\text{city\_dev}_{it^*} +
  0.2\,\text{productivity}_{it^*} + N(0,1)`, so that :math:`\Delta M = M_{t^\dagger} -
  M_{t^*}` (the ``d_<proxy>`` columns of the analysis table) has true VA effect
  :math:`\theta_m` = 0.30, -0.15, 0.20, 0.10, -0.20, 0 (smart/green has none).

Staggered pilots (difference-in-differences truth)
--------------------------------------------------
A firm's cohort :math:`g_i = w_{c(i)}` is its city's pilot wave (0 = never; column
``pilot_year``). With ``pilot_effect`` :math:`\delta` (0 by default: no effect),
``pilot_dynamics`` :math:`\lambda`, ``pilot_heterogeneity`` :math:`h_p` and ``pretrend``
:math:`\beta`, the exports of every firm-year of a pilot city, after everything above, are
multiplied by :math:`\exp(\delta_{it} + \beta (t - g_i))` with

.. math::
    \delta_{it} = 1\{t \ge g_i\}\,\delta\,(1 + \lambda (t - g_i))\,(1 + h_p (m_i - \bar m)),
    \quad m_i = f_\text{ownership} + f_\text{trade\_mode} + f_\text{factor\_intensity}

(the firm-type terms of the effect above, :math:`\bar m` their mean over all firms). So the
true effect of the pilot on the log exports of firm :math:`i` in year :math:`t` is exactly
:math:`\delta_{it}` (:meth:`PilotTruth.effect`), ATT(g, t) over any set of firms is its
mean over them, and :math:`\beta \ne 0` adds a linear trend that only pilot cities follow,
a known violation of parallel trends. No random number is drawn for this: with the
defaults the panel is the same as without it. The pilot also raises VA (it is the
instrument above), and VA changes shock growth, so in the shock windows' trough and
recovery years the pilots' whole effect on exports is :math:`\delta_{it}` plus that VA
channel: the truth is exact outside those years (:meth:`PilotTruth.exact_in`; 2005-2008
and 2012-2018 by default). A pilot effect or pre-trend changes the
exports the shock windows' measures read, so the resilience truth is then approximate.

When the truth is exact
-----------------------
With log growth (``measures.growth: log``) and national expected growth (a constant),
the default outcome ``resistance`` of every window is exactly
:math:`R_i = \text{const} + g(W_i) + \tau_{is} VA_i + e_i` for every firm in the table,
where :math:`e_i = \gamma U_i + u_{cs} + q_{ks} + \sigma\varepsilon_i` is independent of
:math:`(W, X, VA)` when :math:`\gamma = 0` (exits depend on :math:`P_i` only, so the
selection into the table is on observables). ``recovery`` is exact with effect
:math:`\rho\tau` for firms present in all recovery years (``tradewar2019``'s recovery years
are overwritten by ``covid2020``, so its recovery truth is approximate); ``ratio`` (national)
and ``composite`` are linear maps of resistance and recovery and their truths are the same
maps of :math:`\tau` (see :meth:`SyntheticPanel.truth`); survival does not depend on VA
(true effect 0). DHS growth :math:`2\tanh(r/2)` approximates :math:`r` for moderate
changes, industry leave-one-out expected growth removes the industry shocks
:math:`q_{ks}` and winsorising clips the tails: with these choices the truth is an
approximation. Other VA indices (entropy, PCA) are monotone transformations of the same
latent :math:`L_{ct^*}`, so their truth is approximate as well.

References
----------
Davis, S., Haltiwanger, J. and Schuh, S. (1996). *Job Creation and Destruction*. MIT Press.
Martin, R., Sunley, P., Gardiner, B. and Tyler, P. (2016). How regions react to
recessions: resilience and the role of economic structure. *Regional Studies* 50(4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.config.panel import SHOCK_WINDOWS, MeasuresConfig, SyntheticPanelConfig
from vaer.data.synthetic_table import FIRM_TYPES, MECHANISMS, MEDIATOR_EFFECTS, REGIONS
from vaer.data.truth import Truth

PROXIES = [proxy for proxies in MECHANISMS.values() for proxy in proxies]
TYPE_COLUMNS = ["ownership", "size_class", "trade_mode", "factor_intensity", "region"]
MODIFIERS = [*TYPE_COLUMNS, *PROXIES]
CONTROLS = ["city_dev", "productivity", "geo_agglom", "firm_age"]
VA_COMPONENTS = ["ict_share", "broadband_rate", "ecommerce_density"]
SHOCK_DEPTH = {"gfc2009": -0.4, "tradewar2019": -0.2, "covid2020": -0.3}
MISSING_PROXIES = ["market_response", "smart_green"]
PANEL_ROLES: dict[str, object] = {
    "unit": "firm_id",
    "time": "year",
    "exports": "exports",
    "industry": "industry",
    "cluster": "city",
    "instrument": "pilot",
    "policy": "pilot_year",
    "outcome": "resilience",
    "treatment": "va_index",
    "va_components": VA_COMPONENTS,
    "va_firm": "platform",
    "controls": CONTROLS,
    "modifiers": MODIFIERS,
    "firm_types": TYPE_COLUMNS,
    "mechanisms": MECHANISMS,
}
"""The roles that fit the synthetic panel (the demo's ``roles``)."""


@dataclass(frozen=True)
class WindowTruth:
    """What the generator drew for one shock window, per firm with a row at the pre-shock year.

    ``components`` holds the effect terms :math:`h f_j(x_j)` (one column per modifier),
    ``frame`` the firm id, ``va``, ``tau``, ``g`` (:math:`g(W)`), ``error`` (:math:`e`)
    and ``r`` (trough log growth) per firm.
    """

    frame: pd.DataFrame
    components: pd.DataFrame
    recovery_ratio: float


@dataclass(frozen=True)
class PilotTruth:
    r"""The true effect of the staggered city pilots on log exports (module docstring).

    Attributes
    ----------
    firm_ids : ndarray
        Every firm of the panel.
    cohort : ndarray
        Its city's pilot year (0 = never).
    modifier : ndarray
        :math:`m_i - \bar m`, the firm-type part of the effect, centred.
    scale, dynamics, heterogeneity, pretrend : float
        ``pilot_effect``, ``pilot_dynamics``, ``pilot_heterogeneity``, ``pretrend``.
    shock_years : frozenset of int
        The shock windows' trough and recovery years (see :meth:`exact_in`).
    """

    firm_ids: np.ndarray
    cohort: np.ndarray
    modifier: np.ndarray
    scale: float
    dynamics: float
    heterogeneity: float
    pretrend: float
    shock_years: frozenset[int] = frozenset()

    def exact_in(self, year: int) -> bool:
        """Whether :meth:`effect` is the pilots' whole effect on log exports in ``year``:
        outside the shock windows' trough and recovery years, where the pilot also acts
        through VA (a pilot city's higher VA index changes its firms' shock growth)."""
        return int(year) not in self.shock_years

    @property
    def active(self) -> bool:
        """Whether the pilots move exports at all (an effect or a pre-trend)."""
        return self.scale != 0.0 or self.pretrend != 0.0

    def _rows(self, firm_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(self.firm_ids)
        found = np.searchsorted(self.firm_ids, np.asarray(firm_ids), sorter=order)
        rows = order[np.clip(found, 0, len(order) - 1)]
        if not np.array_equal(self.firm_ids[rows], np.asarray(firm_ids)):
            raise KeyError("some firm ids are not in the synthetic panel")
        return rows

    def effect(self, firm_ids: np.ndarray, years: np.ndarray) -> np.ndarray:
        r""":math:`\delta_{it}`, the true effect on log exports of firm-years
        ``(firm_ids[k], years[k])`` (0 before adoption and for never-pilot cities).

        Raises
        ------
        KeyError
            If a firm id is not in the panel.
        """
        rows = self._rows(firm_ids)
        g = self.cohort[rows]
        since = np.asarray(years, dtype=np.float64) - g
        treated = (g > 0) & (since >= 0)
        value = (
            self.scale
            * (1 + self.dynamics * since)
            * (1 + self.heterogeneity * self.modifier[rows])
        )
        return np.where(treated, value, 0.0)

    def shift(self, firm_ids: np.ndarray, years: np.ndarray) -> np.ndarray:
        r"""The log-export shift the generator applied: the effect plus the pilot cities'
        own trend :math:`\beta (t - g_i)`."""
        rows = self._rows(firm_ids)
        g = self.cohort[rows]
        trend = np.where(g > 0, self.pretrend * (np.asarray(years, dtype=np.float64) - g), 0.0)
        return self.effect(firm_ids, years) + trend


@dataclass(frozen=True)
class SyntheticPanel:
    """A synthetic firm-year panel and its truth for every shock window and the pilots."""

    frame: pd.DataFrame
    windows: dict[str, WindowTruth] = field(default_factory=dict)
    pilot: PilotTruth | None = None

    def truth_is_exact(
        self,
        shock: str,
        measures: MeasuresConfig,
        *,
        va_firm: str | None,
        weights: tuple[float, float] | None,
    ) -> bool:
        """Whether :meth:`truth` is exact for an analysis table built with ``measures``.

        The generator's effects are defined on log growth against the national expectation,
        with the LQ VA index of the platform column left continuous; other measures give
        an approximation. ``covid2020`` overwrites the trade war's recovery years, so a
        ``tradewar2019`` outcome that weighs recovery is approximate too; so is every window
        when the pilots move exports (``pilot_effect`` or ``pretrend``).

        Parameters
        ----------
        shock : str
            The window name.
        measures : MeasuresConfig
            How the analysis table was built.
        va_firm : str or None
            The firm-level VA column of the roles (``platform`` for this panel).
        weights : (float, float) or None
            The outcome's weights on resistance and recovery (None: not a linear map).
        """
        return (
            weights is not None
            and not (self.pilot is not None and self.pilot.active)
            and measures.growth == "log"
            and measures.expected == "national"
            and measures.va_index == "lq"
            and measures.binarize == "none"
            and va_firm == "platform"
            and not (shock == "tradewar2019" and weights[1] != 0)
        )

    def truth(
        self,
        shock: str,
        units: np.ndarray | None = None,
        *,
        weights: tuple[float, float] = (1.0, 0.0),
    ) -> Truth:
        """The truth of window ``shock`` over ``units`` (the analysis table's firm ids).

        Parameters
        ----------
        shock : str
            A window name (``gfc2009``, ``tradewar2019``, ``covid2020``).
        units : array, optional
            Firm ids, in the order of the analysis table; all firms with a row at the
            pre-shock year if omitted.
        weights : (float, float)
            The outcome as a linear map ``w_res * resistance + w_rec * recovery + const``
            (:attr:`vaer.measures.table.AnalysisTable.outcome_weights`): (1, 0) for
            resistance, (0, 1) for recovery, (1/|g_exp|, 0) for Martin's ratio, the
            inverse standard deviations over two for the composite, (0, 0) for survival.

        Returns
        -------
        Truth
            ``tau = scale * tau_s`` with ``scale = w_res + recovery_ratio * w_rec``; SHAP
            values ``scale * h * (f_j - mean f_j)`` with the
            mean over ``units``, so each row sums to ``tau - mean(tau)``.

        Raises
        ------
        ValueError
            If ``shock`` is not a generated window, or a unit had no row at its
            pre-shock year.
        """
        if shock not in self.windows:
            raise ValueError(
                f"no truth for shock window {shock!r}; the synthetic panel has "
                f"{sorted(self.windows)}"
            )
        window = self.windows[shock]
        scale = weights[0] + window.recovery_ratio * weights[1]
        index = pd.Index(window.frame["firm_id"].to_numpy())
        chosen = index.to_numpy() if units is None else np.asarray(units)
        position = index.get_indexer(chosen)
        if (position < 0).any():
            unknown = chosen[position < 0][:5].tolist()
            raise ValueError(
                f"units {unknown} had no row in the pre-shock year of {shock!r}; "
                "the truth covers firms active then"
            )
        components = window.components.iloc[position].reset_index(drop=True) * scale
        shap = (components - components.mean()).set_index(pd.Index(chosen))
        types = self.frame.drop_duplicates("firm_id").set_index("firm_id")[TYPE_COLUMNS]
        return Truth(
            units=chosen,
            tau=scale * window.frame["tau"].to_numpy()[position],
            shap=shap,
            mechanisms={k: list(v) for k, v in MECHANISMS.items()},
            mediator_effects=dict(MEDIATOR_EFFECTS),
            firm_types=types.loc[chosen],
        )


def _type_terms(types: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The firm-type terms :math:`f_j` of the effect (ownership, trade mode, factor intensity)."""
    own, trade = types["ownership"], types["trade_mode"]
    return {
        "ownership": 0.25 * (own == "private") - 0.20 * (own == "SOE"),
        "trade_mode": 0.20 * (trade == "general") - 0.15 * (trade == "processing"),
        "factor_intensity": 0.15 * (types["factor_intensity"] == "technology"),
    }


def _effect_terms(types: dict[str, np.ndarray], proxy: dict[str, np.ndarray]) -> pd.DataFrame:
    """The terms :math:`f_j(x_j)` per firm, one column per modifier (zeros where f_j = 0)."""
    n = len(types["ownership"])
    terms = {column: np.zeros(n) for column in MODIFIERS}
    terms.update(_type_terms(types))
    terms["knowledge_spillover"] = 0.30 * proxy["knowledge_spillover"]
    terms["supply_chain_flex"] = 0.20 * np.tanh(2 * proxy["supply_chain_flex"])
    terms["congestion"] = -0.15 * proxy["congestion"]
    return pd.DataFrame(terms).astype(np.float64)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float) -> np.ndarray:
    """Stationary AR(1) paths with unit variance along axis 1."""
    innovations = rng.normal(size=shape)
    path = np.empty(shape)
    path[:, 0] = innovations[:, 0]
    scale = np.sqrt(1 - rho**2)
    for t in range(1, shape[1]):
        path[:, t] = rho * path[:, t - 1] + scale * innovations[:, t]
    return path


def make_synthetic_panel(
    config: SyntheticPanelConfig | None = None, *, random_state: int = 0
) -> SyntheticPanel:
    """Draw the synthetic firm-year panel described in the module docstring.

    Parameters
    ----------
    config : SyntheticPanelConfig, optional
        Sizes and effect parameters (``data.panel``); defaults if omitted.
    random_state : int
        Seed of the generator.

    Returns
    -------
    SyntheticPanel
        ``frame`` has one row per firm-year the firm is active: ``firm_id`` (int),
        ``year``, ``city``, ``industry``, ``exports``, the firm types, the controls,
        ``platform``, ``pilot`` (instrument), ``pilot_year`` (the city's pilot wave, 0 =
        never), the city VA components and the mechanism proxies;
        :meth:`SyntheticPanel.truth` gives the truth per shock window and
        :attr:`SyntheticPanel.pilot` the pilots' effect on log exports.

    Raises
    ------
    ValueError
        If the years do not cover the named shock windows.
    """
    cfg = config or SyntheticPanelConfig()
    first = min(min(w["pre"]) for w in SHOCK_WINDOWS.values())
    last = max(max(w["recovery"]) for w in SHOCK_WINDOWS.values())
    if cfg.start_year > first or cfg.end_year < last:
        raise ValueError(
            f"`data.panel` years {cfg.start_year}-{cfg.end_year} must cover the shock "
            f"windows ({first}-{last})"
        )
    rng = np.random.default_rng(random_state)
    n, n_c, n_k = cfg.n_firms, cfg.n_cities, cfg.n_industries
    years = np.arange(cfg.start_year, cfg.end_year + 1)
    n_t = len(years)
    trend = (years - cfg.start_year).astype(np.float64)
    kappa, gamma, pi = cfg.confounding, cfg.unobserved_confounding, cfg.instrument_strength

    # cities and industries
    city_p = 1.0 / np.arange(1, n_c + 1) ** 0.8
    city = rng.choice(n_c, size=n, p=city_p / city_p.sum())
    industry_p = rng.gamma(2.0, size=n_k)
    industry = rng.choice(n_k, size=n, p=industry_p / industry_p.sum())
    dev = rng.normal(size=n_c)
    endowment = rng.normal(scale=0.5, size=n_c)
    wave = rng.choice(np.array([2014, 2015, 2016, 10_000]), size=n_c, p=[0.1, 0.1, 0.1, 0.7])
    region_names, region_p = REGIONS
    city_region = rng.choice(np.array(region_names), size=n_c, p=region_p)
    pilot_ct = (years[None, :] >= wave[:, None]).astype(np.float64)
    city_dev_ct = dev[:, None] + 0.04 * trend + rng.normal(scale=0.05, size=(n_c, n_t))
    latent_ct = (
        0.6 * kappa * dev[:, None]
        + endowment[:, None]
        + 0.1 * trend
        + pi * pilot_ct
        + rng.normal(scale=0.05, size=(n_c, n_t))
    )
    ict_ct = 2.0 * np.exp(0.5 * latent_ct)
    broadband_ct = 100.0 / (1.0 + np.exp(-(latent_ct - 1.0)))
    ecommerce_ct = np.exp(1.0 + 0.5 * latent_ct + rng.normal(scale=0.1, size=(n_c, n_t)))

    # firms
    types = {
        column: rng.choice(np.array(levels), size=n, p=probs)
        for column, (levels, probs) in FIRM_TYPES.items()
    }
    types["region"] = city_region[city]
    prod_i = 0.5 * dev[city] + rng.normal(size=n)
    geo = 0.7 * dev[city] + rng.normal(scale=0.7, size=n)
    hidden = rng.normal(size=n)
    entrant = rng.random(n) < cfg.entry_share
    entry = np.where(
        entrant, rng.integers(cfg.start_year + 1, cfg.end_year - 1, size=n), cfg.start_year
    )
    founded = np.where(entrant, entry, rng.integers(1985, cfg.start_year, size=n))
    hazard = np.clip(cfg.exit_rate * np.exp(-0.3 * prod_i), 1e-6, 0.9)
    exit_year = entry + rng.geometric(hazard)
    alive = (years[None, :] >= entry[:, None]) & (years[None, :] < exit_year[:, None])

    productivity = prod_i[:, None] + 0.02 * trend + rng.normal(scale=0.1, size=(n, n_t))
    platform = (
        (kappa * (0.3 * dev[city] + 0.4 * prod_i + 0.3 * geo) + gamma * hidden)[:, None]
        + 0.3 * pi * pilot_ct[city]
        + 0.05 * trend
        + rng.normal(scale=0.8, size=n)[:, None]
        + rng.normal(scale=0.15, size=(n, n_t))
    )
    city_dev = city_dev_ct[city]
    firm_age = (years[None, :] - founded[:, None]).astype(np.float64)
    proxies = {name: _ar1(rng, (n, n_t), 0.8) for name in PROXIES}
    proxies["knowledge_spillover"] = (
        0.4 * dev[city][:, None] + np.sqrt(0.84) * proxies["knowledge_spillover"]
    )
    size = np.select([types["size_class"] == "medium", types["size_class"] == "large"], [1, 2], 0)
    industry_year = rng.normal(scale=0.1, size=(n_k, n_t))
    log_exports = (
        (8.0 + 0.8 * size + 0.3 * prod_i + rng.normal(size=n))[:, None]
        + 0.05 * trend
        + industry_year[industry]
        + 0.3 * _ar1(rng, (n, n_t), 0.7)
    )
    exports = np.exp(log_exports) * (rng.random((n, n_t)) >= cfg.zero_rate)

    col = {int(year): j for j, year in enumerate(years)}
    windows: dict[str, WindowTruth] = {}
    for name, spec in sorted(SHOCK_WINDOWS.items(), key=lambda item: min(item[1]["trough"])):
        pre = np.array([col[y] for y in spec["pre"]], dtype=np.int64)
        trough = [col[y] for y in spec["trough"]]
        recovery = [col[y] for y in spec["recovery"]]
        base = int(pre.max())
        active = np.flatnonzero(alive[:, base])
        present = alive[np.ix_(active, pre)]
        level0 = (exports[np.ix_(active, pre)] * present).sum(axis=1) / present.sum(axis=1)
        cities_now = np.unique(city[active])
        lq = ict_ct[:, base] / ict_ct[cities_now, base].mean()
        va = lq[city[active]] + platform[active, base]
        proxy_now = {p: proxies[p][active, base] for p in PROXIES}
        terms = cfg.heterogeneity * _effect_terms(
            {k: v[active] for k, v in types.items()}, proxy_now
        )
        total = terms.sum(axis=1).to_numpy()
        tau = cfg.ate + total - total.mean()
        w_dev, w_prod = city_dev[active, base], productivity[active, base]
        w_age, w_geo = firm_age[active, base], geo[active]
        g = kappa * (0.8 * w_dev + 0.5 * w_prod + np.sin(w_geo)) + 0.02 * w_age
        error = (
            gamma * hidden[active]
            + rng.normal(scale=cfg.cluster_effect, size=n_c)[city[active]]
            + rng.normal(scale=cfg.industry_effect, size=n_k)[industry[active]]
            + cfg.noise * rng.normal(size=len(active))
        )
        effect = tau * va
        r = SHOCK_DEPTH[name] + g - g.mean() + effect - effect.mean() + error
        g_rec = kappa * (0.5 * w_dev + 0.3 * w_prod + 0.5 * np.cos(w_geo)) + 0.01 * w_age
        r_rec = (
            SHOCK_DEPTH[name] / 2
            + g_rec
            - g_rec.mean()
            + cfg.recovery_ratio * (effect - effect.mean())
            + gamma * hidden[active]
            + rng.normal(scale=cfg.cluster_effect, size=n_c)[city[active]]
            + cfg.noise * rng.normal(size=len(active))
        )
        for columns, growth in ((trough, r), (recovery, r_rec)):
            for j in columns:
                exports[active, j] = level0 * np.exp(growth + rng.normal(scale=0.02))
        end = max(trough)
        for proxy in PROXIES:
            theta = MEDIATOR_EFFECTS[f"d_{proxy}"]
            proxies[proxy][active, end] = (
                proxy_now[proxy]
                + theta * va
                + 0.3 * w_dev
                + 0.2 * w_prod
                + rng.normal(size=len(active))
            )
        ids = active + 100_001
        windows[name] = WindowTruth(
            frame=pd.DataFrame(
                {"firm_id": ids, "va": va, "tau": tau, "g": g, "error": error, "r": r}
            ),
            components=terms,
            recovery_ratio=cfg.recovery_ratio,
        )

    type_part = sum(_type_terms(types).values())
    pilot = PilotTruth(
        firm_ids=np.arange(n) + 100_001,
        cohort=np.where(wave < 10_000, wave, 0)[city],
        modifier=np.asarray(type_part - np.mean(type_part), dtype=np.float64),
        scale=cfg.pilot_effect,
        dynamics=cfg.pilot_dynamics,
        heterogeneity=cfg.pilot_heterogeneity,
        pretrend=cfg.pretrend,
        shock_years=frozenset(
            int(y) for w in SHOCK_WINDOWS.values() for y in (*w["trough"], *w["recovery"])
        ),
    )
    if pilot.active:
        every_id = np.repeat(pilot.firm_ids, n_t)
        every_year = np.tile(years, n)
        exports *= np.exp(pilot.shift(every_id, every_year)).reshape(n, n_t)

    for proxy in MISSING_PROXIES:
        proxies[proxy] = np.where(rng.random((n, n_t)) < cfg.missing_rate, np.nan, proxies[proxy])
    firm_idx, year_idx = np.nonzero(alive)
    city_idx = city[firm_idx]
    city_names = np.array([f"C{c:03d}" for c in range(n_c)], dtype=object)
    industry_names = np.array([f"I{k:02d}" for k in range(n_k)], dtype=object)
    data: dict[str, object] = {
        "firm_id": firm_idx + 100_001,
        "year": years[year_idx],
        "city": city_names[city_idx],
        "industry": industry_names[industry[firm_idx]],
        "exports": exports[firm_idx, year_idx],
    }
    for column in TYPE_COLUMNS:
        data[column] = types[column].astype(object)[firm_idx]
    data["city_dev"] = city_dev[firm_idx, year_idx]
    data["productivity"] = productivity[firm_idx, year_idx]
    data["geo_agglom"] = geo[firm_idx]
    data["firm_age"] = firm_age[firm_idx, year_idx]
    data["platform"] = platform[firm_idx, year_idx]
    data["pilot"] = pilot_ct[city_idx, year_idx]
    data["pilot_year"] = pilot.cohort[firm_idx]
    data["ict_share"] = ict_ct[city_idx, year_idx]
    data["broadband_rate"] = broadband_ct[city_idx, year_idx]
    data["ecommerce_density"] = ecommerce_ct[city_idx, year_idx]
    for proxy in PROXIES:
        data[proxy] = proxies[proxy][firm_idx, year_idx]
    return SyntheticPanel(frame=pd.DataFrame(data), windows=windows, pilot=pilot)
