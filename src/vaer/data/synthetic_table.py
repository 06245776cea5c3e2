r"""A cross-sectional synthetic firm table with a known effect for every firm.

One row per firm, outcome and treatment already built (``data.mode: table``). It is
small and fast, for the demo and for tests; the firm-year panel generator is
:mod:`vaer.data.synthetic`. Both return a truth object with the same interface
(:class:`vaer.data.truth.Truth`).

Model
-----
Firm :math:`i` sits in city :math:`c(i)` (``n_clusters`` cities). City development
:math:`D_c \sim N(0, 1)`, city shock :math:`u_c \sim N(0, \text{cluster\_effect}^2)`, a city
VA component :math:`v_c \sim N(0, 0.5^2)` and Broadband-China pilot status
:math:`Z_c \sim \text{Bernoulli}(0.3)` (the instrument, independent of everything else).
Firm controls: productivity :math:`P_i = 0.5 D_c + N(0, 1)`, geographic agglomeration
:math:`A_i = 0.7 D_c + N(0, 0.7^2)`, firm age :math:`\text{Age}_i \sim U(1, 30)`. An
unobserved firm confounder :math:`U_i \sim N(0, 1)` enters with strength :math:`\gamma` =
``unobserved_confounding`` (0 by default). Firm types (ownership, size class, trade mode,
factor intensity, region) are categorical; six mechanism proxies are standard normal
(knowledge spillover is correlated 0.4 with :math:`D_c`).

Treatment (virtual agglomeration index, continuous):

.. math:: VA_i = \kappa (0.6 D_c + 0.4 P_i + 0.3 A_i) + \pi Z_c + \gamma U_i + v_c + N(0, 1),

with :math:`\kappa` = ``confounding`` and :math:`\pi` = ``instrument_strength``.
Effect, additive in the modifiers, :math:`\tau(x) = \bar\tau + h \sum_j f_j(x_j) + c_0` with
:math:`h` = ``heterogeneity`` and

.. math::
    f_\text{ownership} &= 0.25\,1\{\text{private}\} - 0.20\,1\{\text{SOE}\}, \quad
    f_\text{trade\_mode} = 0.20\,1\{\text{general}\} - 0.15\,1\{\text{processing}\},\\
    f_\text{factor\_intensity} &= 0.15\,1\{\text{technology}\}, \quad
    f_\text{knowledge\_spillover} = 0.30\,K, \quad
    f_\text{supply\_chain\_flex} = 0.20 \tanh(2 S), \quad f_\text{congestion} = -0.15\,C,

all other :math:`f_j = 0`, and :math:`c_0` such that the sample mean of :math:`\tau` is
:math:`\bar\tau` = ``ate`` exactly. The true SHAP value of modifier :math:`j` for firm
:math:`i` is :math:`h\,(f_j(x_{ij}) - \overline{f_j})` (sample mean), and these sum to
:math:`\tau_i - \bar\tau`.

Outcome (export resilience):

.. math:: R_i = \kappa (0.8 D_c + 0.5 P_i + \sin A_i) + 0.02\,\text{Age}_i
                + \tau(X_i)\,VA_i + \gamma U_i + u_c + \sigma \varepsilon_i,

with :math:`\sigma` = ``noise``. Because :math:`D_c, P_i, A_i` drive both VA and R, a
regression of R on VA alone is biased; conditioning on the controls removes the bias
unless :math:`\gamma > 0`, when only the instrument :math:`Z_c` identifies the effect.

Mediators (changes of the channel proxies over the shock window), with known effects
:math:`\theta_m` of VA:

.. math:: \Delta M_{im} = \theta_m VA_i + 0.3 D_c + 0.2 P_i + N(0, 1),

:math:`\theta` = 0.30 (knowledge spillover), -0.15 (congestion), 0.20 (supply-chain
flexibility), 0.10 (market responsiveness), -0.20 (export cost), 0 (smart/green).

Exact nuisances. With :math:`X` the modifiers and :math:`W` the controls of a firm (city
development, productivity, geographic agglomeration, age), :math:`Z_c`, :math:`v_c`,
:math:`u_c`, :math:`U_i` and the noise are independent of :math:`(X_i, W_i)` with means
0.3, 0, 0, 0, 0, so

.. math::
    e(x, w) = E[VA \mid X, W] &= \kappa (0.6 D_c + 0.4 P_i + 0.3 A_i) + 0.3\,\pi, \\
    m(x, w) = E[R \mid X, W] &= \kappa (0.8 D_c + 0.5 P_i + \sin A_i) + 0.02\,\text{Age}_i
                               + \tau(X_i)\, e(X_i, W_i)

(:meth:`SyntheticTable.exact_nuisances`), the functions an oracle residualises on.

References
----------
Chernozhukov, V. et al. (2018). Double/debiased machine learning for treatment and
structural parameters. *The Econometrics Journal* 21(1), C1-C68.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.config.models import SyntheticTableConfig
from vaer.data.truth import Truth

FIRM_TYPES: dict[str, tuple[list[str], list[float]]] = {
    "ownership": (["SOE", "private", "foreign"], [0.2, 0.55, 0.25]),
    "size_class": (["small", "medium", "large"], [0.5, 0.35, 0.15]),
    "trade_mode": (["general", "processing", "mixed"], [0.55, 0.25, 0.20]),
    "factor_intensity": (["labour", "capital", "technology"], [0.4, 0.35, 0.25]),
}
REGIONS = (["east", "central", "west"], [0.6, 0.25, 0.15])
MECHANISMS: dict[str, list[str]] = {
    "knowledge_spillover": ["knowledge_spillover"],
    "congestion_relief": ["congestion"],
    "supply_chain_flexibility": ["supply_chain_flex"],
    "market_responsiveness": ["market_response"],
    "export_cost": ["export_cost"],
    "smart_green": ["smart_green"],
}
MEDIATOR_EFFECTS: dict[str, float] = {
    "d_knowledge_spillover": 0.30,
    "d_congestion": -0.15,
    "d_supply_chain_flex": 0.20,
    "d_market_response": 0.10,
    "d_export_cost": -0.20,
    "d_smart_green": 0.0,
}
CONTROLS = ["city_dev", "productivity", "geo_agglom", "firm_age"]
MODIFIERS = [
    "ownership",
    "size_class",
    "trade_mode",
    "factor_intensity",
    "region",
    *[proxy for proxies in MECHANISMS.values() for proxy in proxies],
]

TABLE_ROLES: dict[str, object] = {
    "unit": "firm_id",
    "outcome": "resilience",
    "treatment": "va_index",
    "cluster": "city",
    "controls": CONTROLS,
    "modifiers": MODIFIERS,
}
"""Column roles of the table's core study (no firm types, mechanisms or instrument)."""

PILOT_SHARE = 0.3
"""Probability that a city is a Broadband-China pilot city (the instrument)."""


@dataclass(frozen=True)
class SyntheticTable:
    """A synthetic analysis table and its truth.

    Attributes
    ----------
    frame : DataFrame
        One row per firm (see :func:`make_synthetic_table`).
    truth : Truth
        True per-firm effects and what follows from them.
    config : SyntheticTableConfig or None
        The parameters the table was drawn with (needed by :meth:`exact_nuisances`).
    """

    frame: pd.DataFrame
    truth: Truth
    config: SyntheticTableConfig | None = None

    def exact_nuisances(self) -> tuple[np.ndarray, np.ndarray]:
        """The true nuisance functions at each firm: ``m = E[R | X, W]``, ``e = E[VA | X, W]``.

        Formulas in the module docstring; ``X`` are the modifiers and ``W`` the controls.
        They hold for every ``unobserved_confounding`` (``U`` has mean 0), although with
        ``U`` the residuals no longer identify the effect.

        Returns
        -------
        m : ndarray of shape (n,)
            ``E[R | X, W]`` per firm.
        e : ndarray of shape (n,)
            ``E[VA | X, W]`` per firm.

        Raises
        ------
        ValueError
            If the table carries no ``config`` (it was not made by
            :func:`make_synthetic_table`).
        """
        if self.config is None:
            raise ValueError(
                "exact_nuisances needs the generator's parameters: build the table with "
                "make_synthetic_table (its `config` is None)"
            )
        cfg, frame = self.config, self.frame
        kappa = cfg.confounding
        dev, prod, agglom = (
            frame[c].to_numpy(dtype=np.float64) for c in ("city_dev", "productivity", "geo_agglom")
        )
        e = kappa * (0.6 * dev + 0.4 * prod + 0.3 * agglom) + PILOT_SHARE * cfg.instrument_strength
        baseline = kappa * (0.8 * dev + 0.5 * prod + np.sin(agglom)) + 0.02 * frame[
            "firm_age"
        ].to_numpy(dtype=np.float64)
        tau = self.truth.tau_for(frame["firm_id"].to_numpy())
        return baseline + tau * e, e


def _effect_components(frame: pd.DataFrame) -> pd.DataFrame:
    """The terms f_j(x_j) of the effect, one column per modifier (zeros where f_j = 0)."""
    components = pd.DataFrame(0.0, index=frame.index, columns=MODIFIERS)
    own, trade = frame["ownership"], frame["trade_mode"]
    components["ownership"] = 0.25 * (own == "private") - 0.20 * (own == "SOE")
    components["trade_mode"] = 0.20 * (trade == "general") - 0.15 * (trade == "processing")
    components["factor_intensity"] = 0.15 * (frame["factor_intensity"] == "technology")
    components["knowledge_spillover"] = 0.30 * frame["knowledge_spillover"]
    components["supply_chain_flex"] = 0.20 * np.tanh(2 * frame["supply_chain_flex"])
    components["congestion"] = -0.15 * frame["congestion"]
    return components.astype(np.float64)


def make_synthetic_table(
    config: SyntheticTableConfig | None = None, *, random_state: int = 0
) -> SyntheticTable:
    """Draw the synthetic firm table described in the module docstring.

    Parameters
    ----------
    config : SyntheticTableConfig, optional
        Sizes and effect parameters; defaults if omitted.
    random_state : int
        Seed of the generator.

    Returns
    -------
    SyntheticTable
        ``frame`` has one row per firm: ``firm_id``, ``city``, ``pilot`` (instrument),
        the firm types, the controls, the mechanism proxies, the mediators ``d_<proxy>``,
        ``va_index`` (treatment) and ``resilience`` (outcome).
    """
    cfg = config or SyntheticTableConfig()
    rng = np.random.default_rng(random_state)
    n, g = cfg.n_units, cfg.n_clusters
    city = rng.integers(0, g, size=n)
    dev = rng.normal(size=g)
    shock = rng.normal(scale=cfg.cluster_effect, size=g)
    va_city = rng.normal(scale=0.5, size=g)
    pilot_city = (rng.random(g) < PILOT_SHARE).astype(np.float64)
    region_names, region_p = REGIONS
    city_region = rng.choice(region_names, size=g, p=region_p)

    frame = pd.DataFrame(
        {
            "firm_id": [f"F{i:06d}" for i in range(n)],
            "city": [f"C{c:03d}" for c in city],
            "region": city_region[city],
            "pilot": pilot_city[city],
        }
    )
    for column, (levels, probs) in FIRM_TYPES.items():
        frame[column] = rng.choice(levels, size=n, p=probs)
    frame["city_dev"] = dev[city]
    frame["productivity"] = 0.5 * dev[city] + rng.normal(size=n)
    frame["geo_agglom"] = 0.7 * dev[city] + rng.normal(scale=0.7, size=n)
    frame["firm_age"] = rng.uniform(1, 30, size=n).round(0)
    for proxies in MECHANISMS.values():
        for proxy in proxies:
            frame[proxy] = rng.normal(size=n)
    frame["knowledge_spillover"] = (
        0.4 * dev[city] + np.sqrt(1 - 0.16) * frame["knowledge_spillover"].to_numpy()
    )
    hidden = rng.normal(size=n)

    kappa, gamma = cfg.confounding, cfg.unobserved_confounding
    va = (
        kappa * (0.6 * frame["city_dev"] + 0.4 * frame["productivity"] + 0.3 * frame["geo_agglom"])
        + cfg.instrument_strength * frame["pilot"]
        + gamma * hidden
        + va_city[city]
        + rng.normal(size=n)
    ).to_numpy()
    components = cfg.heterogeneity * _effect_components(frame)
    het = components.sum(axis=1).to_numpy()
    tau = cfg.ate + het - het.mean()
    baseline = (
        kappa
        * (0.8 * frame["city_dev"] + 0.5 * frame["productivity"] + np.sin(frame["geo_agglom"]))
        + 0.02 * frame["firm_age"]
    ).to_numpy()
    outcome = baseline + tau * va + gamma * hidden + shock[city] + cfg.noise * rng.normal(size=n)
    for mediator, theta in MEDIATOR_EFFECTS.items():
        frame[mediator] = (
            theta * va + 0.3 * frame["city_dev"] + 0.2 * frame["productivity"] + rng.normal(size=n)
        )
    frame["va_index"] = va
    frame["resilience"] = outcome
    units = frame["firm_id"].to_numpy()
    truth = Truth(
        units=units,
        tau=tau,
        shap=(components - components.mean()).set_index(pd.Index(units)),
        mechanisms=MECHANISMS,
        mediator_effects=dict(MEDIATOR_EFFECTS),
        firm_types=frame[
            ["ownership", "size_class", "trade_mode", "factor_intensity", "region"]
        ].set_index(pd.Index(units)),
    )
    return SyntheticTable(frame=frame, truth=truth, config=cfg)
