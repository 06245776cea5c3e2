r"""A held-out firm table with exact truth, written apart from vaer's own generators.

vaer's defaults were chosen on its own generators (:mod:`vaer.data.synthetic`,
:mod:`vaer.data.synthetic_table`) and on the accuracy designs of ``designs.py``. This
module draws a firm table whose functional forms are none of those, so that the validity
benchmark (``validity.py``) reports on data the defaults never saw. It runs through the
product's file path (``data.source: file``, ``data.mode: table``): :func:`write_heldout`
writes the table to Parquet.

Model
-----
Cities :math:`c = 1..G` (``n_cities``) with log-normal sizes (firm shares
:math:`\propto e^{\zeta_c}`, :math:`\zeta_c \sim N(0, 1)`, at least one firm each), region
coast/inland/frontier (0.5/0.3/0.2). City variables: GDP :math:`D_c \sim N(0, 1)`
(``city_gdp``), infrastructure :math:`I_c = 0.6 D_c + 0.8 N(0, 1)` (``city_infra``), a
Broadband-pilot instrument :math:`Z_c \sim \text{Bernoulli}(0.35)` drawn independently of
everything (``pilot``), a city VA shock :math:`v_c \sim N(0, 0.5^2)`, a city outcome shock
:math:`u_c \sim N(0, 0.4^2)`, independent city shocks of each mediator
:math:`s_{mc} \sim N(0, 0.3^2)` and a city component :math:`\xi_c \sim N(0, 1)` of the
digital-skills proxy.

Firm :math:`i` in city :math:`c`: types ownership (state/private/foreign/collective
0.15/0.55/0.2/0.1), size band (small/medium/large 0.45/0.35/0.2), trade regime
(ordinary/processing 0.7/0.3), tech level (low/mid/high 0.4/0.4/0.2) and the city's
region; controls productivity :math:`P_i = 0.4 D_c + N(0, 1)`, firm age
:math:`A_i \sim \text{Gamma}(3, 4)` and the two city variables; an unobserved confounder
:math:`U_i \sim N(0, 1)`. Mechanism proxies (modifiers) and their channels:

=====================  =====================  =========================================
channel                proxy                  distribution
=====================  =====================  =========================================
digital_capability     ``digital_skills``     :math:`0.3 \xi_c + \sqrt{0.91} N(0,1)`
logistics              ``logistics_access``   :math:`U(-1.5, 1.5)`
supply_chain           ``supplier_div``,      :math:`N(0, 1)`;
                       ``inventory_buffer``   :math:`\text{Exp}(1) - 1`
market_info            ``demand_info``        :math:`N(0, 1)`
local_policy           ``local_promo``        :math:`0.9 D_c + \sqrt{0.19} N(0, 1)`
=====================  =====================  =========================================

``local_promo`` correlates only with city GDP (a control) and has no effect on anything.

Effect, additive in the modifiers, with :math:`h` = ``heterogeneity``:

.. math::
    \tau_i = \bar\tau + h \Big(\sum_j f_j(x_{ij}) - \tfrac1n \sum_k \sum_j f_j(x_{kj})\Big),

:math:`\bar\tau` = ``ate`` (0.4), and :math:`f_\text{ownership}` = -0.20 (state), 0.15
(private), 0.05 (foreign), 0 (collective); :math:`f_\text{trade\_regime}` = -0.25
(processing), 0 (ordinary); :math:`f_\text{tech\_level}` = 0, 0.05, 0.20 (low, mid,
high); :math:`f_\text{digital\_skills}(x) = 0.3 \sin(1.2 x)`;
:math:`f_\text{logistics\_access}(x) = 0.25 \max(x, 0)`;
:math:`f_\text{supplier\_div}(x) = 0.15 (x^2 - 1)`;
:math:`f_\text{inventory\_buffer}(x) = 0.1 x`;
:math:`f_\text{demand\_info}(x) = -0.2\, 1\{x > 0.8\}`; size band, region and
``local_promo`` have :math:`f_j = 0`. The true SHAP value of modifier :math:`j` for firm
:math:`i` is :math:`h (f_j(x_{ij}) - \overline{f_j})` (sample mean), so each row sums to
:math:`\tau_i - \bar\tau`; channel shares follow
:meth:`vaer.data.truth.Truth.channel_shares` (the ``local_policy`` share is 0).

Treatment (continuous VA index), with :math:`\kappa` = ``confounding``, :math:`\pi` =
``instrument_strength``, :math:`\gamma` = ``unobserved_confounding``:

.. math:: VA_i = \mu_i + \pi Z_c + v_c + \gamma U_i + 0.8\,\varepsilon_i, \quad
          \mu_i = \kappa (0.5 D_c + 0.3 I_c + 0.35 P_i + 0.2\,1\{\text{foreign}\}).

Outcome (export resilience), heteroskedastic:

.. math:: R_i = \kappa \big(0.6 \tanh D_c + 0.4 \log(1 + e^{P_i}) + 0.25 I_c^2\big)
          + 0.015 A_i + \tau_i VA_i + \gamma U_i + u_c
          + \sigma (1 + 0.3\,1\{\text{small}\})\,\eta_i,

:math:`\sigma` = ``noise`` (0.5). Mediators (changes of the proxies over the shock), one
per channel, with true VA effects :math:`\theta` = 0.25, 0.15, -0.10, 0.20, 0 (the
``local_policy`` mediator has none):

.. math:: \Delta M_{im} = \theta_m VA_i + 0.4 \tanh D_c + 0.1 P_i^2 + s_{mc} + N(0, 1).

With :math:`\gamma = 0` the controls and modifiers remove all confounding; with
:math:`\gamma > 0` only the pilot identifies the effect.

Binarised VA. ``dr_learner`` and ``forest_dr_learner`` compare firms above the sample
median :math:`q` of VA with those below. Given :math:`(X, W)`, VA is a two-component
normal mixture (:math:`Z_c` = 1 with probability 0.35) with means
:math:`\mu_i + \pi z` and variance :math:`s^2 = 0.5^2 + 0.8^2 + \gamma^2`, so their
estimand :math:`E[E[R \mid D=1, X, W] - E[R \mid D=0, X, W]]` is, for :math:`\gamma = 0`,
the sample mean of :math:`\tau_i (E[VA \mid VA > q, X_i, W_i] - E[VA \mid VA \le q, X_i,
W_i])` (:func:`binary_estimand`; truncated-normal means of each component).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from vaer.data.truth import Truth

TYPES: dict[str, tuple[list[str], list[float]]] = {
    "ownership": (["state", "private", "foreign", "collective"], [0.15, 0.55, 0.2, 0.1]),
    "size_band": (["small", "medium", "large"], [0.45, 0.35, 0.2]),
    "trade_regime": (["ordinary", "processing"], [0.7, 0.3]),
    "tech_level": (["low", "mid", "high"], [0.4, 0.4, 0.2]),
}
REGIONS = (["coast", "inland", "frontier"], [0.5, 0.3, 0.2])
FIRM_TYPES = [*TYPES, "region"]
CHANNELS: dict[str, list[str]] = {
    "digital_capability": ["digital_skills"],
    "logistics": ["logistics_access"],
    "supply_chain": ["supplier_div", "inventory_buffer"],
    "market_info": ["demand_info"],
    "local_policy": ["local_promo"],
}
PROXIES = [proxy for proxies in CHANNELS.values() for proxy in proxies]
MODIFIERS = [*FIRM_TYPES, *PROXIES]
CONTROLS = ["city_gdp", "city_infra", "productivity", "firm_age"]
MEDIATORS: dict[str, tuple[str, float]] = {
    "digital_capability": ("d_digital_skills", 0.25),
    "logistics": ("d_logistics_access", 0.15),
    "supply_chain": ("d_supplier_div", -0.10),
    "market_info": ("d_demand_info", 0.20),
    "local_policy": ("d_local_promo", 0.0),
}
ZERO_CHANNEL = "local_policy"
ZERO_MEDIATOR = "d_local_promo"
PILOT_SHARE = 0.35
VA_CITY_SD, VA_FIRM_SD = 0.5, 0.8
ROLES: dict[str, object] = {
    "unit": "firm_id",
    "outcome": "resilience",
    "treatment": "va_index",
    "cluster": "city",
    "instrument": "pilot",
    "controls": CONTROLS,
    "modifiers": MODIFIERS,
    "firm_types": FIRM_TYPES,
    "mechanisms": CHANNELS,
    "mediators": {channel: [column] for channel, (column, _theta) in MEDIATORS.items()},
}
"""The roles of a study of the held-out table."""


@dataclass(frozen=True)
class HeldoutParams:
    """Parameters of the held-out table (see the module docstring for each symbol)."""

    n_firms: int = 4000
    n_cities: int = 150
    ate: float = 0.4
    heterogeneity: float = 1.0
    confounding: float = 1.0
    instrument_strength: float = 1.0
    unobserved_confounding: float = 0.0
    noise: float = 0.5

    def __post_init__(self) -> None:
        if self.n_cities < 10:
            raise ValueError(f"`n_cities` must be an int >= 10; got {self.n_cities}")
        if self.n_firms < 20 * self.n_cities:
            raise ValueError(
                f"`n_firms` must be at least 20 per city ({20 * self.n_cities}); got {self.n_firms}"
            )
        for name in ("heterogeneity", "confounding", "unobserved_confounding"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0; got {getattr(self, name)}")
        if self.noise <= 0:
            raise ValueError(f"`noise` must be > 0; got {self.noise}")


@dataclass(frozen=True)
class HeldoutTable:
    """A drawn held-out table, its truth and what the binary estimand needs.

    Attributes
    ----------
    frame : DataFrame
        One row per firm (columns of :data:`ROLES` plus the mediators).
    truth : Truth
        Per-firm effects, true SHAP values, channels, mediator effects, firm types.
    params : HeldoutParams
    va_mean : ndarray of shape (n,)
        :math:`\\mu_i`, the part of VA's conditional mean that does not depend on the pilot.
    """

    frame: pd.DataFrame
    truth: Truth
    params: HeldoutParams
    va_mean: np.ndarray


def effect_terms(frame: pd.DataFrame) -> pd.DataFrame:
    """The terms :math:`f_j(x_j)` of the effect, one column per modifier (0 where none)."""
    terms = pd.DataFrame(0.0, index=frame.index, columns=MODIFIERS)
    own = frame["ownership"]
    terms["ownership"] = (
        -0.20 * (own == "state") + 0.15 * (own == "private") + 0.05 * (own == "foreign")
    )
    terms["trade_regime"] = -0.25 * (frame["trade_regime"] == "processing")
    tech = frame["tech_level"]
    terms["tech_level"] = 0.05 * (tech == "mid") + 0.20 * (tech == "high")
    terms["digital_skills"] = 0.3 * np.sin(1.2 * frame["digital_skills"])
    terms["logistics_access"] = 0.25 * np.maximum(frame["logistics_access"], 0.0)
    terms["supplier_div"] = 0.15 * (frame["supplier_div"] ** 2 - 1.0)
    terms["inventory_buffer"] = 0.1 * frame["inventory_buffer"]
    terms["demand_info"] = -0.2 * (frame["demand_info"] > 0.8)
    return terms.astype(np.float64)


def make_heldout_table(
    params: HeldoutParams | None = None, *, random_state: int = 0
) -> HeldoutTable:
    """Draw the held-out firm table described in the module docstring.

    Parameters
    ----------
    params : HeldoutParams, optional
        Sizes and effect parameters; defaults if omitted.
    random_state : int
        Seed of the generator.

    Returns
    -------
    HeldoutTable
    """
    p = params or HeldoutParams()
    rng = np.random.default_rng(random_state)
    g, n = p.n_cities, p.n_firms
    weight = np.exp(rng.normal(size=g))
    # every city gets at least one firm; the rest are spread by log-normal size
    city = np.concatenate([np.arange(g), rng.choice(g, size=n - g, p=weight / weight.sum())])
    city = rng.permutation(city)
    gdp = rng.normal(size=g)
    infra = 0.6 * gdp + 0.8 * rng.normal(size=g)
    pilot = (rng.random(g) < PILOT_SHARE).astype(np.float64)
    va_shock = rng.normal(scale=VA_CITY_SD, size=g)
    outcome_shock = rng.normal(scale=0.4, size=g)
    skills_city = rng.normal(size=g)
    region_names, region_p = REGIONS
    region = rng.choice(np.array(region_names), size=g, p=region_p)

    frame = pd.DataFrame(
        {
            "firm_id": [f"H{i:06d}" for i in range(n)],
            "city": [f"K{c:03d}" for c in city],
            "pilot": pilot[city],
            "region": region[city],
        }
    )
    for column, (levels, probs) in TYPES.items():
        frame[column] = rng.choice(np.array(levels), size=n, p=probs)
    frame["city_gdp"] = gdp[city]
    frame["city_infra"] = infra[city]
    frame["productivity"] = 0.4 * gdp[city] + rng.normal(size=n)
    frame["firm_age"] = rng.gamma(3.0, 4.0, size=n).round(1)
    frame["digital_skills"] = 0.3 * skills_city[city] + np.sqrt(0.91) * rng.normal(size=n)
    frame["logistics_access"] = rng.uniform(-1.5, 1.5, size=n)
    frame["supplier_div"] = rng.normal(size=n)
    frame["inventory_buffer"] = rng.exponential(size=n) - 1.0
    frame["demand_info"] = rng.normal(size=n)
    frame["local_promo"] = 0.9 * gdp[city] + np.sqrt(0.19) * rng.normal(size=n)
    hidden = rng.normal(size=n)

    kappa, gamma = p.confounding, p.unobserved_confounding
    dev, prod = frame["city_gdp"].to_numpy(), frame["productivity"].to_numpy()
    infra_i = frame["city_infra"].to_numpy()
    va_mean = kappa * (
        0.5 * dev + 0.3 * infra_i + 0.35 * prod + 0.2 * (frame["ownership"] == "foreign")
    ).to_numpy(dtype=np.float64)
    va = (
        va_mean
        + p.instrument_strength * frame["pilot"].to_numpy()
        + va_shock[city]
        + gamma * hidden
        + VA_FIRM_SD * rng.normal(size=n)
    )
    components = p.heterogeneity * effect_terms(frame)
    het = components.sum(axis=1).to_numpy()
    tau = p.ate + het - het.mean()
    baseline = (
        kappa * (0.6 * np.tanh(dev) + 0.4 * np.logaddexp(0.0, prod) + 0.25 * infra_i**2)
        + 0.015 * frame["firm_age"].to_numpy()
    )
    scale = p.noise * (1.0 + 0.3 * (frame["size_band"] == "small").to_numpy())
    frame["resilience"] = (
        baseline + tau * va + gamma * hidden + outcome_shock[city] + scale * rng.normal(size=n)
    )
    frame["va_index"] = va
    for column, theta in MEDIATORS.values():
        frame[column] = (
            theta * va
            + 0.4 * np.tanh(dev)
            + 0.1 * prod**2
            + rng.normal(scale=0.3, size=g)[city]
            + rng.normal(size=n)
        )
    units = frame["firm_id"].to_numpy()
    truth = Truth(
        units=units,
        tau=tau,
        shap=(components - components.mean()).set_index(pd.Index(units)),
        mechanisms={k: list(v) for k, v in CHANNELS.items()},
        mediator_effects={column: theta for column, theta in MEDIATORS.values()},
        firm_types=frame[FIRM_TYPES].set_index(pd.Index(units)),
    )
    return HeldoutTable(frame=frame, truth=truth, params=p, va_mean=va_mean)


def binary_estimand(table: HeldoutTable, quantile: float = 0.5) -> float:
    r"""True average effect of high vs low VA, as ``dr_learner`` estimates it.

    High means VA above its sample ``quantile`` :math:`q` (the product's binarisation).
    For each firm, VA given :math:`(X, W)` is a mixture over the pilot
    :math:`z \in \{0, 1\}` (weights 0.65/0.35) of :math:`N(\mu_i + \pi z, s^2)`; with
    :math:`a_z = (q - \mu_i - \pi z)/s`, :math:`E[VA\,1\{VA > q\}] = \sum_z w_z
    ((\mu_i + \pi z)(1 - \Phi(a_z)) + s\,\phi(a_z))` and likewise below :math:`q`, and the
    estimand is the mean of :math:`\tau_i (E[VA \mid VA > q] - E[VA \mid VA \le q])`.

    Parameters
    ----------
    table : HeldoutTable
    quantile : float
        The binarisation quantile (0.5 for ``median``).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the table has an unobserved confounder (the estimand then is not identified by
        the binary learners) or ``quantile`` is not in (0, 1).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"`quantile` must be in (0, 1); got {quantile}")
    if table.params.unobserved_confounding > 0:
        raise ValueError(
            "the binary estimand needs `unobserved_confounding` = 0; got "
            f"{table.params.unobserved_confounding}"
        )
    q = float(np.quantile(table.frame["va_index"].to_numpy(), quantile))
    high, low = conditional_means(table.va_mean, q, table.params.instrument_strength)
    return float(np.mean(table.truth.tau * (high - low)))


def conditional_means(
    va_mean: np.ndarray, threshold: float, instrument_strength: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""``E[VA | VA > q, X, W]`` and ``E[VA | VA <= q, X, W]`` per firm (no hidden confounder).

    VA given :math:`(X, W)` is the mixture over the pilot :math:`z` (weights
    ``1 - PILOT_SHARE``, ``PILOT_SHARE``) of :math:`N(\mu_i + \pi z, s^2)`,
    :math:`s^2 = 0.5^2 + 0.8^2`; the truncated means of each component are combined by
    their mass above (below) :math:`q`.

    Parameters
    ----------
    va_mean : ndarray of shape (n,)
        :math:`\mu_i`.
    threshold : float
        :math:`q`.
    instrument_strength : float
        :math:`\pi`.

    Returns
    -------
    high, low : ndarray of shape (n,)
    """
    s = float(np.hypot(VA_CITY_SD, VA_FIRM_SD))
    above_mass = np.zeros(len(va_mean))
    above_sum = np.zeros(len(va_mean))
    total_mean = np.zeros(len(va_mean))
    for z, weight in ((0.0, 1.0 - PILOT_SHARE), (1.0, PILOT_SHARE)):
        mean = va_mean + instrument_strength * z
        a = (threshold - mean) / s
        above_mass += weight * stats.norm.sf(a)
        above_sum += weight * (mean * stats.norm.sf(a) + s * stats.norm.pdf(a))
        total_mean += weight * mean
    return above_sum / above_mass, (total_mean - above_sum) / (1.0 - above_mass)


def write_heldout(table: HeldoutTable, path: Path) -> Path:
    """Write the table to Parquet at ``path`` (for ``data.source: file``); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table.frame.to_parquet(path, index=False)
    return path
