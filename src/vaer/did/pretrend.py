"""Joint test that the pre-treatment event-time ATTs are zero (a parallel-trends check).

The statistic is the cluster-robust Wald statistic ``W = theta' V^{-1} theta`` of the
``q`` pre-period event-time ATTs ``theta(e)``, ``e < -anticipation`` (those with a
positive variance; the reference period of a universal base is 0 by construction and
left out), with ``V`` the city-cluster-robust covariance of their influence functions
(:func:`vaer.did.inference.cluster_vcov`, factor ``G/(G-1)``).

Reference distribution: the p-value reported first is from ``F = W / q`` against
``F(q, G - 1)``. ``V`` is built from ``G`` cluster sums, so it has at most ``G - 1``
degrees of freedom and is noisy when ``G`` is small; the asymptotic ``chi2(q)`` treats it
as known and over-rejects with few clusters. ``F(q, G - 1)`` is the convention of
Stata's ``test`` after ``vce(cluster)`` (Cameron and Miller 2015, section VII) and is
also given as ``chi2(q)`` for comparison; the two agree as ``G`` grows.

Reference: Cameron, A. C. and Miller, D. L. (2015), "A practitioner's guide to
cluster-robust inference", Journal of Human Resources 50(2), 317-372.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vaer.did.aggregate import AggregateResult, aggregate
from vaer.did.att_gt import ATTGTResult
from vaer.did.inference import cluster_vcov


@dataclass(frozen=True)
class PretrendTest:
    """A joint Wald test of the pre-treatment event-time ATTs.

    Attributes
    ----------
    event_times : numpy.ndarray
        The ``q`` event times tested.
    estimates : numpy.ndarray
        Their event-time ATTs.
    wald : float
        ``theta' V^{-1} theta``.
    df : int
        ``q``.
    p_chi2 : float
        p-value against ``chi2(q)``.
    f_stat : float
        ``wald / q``.
    df_denom : int
        ``G - 1``.
    p_value : float
        p-value against ``F(q, G - 1)`` (the one to report; see the module docstring).
    """

    event_times: np.ndarray
    estimates: np.ndarray
    wald: float
    df: int
    p_chi2: float
    f_stat: float
    df_denom: int
    p_value: float

    def to_frame(self) -> pd.DataFrame:
        """One row: test, event_times, wald, df, p_chi2, f_stat, df_denom, p_value."""
        return pd.DataFrame(
            {
                "test": ["pre-trend joint Wald (cluster-robust)"],
                "event_times": [",".join(str(int(e)) for e in self.event_times)],
                "wald": [self.wald],
                "df": [self.df],
                "p_chi2": [self.p_chi2],
                "f_stat": [self.f_stat],
                "df_denom": [self.df_denom],
                "p_value": [self.p_value],
            }
        )


def pretrend_test(result: ATTGTResult | AggregateResult, *, min_e: float = -np.inf) -> PretrendTest:
    """Test jointly that every pre-treatment event-time ATT is zero.

    Parameters
    ----------
    result : ATTGTResult or AggregateResult
        ATT(g, t) (aggregated here by event time) or a ``"dynamic"`` aggregation.
    min_e : float
        Leave out event times below ``min_e`` (when aggregating an ATTGTResult).

    Returns
    -------
    PretrendTest
        Statistic and p-values.

    Raises
    ------
    ValueError
        If ``result`` is an aggregation other than ``"dynamic"``, there is no
        pre-treatment event time with positive variance, more event times than
        ``G - 1``, or a singular covariance.
    """
    if isinstance(result, ATTGTResult):
        dynamic = aggregate(result, "dynamic", min_e=min_e)
    elif isinstance(result, AggregateResult):
        if result.aggregation != "dynamic":
            raise ValueError(
                f"the pre-trend test needs a 'dynamic' aggregation; got {result.aggregation!r}"
            )
        dynamic = result
    else:
        raise ValueError(
            f"`result` must be an ATTGTResult or AggregateResult; got {type(result).__name__}"
        )
    pre = (dynamic.keys < -dynamic.anticipation) & np.isfinite(dynamic.se)
    if not np.any(pre):
        raise ValueError("no pre-treatment event time with a positive variance to test")
    theta = dynamic.estimate[pre]
    q = len(theta)
    g = dynamic.n_clusters
    if q > g - 1:
        raise ValueError(
            f"{q} pre-treatment event times but only {g} clusters; the cluster-robust "
            f"covariance has rank <= {g - 1}: restrict them with `min_e`"
        )
    vcov = cluster_vcov(dynamic.influence[:, pre], dynamic.cluster, g)
    if np.linalg.matrix_rank(vcov) < q:
        raise ValueError(
            "the covariance of the pre-treatment event-time ATTs is singular (collinear "
            "estimates); restrict them with `min_e`"
        )
    wald = float(theta @ np.linalg.solve(vcov, theta))
    f_stat = wald / q
    return PretrendTest(
        event_times=dynamic.keys[pre],
        estimates=theta,
        wald=wald,
        df=q,
        p_chi2=float(stats.chi2.sf(wald, q)),
        f_stat=f_stat,
        df_denom=g - 1,
        p_value=float(stats.f.sf(f_stat, q, g - 1)),
    )
