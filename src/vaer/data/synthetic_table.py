r"""A cross-sectional synthetic firm table with a known effect for every firm.

One row per firm, outcome and treatment already built (``data.mode: table``). It is
small and fast, for the demo and for tests; the full firm-year panel generator is
:mod:`vaer.data.synthetic`.

Model
-----
Firm :math:`i` sits in city :math:`c(i)` (``n_clusters`` cities). City development
:math:`D_c \sim N(0, 1)`, city shock :math:`u_c \sim N(0, \text{cluster\_effect}^2)` and a
city VA component :math:`v_c \sim N(0, 0.5^2)`. Firm controls: productivity
:math:`P_i = 0.5 D_c + N(0, 1)`, geographic agglomeration :math:`A_i = 0.7 D_c + N(0, 0.7^2)`,
firm age :math:`\text{Age}_i \sim U(1, 30)`. Firm types (ownership, size class, trade mode,
factor intensity, region) are categorical; six mechanism proxies are standard normal (the
knowledge-spillover proxy is correlated 0.4 with :math:`D_c`).

Treatment (virtual agglomeration index, continuous):

.. math:: VA_i = \kappa (0.6 D_c + 0.4 P_i + 0.3 A_i) + v_c + N(0, 1),

with :math:`\kappa` = ``confounding``. Effect (additive in the modifiers):

.. math::
    \tau(x) = \bar\tau + h\,[\,0.25\,1\{\text{private}\} - 0.20\,1\{\text{SOE}\}
              + 0.20\,1\{\text{general}\} - 0.15\,1\{\text{processing}\}
              + 0.15\,1\{\text{technology}\} + 0.30\,K + 0.20 \tanh(2 S) - 0.15 C\,] + c_0

with :math:`h` = ``heterogeneity``, :math:`K, S, C` the knowledge-spillover,
supply-chain-flexibility and congestion proxies, and :math:`c_0` chosen so that the sample
mean of :math:`\tau` equals :math:`\bar\tau` = ``ate`` exactly.
Outcome (export resilience):

.. math:: R_i = \kappa (0.8 D_c + 0.5 P_i + \sin A_i) + 0.02\,\text{Age}_i
                + \tau(X_i)\,VA_i + u_c + \sigma \varepsilon_i,

with :math:`\sigma` = ``noise``. Because :math:`D_c, P_i, A_i` drive both VA and R, a
regression of R on VA alone is biased; conditioning on the controls removes the bias.

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

FIRM_TYPES: dict[str, tuple[list[str], list[float]]] = {
    "ownership": (["SOE", "private", "foreign"], [0.2, 0.55, 0.25]),
    "size_class": (["small", "medium", "large"], [0.5, 0.35, 0.15]),
    "trade_mode": (["general", "processing", "mixed"], [0.55, 0.25, 0.20]),
    "factor_intensity": (["labour", "capital", "technology"], [0.4, 0.35, 0.25]),
}
REGIONS = (["east", "central", "west"], [0.6, 0.25, 0.15])
MECHANISMS: dict[str, str] = {
    "knowledge_spillover": "knowledge_spillover",
    "congestion_relief": "congestion",
    "supply_chain_flexibility": "supply_chain_flex",
    "market_responsiveness": "market_response",
    "export_cost": "export_cost",
    "smart_green": "smart_green",
}
CONTROLS = ["city_dev", "productivity", "geo_agglom", "firm_age"]


@dataclass(frozen=True)
class TableTruth:
    """Known truth of a synthetic table.

    Attributes
    ----------
    units : ndarray of shape (n,)
        Unit ids, aligned with ``tau``.
    tau : ndarray of shape (n,)
        True effect of one more unit of VA on resilience, per firm.
    """

    units: np.ndarray
    tau: np.ndarray

    @property
    def ate(self) -> float:
        """True average effect: the mean of ``tau``."""
        return float(np.mean(self.tau))

    def tau_for(self, units: np.ndarray) -> np.ndarray:
        """True ``tau`` for the given unit ids (in their order)."""
        lookup = pd.Series(self.tau, index=self.units)
        return lookup.loc[units].to_numpy()


@dataclass(frozen=True)
class SyntheticTable:
    """A synthetic analysis table and its truth."""

    frame: pd.DataFrame
    truth: TableTruth


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
        ``frame`` has one row per firm with columns ``firm_id``, ``city``, the firm
        types, the controls, the mechanism proxies, ``va_index`` and ``resilience``.
    """
    cfg = config or SyntheticTableConfig()
    rng = np.random.default_rng(random_state)
    n, g = cfg.n_units, cfg.n_clusters
    city = rng.integers(0, g, size=n)
    dev = rng.normal(size=g)
    shock = rng.normal(scale=cfg.cluster_effect, size=g)
    va_city = rng.normal(scale=0.5, size=g)
    region_names, region_p = REGIONS
    city_region = rng.choice(region_names, size=g, p=region_p)

    frame = pd.DataFrame(
        {
            "firm_id": [f"F{i:06d}" for i in range(n)],
            "city": [f"C{c:03d}" for c in city],
            "region": city_region[city],
        }
    )
    for column, (levels, probs) in FIRM_TYPES.items():
        frame[column] = rng.choice(levels, size=n, p=probs)
    frame["city_dev"] = dev[city]
    frame["productivity"] = 0.5 * dev[city] + rng.normal(size=n)
    frame["geo_agglom"] = 0.7 * dev[city] + rng.normal(scale=0.7, size=n)
    frame["firm_age"] = rng.uniform(1, 30, size=n).round(0)
    for proxy in MECHANISMS.values():
        frame[proxy] = rng.normal(size=n)
    frame["knowledge_spillover"] = (
        0.4 * dev[city] + np.sqrt(1 - 0.16) * frame["knowledge_spillover"].to_numpy()
    )

    kappa = cfg.confounding
    va = (
        kappa * (0.6 * frame["city_dev"] + 0.4 * frame["productivity"] + 0.3 * frame["geo_agglom"])
        + va_city[city]
        + rng.normal(size=n)
    ).to_numpy()
    het = (
        0.25 * (frame["ownership"] == "private")
        - 0.20 * (frame["ownership"] == "SOE")
        + 0.20 * (frame["trade_mode"] == "general")
        - 0.15 * (frame["trade_mode"] == "processing")
        + 0.15 * (frame["factor_intensity"] == "technology")
        + 0.30 * frame["knowledge_spillover"]
        + 0.20 * np.tanh(2 * frame["supply_chain_flex"])
        - 0.15 * frame["congestion"]
    ).to_numpy(dtype=float)
    tau = cfg.ate + cfg.heterogeneity * (het - het.mean())
    baseline = (
        kappa
        * (0.8 * frame["city_dev"] + 0.5 * frame["productivity"] + np.sin(frame["geo_agglom"]))
        + 0.02 * frame["firm_age"]
    ).to_numpy()
    outcome = baseline + tau * va + shock[city] + cfg.noise * rng.normal(size=n)
    frame["va_index"] = va
    frame["resilience"] = outcome
    truth = TableTruth(units=frame["firm_id"].to_numpy(), tau=tau)
    return SyntheticTable(frame=frame, truth=truth)
