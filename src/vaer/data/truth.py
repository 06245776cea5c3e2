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

    def channel_contributions(self, units: np.ndarray | None = None) -> pd.DataFrame:
        """True contribution of each channel per unit: its proxies' true SHAP values summed."""
        shap = self.shap if units is None else self.shap_for(units)
        return pd.DataFrame(
            {channel: shap[cols].sum(axis=1) for channel, cols in self.mechanisms.items()}
        )

    def channel_importance(self, units: np.ndarray | None = None) -> pd.Series:
        """Variance of each channel's true contribution over ``units`` (all by default):
        :math:`I_c = \\operatorname{Var}\\phi_c(X)` (population variance, ``ddof=0``), the
        quantity :mod:`vaer.attribution.importance` estimates."""
        return self.channel_contributions(units).var(ddof=0)

    def channel_shares(self, units: np.ndarray | None = None) -> pd.Series:
        """Each channel's share of the variance of the channels' true contributions,
        :math:`I_c / \\sum_{c'} I_{c'}` (:meth:`channel_importance`). For an effect additive
        across channels with independent proxies, this is channel :math:`c`'s part of the
        variance of the effect across firms that the channels explain together. A channel
        without effect has share 0; NaN for every channel if no channel varies."""
        importance = self.channel_importance(units)
        total = float(importance.sum())
        return importance / total if total > 0 else importance * np.nan

    def linear_projection_shares(
        self, x: pd.DataFrame, feature_groups: dict[str, list[str]]
    ) -> pd.Series:
        """Channel shares of the best linear projection of the true effect on ``x``.

        The effect a linear final stage estimates is :math:`x'\\beta` with
        :math:`\\beta` the least-squares projection of :math:`\\tau(x)` on the encoded
        modifiers (with an intercept; econml's ``LinearDML`` weights it by the treatment's
        residual variance, equal across firms when that variance does not depend on
        :math:`x`). Its exact SHAP values are :math:`\\beta_j (x_j - \\bar x_j)`, so a
        channel's share is defined as in :meth:`channel_shares` on them. Equals
        :meth:`channel_shares` when the true effect is linear in ``x``.

        Parameters
        ----------
        x : DataFrame of shape (n, p)
            Encoded modifiers indexed by unit id (every unit of ``x`` must be known).
        feature_groups : dict
            Original column -> encoded columns of ``x`` (:class:`AnalysisData`).

        Returns
        -------
        Series
            Share per channel (NaN for every channel if none varies).
        """
        values = x.to_numpy(dtype=np.float64)
        design = np.column_stack([np.ones(len(values)), values])
        beta = np.linalg.lstsq(design, self.tau_for(x.index.to_numpy()), rcond=None)[0][1:]
        contributions = pd.DataFrame((values - values.mean(axis=0)) * beta, columns=x.columns)
        importance = pd.Series(
            {
                channel: contributions[
                    [c for proxy in proxies for c in feature_groups.get(proxy, [proxy])]
                ]
                .sum(axis=1)
                .var(ddof=0)
                for channel, proxies in self.mechanisms.items()
            }
        )
        total = float(importance.sum())
        return importance / total if total > 0 else importance * np.nan
