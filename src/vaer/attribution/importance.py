r"""Debiased mean squared SHAP contributions and shares, with intervals that include the
estimation error of the effect model.

Estimand
--------
For a group of modifiers :math:`c` (a mechanism channel: the sum over its proxies, or one
modifier) with SHAP contribution :math:`\phi_c(x)` to the effect :math:`\tau(x)`, the
*importance* is the variance of that contribution across firms and the *share* its part
of the total over channels:

.. math:: I_c = \operatorname{Var}\,\phi_c(X), \qquad s_c = I_c \Big/ \sum_{c'} I_{c'}.

If :math:`\tau` is additive across channels with independent proxies, :math:`\phi_c(x) =
E[\tau(X) \mid X_c = x_c] - E[\tau(X)]`, :math:`I_c` is the variance of the effect that
channel :math:`c` explains on its own (the numerator of a first-order Sobol index; the
"keep-one-in" treatment-effect variable importance of Hines, Diaz-Ordaz and Vansteelandt)
and :math:`s_c` its share of the variance that the channels explain. A channel with no effect
has :math:`I_c = s_c = 0`. :meth:`vaer.data.truth.Truth.channel_shares` defines the true
shares the same way.

Why not the share of mean :math:`|\phi|` (the old definition): it is positive for any
noisy estimate, so a channel without effect always gets a positive share and an interval
that cannot reach 0 (on a held-out table, 11.6% [11.0%, 12.3%] for a proxy that only
tracked city GDP). Its square can be debiased; the absolute value cannot.

Estimator
---------
Each explained firm :math:`i` has two SHAP values :math:`\phi^a_{ic}, \phi^b_{ic}` from
models fitted on disjoint folds of clusters, neither holding firm :math:`i`'s
(:mod:`vaer.attribution.honest`), the explained functions :math:`\tau^a(x_i),
\tau^b(x_i)`, and the estimator's doubly robust score :math:`G_i` (``scores``:
:math:`E[G_i \mid X_i] = \tau(X_i)`). With the SHAP values centred within the firm's fold,

.. math:: \psi_{ic} = \phi^a_{ic}\phi^b_{ic} + \phi^b_{ic}\,(G_i - \tau^a(x_i))
                      + \phi^a_{ic}\,(G_i - \tau^b(x_i)), \qquad
          \hat I_c = \tfrac1n \textstyle\sum_i \psi_{ic}.

* The product of two *independent* estimates has no noise-squared term
  (:math:`E[\phi^a\phi^b] = E[\phi^a]E[\phi^b]`), unlike :math:`(\phi^a)^2`: a channel
  whose models learned only noise is estimated at 0 on average, not at its noise
  variance.
* The two correction terms are the one-step (doubly robust) correction of the plug-in
  for the functional :math:`E[\phi_c(X)^2]`, whose derivative in the direction
  :math:`h` of :math:`\tau` is :math:`2E[\phi_c(X) h(X)]` (the projection onto functions
  of :math:`X_c` is self-adjoint): they remove the error that is linear in the models'
  errors, leaving :math:`-\langle \phi^a - \phi, \phi^b - \phi\rangle`, i.e. the product of
  the two models' errors; its mean is minus the squared bias of the fold models'
  contributions, second order (the efficient-influence-function estimators of Hines,
  Diaz-Ordaz and Vansteelandt, 2025, and Williamson et al., 2021, with the plug-in's
  square replaced by a product of independent estimates). Because the first-order
  term is now a mean of the firms' :math:`\psi`, its variance, *including the estimation
  error of the effect model*, is estimated by the cluster-robust (CR2) covariance of the
  :math:`\psi_{ic}` over the explained firms' clusters; the fold models' errors that
  remain (their product) are not in it: where a channel has no effect the first-order
  term vanishes too and that product is of the same order, so the level of the test of
  no effect is measured (``benchmarks/channel_shares.py``) rather than guaranteed.

Shares and intervals
--------------------
:math:`\hat s_c = \hat I_c / \hat T`, :math:`\hat T = \sum_c \hat I_c`. The interval is
Fieller's for a ratio of two jointly normal estimates (Fieller, 1954): the set of
:math:`s` with :math:`(\hat I_c - s\hat T)^2 \le q^2\,\widehat{\operatorname{Var}}(\hat I_c
- s \hat T)`, with :math:`q` the quantile of :math:`t` with Bell and McCaffrey's degrees
of freedom (:func:`cluster_covariance`; :math:`G - 1` for equal clusters);
it is bounded only if :math:`\hat T` is significantly positive, otherwise the interval is
all of [0, 1]. Intervals are clipped to [0, 1]; point estimates are not (a channel without
effect can be estimated slightly below 0). The interval reaches 0 exactly when the
one-sided test of :math:`I_c = 0` (``p_value``) has :math:`t \le q`.

References
----------
Fieller, E. C. (1954). Some problems in interval estimation. *JRSS B* 16(2), 175-185.
Hines, O. J., Diaz-Ordaz, K. and Vansteelandt, S. (2025). Variable importance measures for
heterogeneous causal effects. *Biometrics* 81(4), ujaf140 (arXiv:2204.06030).
Williamson, B. D., Gilbert, P. B., Carone, M. and Simon, N. (2021). Nonparametric variable
importance assessment using machine learning techniques. *Biometrics* 77(1), 9-22.
Bell, R. M. and McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
regression with multi-stage samples. *Survey Methodology* 28(2), 169-181.
Imbens, G. W. and Kolesár, M. (2016). Robust standard errors in small samples: some
practical advice. *Rev. Econ. Stat.* 98(4), 701-712.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

IMPORTANCE_COLUMNS = [
    "share",
    "ci_low",
    "ci_high",
    "share_se",
    "importance",
    "importance_se",
    "p_value",
]


def importance_scores(
    first: pd.DataFrame,
    second: pd.DataFrame,
    first_prediction: np.ndarray,
    second_prediction: np.ndarray,
    pseudo_outcome: np.ndarray,
    folds: np.ndarray,
) -> pd.DataFrame:
    r"""Per-unit one-step scores :math:`\psi_{ic}` of the mean squared contribution.

    Parameters
    ----------
    first, second : DataFrame of shape (n, k)
        Two independent SHAP contributions per unit (same columns, e.g. channels).
    first_prediction, second_prediction : ndarray of shape (n,)
        The two explained functions at each unit.
    pseudo_outcome : ndarray of shape (n,)
        Doubly robust scores :math:`G_i` of the units.
    folds : ndarray of shape (n,)
        Fold of each unit; contributions are centred within folds.

    Returns
    -------
    DataFrame of shape (n, k)
        :math:`\psi_{ic}`; their mean estimates :math:`\operatorname{Var}\phi_c(X)`.

    Raises
    ------
    ValueError
        If shapes or columns disagree, or a value is not finite.
    """
    if list(first.columns) != list(second.columns) or first.shape != second.shape:
        raise ValueError(
            "`first` and `second` must have the same columns and rows; got "
            f"{first.shape} and {second.shape}"
        )
    n = len(first)
    arrays = {
        "first_prediction": first_prediction,
        "second_prediction": second_prediction,
        "pseudo_outcome": pseudo_outcome,
        "folds": folds,
    }
    for name, array in arrays.items():
        if np.shape(array) != (n,):
            raise ValueError(f"`{name}` must have shape ({n},); got {np.shape(array)}")
    a = first.to_numpy(dtype=np.float64, copy=True)
    b = second.to_numpy(dtype=np.float64, copy=True)
    g = np.asarray(pseudo_outcome, dtype=np.float64)
    pa = np.asarray(first_prediction, dtype=np.float64)
    pb = np.asarray(second_prediction, dtype=np.float64)
    if not all(np.isfinite(v).all() for v in (a, b, g, pa, pb)):
        raise ValueError("SHAP values, predictions and pseudo-outcomes must be finite")
    codes = pd.factorize(np.asarray(folds))[0]
    counts = np.bincount(codes)[:, None]
    for values in (a, b):
        sums = np.zeros((len(counts), values.shape[1]))
        np.add.at(sums, codes, values)
        values -= (sums / counts)[codes]
    psi = a * b + b * (g - pa)[:, None] + a * (g - pb)[:, None]
    return pd.DataFrame(psi, columns=first.columns, index=first.index)


def cluster_covariance(values: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, float]:
    r"""CR2 covariance of the column means of ``values`` (n, k), and its Bell-McCaffrey
    degrees of freedom.

    A column mean is the OLS fit on a constant, whose leverage in cluster :math:`g` is
    :math:`m_g/n`, so the bias-reduced (CR2) covariance scales each cluster's sum of
    centred values by :math:`(1 - m_g/n)^{-1/2}` (Bell and McCaffrey, 2002):
    :math:`\hat V = n^{-2}\sum_g (1 - m_g/n)^{-1} S_g S_g^	op`. The degrees of freedom of
    a mean are Bell and McCaffrey's Satterthwaite approximation under independent
    homoskedastic errors, :math:`(\operatorname{tr} M)^2/\operatorname{tr} M^2` with
    :math:`M = \operatorname{diag}(\Delta) - u u^	op/n`, :math:`lpha_g = (1 -
    m_g/n)^{-1/2}/n`, :math:`u_g = lpha_g m_g`, :math:`\Delta_g = lpha_g^2 m_g`
    (Imbens and Kolesár, 2016, eq. 9); with equal cluster sizes the covariance is CR1's
    and the degrees of freedom are :math:`G - 1`. They depend on the cluster sizes only,
    so every contrast of the columns has the same.

    Returns
    -------
    cov : ndarray of shape (k, k)
    df : float

    Raises
    ------
    ValueError
        If there are fewer than 2 clusters or the lengths differ.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(clusters) != len(values):
        raise ValueError(
            f"`clusters` must have one entry per unit ({len(values)}); got {len(clusters)}"
        )
    codes, labels = pd.factorize(np.asarray(clusters))
    g = len(labels)
    if g < 2:
        raise ValueError(f"cluster-robust variances need at least 2 clusters; got {g}")
    n = len(values)
    sizes = np.bincount(codes, minlength=g).astype(np.float64)
    factors = 1.0 / np.sqrt(1.0 - sizes / n)
    sums = np.zeros((g, values.shape[1]))
    np.add.at(sums, codes, values - values.mean(axis=0))
    scaled = sums * factors[:, None]
    alpha = factors / n
    u = alpha * sizes
    delta = alpha**2 * sizes
    trace = float(delta.sum() - np.sum(u**2) / n)
    trace_sq = float(np.sum(delta**2) - 2 * np.sum(u**2 * delta) / n + np.sum(u**2) ** 2 / n**2)
    df = max(1.0, trace**2 / trace_sq) if trace > 0 and trace_sq > 0 else 1.0
    return np.asarray(scaled.T @ scaled / n**2), df


def fieller_interval(
    numerator: float,
    denominator: float,
    var_num: float,
    cov: float,
    var_den: float,
    q: float,
) -> tuple[float, float]:
    """Fieller's interval for ``numerator / denominator``, clipped to [0, 1].

    The set of ``s`` with ``(num - s den)^2 <= q^2 (var_num - 2 s cov + s^2 var_den)``;
    when ``den^2 <= q^2 var_den`` it is unbounded and [0, 1] is returned.
    """
    a = denominator**2 - q**2 * var_den
    if a <= 0:
        return 0.0, 1.0
    b = -2.0 * (numerator * denominator - q**2 * cov)
    c = numerator**2 - q**2 * var_num
    disc = max(b * b - 4 * a * c, 0.0)
    root = np.sqrt(disc)
    low, high = (-b - root) / (2 * a), (-b + root) / (2 * a)
    return float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))


def importance_table(
    psi: pd.DataFrame, clusters: np.ndarray, ci_level: float = 0.95
) -> pd.DataFrame:
    r"""Importance, share and intervals of every column of ``psi``.

    Parameters
    ----------
    psi : DataFrame of shape (n, k)
        From :func:`importance_scores`.
    clusters : ndarray of shape (n,)
        Cluster of each unit (CR2 covariance, Bell-McCaffrey :math:`t` quantiles,
        :func:`cluster_covariance`).
    ci_level : float
        In (0.5, 1).

    Returns
    -------
    DataFrame
        Indexed by the columns of ``psi``, with :data:`IMPORTANCE_COLUMNS`:
        ``importance`` (:math:`\hat I_c`) and ``importance_se``; ``share``
        (:math:`\hat I_c/\hat T`, NaN if :math:`\hat T \le 0`), ``share_se`` (delta
        method), Fieller's ``ci_low``/``ci_high`` clipped to [0, 1]; ``p_value`` of the
        one-sided test of :math:`I_c = 0` against :math:`I_c > 0`.

    Raises
    ------
    ValueError
        If ``ci_level`` is outside (0.5, 1), ``psi`` is empty, or there are fewer than 2
        clusters.
    """
    if not 0.5 < ci_level < 1.0:
        raise ValueError(f"`ci_level` must be in (0.5, 1); got {ci_level}")
    if psi.empty:
        raise ValueError("`psi` must have at least one unit and one column")
    values = psi.to_numpy(dtype=np.float64)
    cov, df = cluster_covariance(values, clusters)
    q = float(stats.t.ppf(0.5 + ci_level / 2, df=df))
    importance = values.mean(axis=0)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    total = float(importance.sum())
    cov_total = cov.sum(axis=1)
    var_total = float(cov.sum())
    rows = []
    for j in range(values.shape[1]):
        if total > 0:
            share = importance[j] / total
            var = cov[j, j] - 2 * share * cov_total[j] + share**2 * var_total
            share_se = float(np.sqrt(max(var, 0.0))) / total
        else:
            share, share_se = np.nan, np.nan
        low, high = (
            fieller_interval(importance[j], total, cov[j, j], cov_total[j], var_total, q)
            if total > 0
            else (0.0, 1.0)
        )
        if se[j] > 0:
            t = importance[j] / se[j]
        else:
            t = np.inf if importance[j] > 0 else (-np.inf if importance[j] < 0 else np.nan)
        p_value = float(stats.t.sf(t, df=df))
        rows.append(
            {
                "share": share,
                "ci_low": low,
                "ci_high": high,
                "share_se": share_se,
                "importance": float(importance[j]),
                "importance_se": float(se[j]),
                "p_value": p_value,
            }
        )
    return pd.DataFrame(rows, index=pd.Index(psi.columns), columns=IMPORTANCE_COLUMNS)
