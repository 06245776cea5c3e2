r"""Tables of the ATT by firm type: level estimates, equality tests, multiple testing.

For every dimension, aggregation (simple, dynamic, group, calendar) and key of the
aggregation (event time, cohort or period; the overall aggregate has key NaN), the levels'
estimates form one family, handled as the cross-sectional GATEs are
(:mod:`vaer.heterogeneity.gates`, same columns plus ``aggregation``, ``key`` and
``overall``): two-sided t-tests of zero with the DiD inference mode's degrees of freedom
(:mod:`vaer.did.inference`: Satterthwaite in the small-cluster mode, normal in the
asymptotic one), Holm-adjusted p-values (``p_adj``), Romano-Wolf p-values and a
simultaneous band over the levels from :func:`vaer.heterogeneity.multiple_testing.t_draws`
(the levels' cluster sums give their correlation).

Equality of the levels (``did_type_tests``): with ``theta`` the ``L`` level estimates,
``C`` the ``q = L - 1`` differences from the first level, ``s_c`` cluster ``c``'s sum of
the influence functions of ``C theta`` (divided by ``n``; in the small-cluster mode they
carry the CR2 arm-leverage factors) and ``V = sum_c s_c s_c'``, the Wald statistic is
``W = (C theta)' V^{-1} (C theta)``.

- ``small_cluster``: Hotelling's scaling with Pustejovsky and Tipton's (2018) degrees of
  freedom under the plug-in working model of :mod:`vaer.did.inference` (each cluster's
  sum its own variance): ``F = (eta - q + 1) / (eta q) W ~ F(q, eta - q + 1)``,
  ``eta = q (q + 1) / (2 sum_c h_c^2)``, ``h_c = s_c' V^{-1} s_c`` (the cluster's share
  of the statistic's metric; ``sum_c h_c = q``). For ``q = 1`` it is the squared t-test
  with the Satterthwaite ``df`` of :func:`vaer.did.inference.satterthwaite_df`; a few
  dominant cities make ``eta`` small and the test conservative rather than liberal.
- ``asymptotic``: ``F = W / q`` against ``F(q, G - 1)`` (``V`` with ``G / (G - 1)``),
  as the asymptotic pre-trend test.

Pairwise differences are t-tested the same way (``df_den`` their degrees of freedom),
with Holm and Romano-Wolf adjustments over the pairs of the family, as ``gate_tests``.

References: Pustejovsky, J. E. and Tipton, E. (2018), JBES 36(4), 672-683. Romano, J. P.
and Wolf, M. (2005), Econometrica 73(4).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from vaer.did.aggregate import AggregateResult
from vaer.did.inference import cluster_se_df, interval_critical, scaled_cluster_sums
from vaer.did.types import TypeATT
from vaer.heterogeneity.gates import GATE_COLUMNS, GATE_TEST_COLUMNS
from vaer.heterogeneity.multiple_testing import band_critical, holm, romano_wolf, t_draws

TYPE_COLUMNS = [*GATE_COLUMNS[:3], "aggregation", "key", "overall", *GATE_COLUMNS[3:]]
TYPE_TEST_COLUMNS = [*GATE_TEST_COLUMNS[:2], "aggregation", "key", *GATE_TEST_COLUMNS[2:]]
_LARGE_DF = 1e8  # stands for the normal's infinite df in the null draws


@dataclass(frozen=True)
class WaldEquality:
    """The equality test of one family of level estimates.

    Attributes
    ----------
    statistic : float
        The F statistic.
    df_num, df_den : float
        Its degrees of freedom (``q`` and ``eta - q + 1`` or ``G - 1``).
    p_value, wald : float
        Its p-value and the unscaled Wald statistic ``W``.
    """

    statistic: float
    df_num: int
    df_den: float
    p_value: float
    wald: float


def equality_test(
    estimates: np.ndarray, influence: np.ndarray, cluster: np.ndarray, n_clusters: int,
    inference: str,
) -> WaldEquality:  # fmt: skip
    """Test that every estimate of a family is equal (module docstring).

    Parameters
    ----------
    estimates : numpy.ndarray
        ``(L,)`` level estimates, ``L >= 2``.
    influence : numpy.ndarray
        ``(n_units, L)`` their influence functions (scale of :mod:`vaer.did.inference`).
    cluster : numpy.ndarray
        ``(n_units,)`` cluster codes.
    n_clusters : int
        ``G``.
    inference : {"small_cluster", "asymptotic"}

    Returns
    -------
    WaldEquality
        NaN statistic and p-value when the covariance of the differences is singular
        (e.g. more levels than informative clusters) or ``eta - q + 1 <= 0``.

    Raises
    ------
    ValueError
        With fewer than two estimates or mismatched shapes.
    """
    theta = np.asarray(estimates, dtype=np.float64)
    if theta.ndim != 1 or len(theta) < 2 or influence.shape[1:] != theta.shape:
        raise ValueError(
            "`estimates` must have shape (L,) with L >= 2 and `influence` shape (n, L); got "
            f"{theta.shape} and {influence.shape}"
        )
    q = len(theta) - 1
    contrast = np.column_stack([-np.ones(q), np.eye(q)])
    sums = scaled_cluster_sums(influence @ contrast.T, cluster, n_clusters, inference)
    v = sums.T @ sums
    diff = contrast @ theta
    nan = float("nan")
    values = np.linalg.eigvalsh(v)
    if values.min() <= 1e-12 * max(float(values.max()), 1e-300):
        return WaldEquality(nan, q, nan, nan, nan)
    wald = float(diff @ np.linalg.solve(v, diff))
    if inference == "asymptotic":
        df_den = float(n_clusters - 1)
        statistic = wald / q
    else:
        h = np.einsum("ca,ab,cb->c", sums, np.linalg.inv(v), sums)
        eta = q * (q + 1) / (2.0 * float(np.sum(h**2)))
        df_den = eta - q + 1
        if df_den <= 0:
            return WaldEquality(nan, q, df_den, nan, wald)
        statistic = df_den / (eta * q) * wald
    return WaldEquality(statistic, q, df_den, float(stats.f.sf(statistic, q, df_den)), wald)


@dataclass(frozen=True)
class _Family:
    """The level estimates of one (aggregation, key), aligned."""

    aggregation: str
    key: float
    levels: list[str]
    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    influence: np.ndarray  # (n_units, L)


def _families(result: TypeATT) -> list[_Family]:
    """Every (aggregation, key) with its levels' estimates; the overall row last."""
    out: list[_Family] = []
    names = list(next(iter(result.aggregates.values()), {}))
    for name in names:
        by_level: dict[str, AggregateResult] = {
            level: aggs[name] for level, aggs in result.aggregates.items()
        }
        keys = sorted({int(k) for agg in by_level.values() for k in agg.keys})
        for key in [*keys, None]:
            levels, est, se, df, cols = [], [], [], [], []
            for level, agg in by_level.items():
                if key is None:
                    values = (agg.overall_estimate, agg.overall_se, agg.overall_df)
                    column = agg.overall_influence
                else:
                    where = np.flatnonzero(agg.keys == key)
                    if len(where) == 0:
                        continue
                    k = int(where[0])
                    values = (agg.estimate[k], agg.se[k], agg.df[k])
                    column = agg.influence[:, k]
                if not np.isfinite(values[0]):
                    continue
                levels.append(level)
                est.append(values[0])
                se.append(values[1])
                df.append(values[2])
                cols.append(column)
            if levels:
                out.append(
                    _Family(
                        aggregation=name, key=float("nan") if key is None else float(key),
                        levels=levels, estimate=np.array(est), se=np.array(se),
                        df=np.array(df), influence=np.column_stack(cols),
                    )
                )  # fmt: skip
    return out


def _contributions(family: _Family, result: TypeATT, inference: str) -> np.ndarray:
    """``(G, L)`` cluster contributions whose cross-product is the levels' covariance."""
    cells = next(iter(result.cells.values()))
    return scaled_cluster_sums(family.influence, cells.cluster, cells.n_clusters, inference)


def type_frames(
    result: TypeATT, *, estimator: str = "cs_did", n_draws: int = 1000, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``did_types`` rows (columns ``TYPE_COLUMNS``) and ``did_type_tests`` rows
    (columns ``TYPE_TEST_COLUMNS``) of one dimension.

    Parameters
    ----------
    result : TypeATT
        From :func:`vaer.did.types.att_gt_by_type`.
    estimator : str
        Label of the estimator column.
    n_draws : int
        Null draws of the t-statistics for the bands and Romano-Wolf p-values (>= 20).
    random_state : int
        Seed of the draws.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)

    Raises
    ------
    ValueError
        If ``n_draws`` < 20.
    """
    if n_draws < 20:
        raise ValueError(f"`n_draws` must be an int >= 20; got {n_draws}")
    rows: list[dict[str, object]] = []
    tests: list[dict[str, object]] = []
    if not result.cells:
        return pd.DataFrame(columns=TYPE_COLUMNS), pd.DataFrame(columns=TYPE_TEST_COLUMNS)
    cells = next(iter(result.cells.values()))
    inference, alpha = cells.inference, cells.alpha
    for offset, family in enumerate(_families(result)):
        seed = random_state + 2 * offset
        head = {
            "estimator": estimator, "dimension": result.dimension,
            "aggregation": family.aggregation, "key": family.key,
        }  # fmt: skip
        tested = np.isfinite(family.se) & (family.se > 0)
        df = np.where(tested, family.df, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            t_stat = family.estimate / family.se
        p = np.where(tested, 2.0 * stats.t.sf(np.abs(t_stat), df), np.nan)
        half = interval_critical(alpha, df) * family.se
        draw_df = np.where(np.isposinf(df), _LARGE_DF, df)
        contributions = _contributions(family, result, inference)
        draws = t_draws(contributions, np.where(tested, family.se, np.nan), draw_df, n_draws, seed)
        band = band_critical(draws, draw_df, 1.0 - alpha) * family.se
        p_rw, p_holm = romano_wolf(p, draws, draw_df), holm(p)
        for k, level in enumerate(family.levels):
            rows.append(
                {
                    **head, "level": level, "overall": not np.isfinite(family.key),
                    "estimate": family.estimate[k], "se": family.se[k],
                    "ci_low": family.estimate[k] - half[k], "ci_high": family.estimate[k] + half[k],
                    "n": result.n_units[level], "p_adj": p_holm[k], "p_value": p[k],
                    "p_romano_wolf": p_rw[k], "band_low": family.estimate[k] - band[k],
                    "band_high": family.estimate[k] + band[k], "df": df[k],
                    "n_clusters": result.n_clusters[level],
                }
            )  # fmt: skip
        testable = np.flatnonzero(tested)
        if len(testable) < 2:
            continue
        cluster, n_clusters = cells.cluster, cells.n_clusters
        joint = equality_test(
            family.estimate[testable], family.influence[:, testable], cluster, n_clusters,
            inference,
        )  # fmt: skip
        untestable = [family.levels[k] for k in range(len(family.levels)) if k not in testable]
        tests.append(
            {
                **head, "test": "equality",
                "contrast": "all levels equal" if not untestable
                else f"levels equal, except {', '.join(untestable)} (no variance estimate)",
                "estimate": float("nan"), "se": float("nan"), "statistic": joint.statistic,
                "df": joint.df_num, "df_den": joint.df_den, "p_value": joint.p_value,
                "p_holm": joint.p_value, "p_romano_wolf": joint.p_value,
            }
        )  # fmt: skip
        pairs = list(combinations(testable.tolist(), 2))
        diff_inf = np.column_stack(
            [family.influence[:, a] - family.influence[:, b] for a, b in pairs]
        )
        diff_est = np.array([family.estimate[a] - family.estimate[b] for a, b in pairs])
        sums = scaled_cluster_sums(diff_inf, cluster, n_clusters, inference)
        diff_se, diff_df = cluster_se_df(diff_inf, cluster, n_clusters, inference)
        with np.errstate(invalid="ignore", divide="ignore"):
            diff_t = diff_est / diff_se
        diff_p = 2.0 * stats.t.sf(np.abs(diff_t), diff_df)
        diff_draw_df = np.where(np.isposinf(diff_df), _LARGE_DF, diff_df)
        diff_draws = t_draws(sums, diff_se, diff_draw_df, n_draws, seed + 1)
        diff_rw, diff_holm = romano_wolf(diff_p, diff_draws, diff_draw_df), holm(diff_p)
        for row, (a, b) in enumerate(pairs):
            tests.append(
                {
                    **head, "test": "difference",
                    "contrast": f"{family.levels[a]} - {family.levels[b]}",
                    "estimate": diff_est[row], "se": diff_se[row], "statistic": diff_t[row],
                    "df": 1, "df_den": diff_df[row], "p_value": diff_p[row],
                    "p_holm": diff_holm[row], "p_romano_wolf": diff_rw[row],
                }
            )  # fmt: skip
    return (
        pd.DataFrame(rows, columns=TYPE_COLUMNS),
        pd.DataFrame(tests, columns=TYPE_TEST_COLUMNS),
    )
