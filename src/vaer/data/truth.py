"""The known truth of a synthetic data set, one interface for every generator.

Every stage that checks itself against truth (estimation, heterogeneity, attribution,
robustness) reads it through :class:`Truth`, whatever generator made the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Truth:
    """True effects of a synthetic data set.

    Attributes
    ----------
    units : ndarray of shape (n,)
        Unit ids (rows of the analysis table), aligned with ``tau``.
    tau : ndarray of shape (n,)
        True effect of one more unit of VA on the outcome, per unit.
    shap : DataFrame of shape (n, p)
        True SHAP value of each modifier (original column names) per unit, indexed by
        unit; rows sum to ``tau - mean(tau)``.
    mechanisms : dict
        Channel -> proxy columns (the columns of ``shap`` that belong to the channel).
    mediator_effects : dict
        Mediator column -> true effect of one more unit of VA on it.
    firm_types : DataFrame
        Firm-type columns indexed by unit, for true group effects.
    """

    units: np.ndarray
    tau: np.ndarray
    shap: pd.DataFrame
    mechanisms: dict[str, list[str]] = field(default_factory=dict)
    mediator_effects: dict[str, float] = field(default_factory=dict)
    firm_types: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ate(self) -> float:
        """True average effect: the mean of ``tau``."""
        return float(np.mean(self.tau))

    def tau_for(self, units: np.ndarray) -> np.ndarray:
        """True ``tau`` for the given unit ids, in their order.

        Raises
        ------
        KeyError
            If a unit id is unknown.
        """
        return pd.Series(self.tau, index=self.units).loc[units].to_numpy()

    def shap_for(self, units: np.ndarray) -> pd.DataFrame:
        """True SHAP values (one column per modifier) for the given unit ids, in order."""
        return self.shap.loc[units]

    def gates(self, dimension: str, units: np.ndarray | None = None) -> pd.Series:
        """True group average effect per level of a firm-type column (over ``units``)."""
        chosen = self.units if units is None else units
        labels = self.firm_types.loc[chosen, dimension].to_numpy()
        return pd.Series(self.tau_for(chosen)).groupby(labels).mean()

    def channel_shares(self, units: np.ndarray | None = None) -> pd.Series:
        """Each channel's share of the mean absolute true SHAP value (summed over its proxies)."""
        shap = self.shap if units is None else self.shap_for(units)
        per_channel = pd.DataFrame(
            {channel: shap[cols].sum(axis=1) for channel, cols in self.mechanisms.items()}
        )
        mean_abs = per_channel.abs().mean()
        return mean_abs / mean_abs.sum()
