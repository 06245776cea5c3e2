"""Fixed-length confidence intervals under smoothness restrictions (Delta^SD(M)).

Rambachan and Roth (2023, section 4.1) use the fixed-length confidence interval (FLCI)
of Armstrong and Kolesar (2018, 2020) for ``Delta^SD(M)``: an affine estimator
``theta_hat = v' beta_hat`` with ``v = (v_pre, l)`` (so it is unbiased for any
``tau_post``) whose worst-case bias over ``delta in Delta^SD(M)`` is ``b(v)``, and the
interval ``v' beta_hat +/- sd(v) cv_alpha(b(v) / sd(v))``, ``sd(v) = sqrt(v' Sigma v)``
and ``cv_alpha(t)`` the ``1 - alpha`` quantile of ``|N(t, 1)|``. It covers
``theta = l' tau_post`` with probability ``>= 1 - alpha`` uniformly over
``Delta^SD(M)``; ``v_pre`` minimises the half-length. Because ``Delta^SD(M)`` is convex
and centrosymmetric the optimal affine estimator has no intercept and the FLCI is near
optimal in expected length (Armstrong and Kolesar 2018); Rambachan and Roth recommend it
for ``Delta^SD`` (their section 4.1, Proposition 4.1), as R ``HonestDiD`` does.

The bias in closed form: with the full trend vector ``delta`` (pre periods, the
reference period fixed at 0, post periods), every ``delta`` with ``delta_0 = 0`` is
``delta = P d + s t`` with ``d`` its second differences (``|d_j| <= M``), ``t`` the
event time and ``s`` a free slope. With ``w = (v_pre, 0, l)``, ``v' beta - theta =
w' delta``, so ``b(v) = M ||P' w||_1`` when ``t' w = 0`` (the estimator removes any
linear trend) and infinite otherwise. For each bias level ``B`` the minimum variance
``min v' Sigma v s.t. ||P' w||_1 <= B, t' w = 0`` is a convex quadratic programme
(solved by SLSQP with the ``|.|`` split into slack variables); the half-length is then
minimised over ``B`` between the least-bias and the least-variance estimators (a grid
then Brent's method). ``M = 0`` gives the least-variance estimator with ``t' w = 0``:
the GLS extrapolation of a linear pre-trend.

Few clusters. ``cv_alpha`` treats ``sd(v)`` as known; with ``Sigma`` a cluster-robust
covariance from few (treated) clusters its estimate is noisy and the interval
undercovers, as a t test with a normal critical value does. Given the cluster sums
``S_c`` behind ``Sigma`` (``Sigma = sum_c S_c S_c'``), :func:`flci` replaces
``|N(t, 1)|`` by ``|t + T_nu|``, ``T_nu`` Student t with the Satterthwaite degrees of
freedom of the estimator's own variance, ``nu = (sum_c a_c^2)^2 / sum_c a_c^4`` with
``a_c = S_c' v`` (Satterthwaite 1946; Bell and McCaffrey 2002, section 3; Imbens and
Kolesar 2016, whose ``t_nu`` reference distribution for a cluster-robust standard error
this is; it matches the small-cluster t intervals of :mod:`vaer.did.inference`). At
``M = 0`` (no bias) this is exactly that t interval for the linear-trend extrapolation.
With bias, ``|b/sd + T_nu|`` is the worst case of ``(v' beta_hat - theta) / sd_hat`` when
``(v' beta_hat - E v' beta_hat) / sd_hat ~ t_nu``, as Armstrong and Kolesar (2020,
section 4) build their honest critical value ``cv_alpha(b/se)`` from the estimator's
reference distribution; the bias ratio uses the estimated ``sd``, so it is an
approximation there too (Armstrong and Kolesar's normal one is likewise).

References
----------
Rambachan, A. and Roth, J. (2023), "A more credible approach to parallel trends",
Review of Economic Studies 90(5), 2555-2591.
Armstrong, T. B. and Kolesar, M. (2018), "Optimal inference in a class of regression
models", Econometrica 86(2), 655-683.
Armstrong, T. B. and Kolesar, M. (2020), "Simple and honest confidence intervals in
nonparametric regression", Quantitative Economics 11(1), 1-39.
Bell, R. M. and McCaffrey, D. F. (2002), "Bias reduction in standard errors for linear
regression with multi-stage samples", Survey Methodology 28(2), 169-181.
Imbens, G. W. and Kolesar, M. (2016), "Robust standard errors in small samples: some
practical advice", Review of Economics and Statistics 98(4), 701-712.
Satterthwaite, F. E. (1946), "An approximate distribution of estimates of variance
components", Biometrics Bulletin 2(6), 110-114.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class FLCI:
    """A fixed-length confidence interval.

    Attributes
    ----------
    low, high : float
        The interval.
    weights : numpy.ndarray
        ``(n_pre + n_post,)`` the affine estimator's ``v`` (post part ``= l``).
    half_length : float
        ``sd * cv_alpha(bias / sd)``.
    bias, sd : float
        Worst-case bias over ``Delta^SD(M)`` and standard deviation of ``v' beta_hat``.
    """

    low: float
    high: float
    weights: np.ndarray
    half_length: float
    bias: float
    sd: float


def folded_normal_critical(alpha: float, bias_over_sd: float) -> float:
    """The ``1 - alpha`` quantile ``c`` of ``|N(t, 1)|`` (``t = |bias_over_sd|``):
    ``Phi(c - t) - Phi(-c - t) = 1 - alpha``, bracketed by ``t + z_{1-alpha} <= c <=
    t + z_{1-alpha/2}``."""
    return folded_t_critical(alpha, bias_over_sd, np.inf)


def folded_t_critical(alpha: float, bias_over_sd: float, df: float) -> float:
    """The ``1 - alpha`` quantile ``c`` of ``|t + T|``, ``T`` Student t with ``df`` degrees
    of freedom and ``t = |bias_over_sd|``: ``F(c - t) - F(-c - t) = 1 - alpha``, bracketed
    by ``t + q_{1-alpha} <= c <= t + q_{1-alpha/2}`` (``T`` symmetric and unimodal).
    ``df = inf`` gives :func:`folded_normal_critical`; ``t = 0`` the two-sided t quantile.

    Raises
    ------
    ValueError
        If ``df`` is not positive.
    """
    if not df > 0:
        raise ValueError(f"`df` must be > 0; got {df}")
    t = abs(bias_over_sd)
    if np.isinf(df):
        cdf, quantile = special.ndtr, special.ndtri
    else:

        def cdf(x: float) -> float:
            return float(special.stdtr(df, x))

        def quantile(p: float) -> float:
            return float(special.stdtrit(df, p))

    low = max(0.0, t + float(quantile(1.0 - alpha)))
    high = t + float(quantile(1.0 - alpha / 2.0))
    if high - low < 1e-12:
        return high

    def gap(c: float) -> float:
        return float(cdf(c - t) - cdf(-c - t)) - (1.0 - alpha)

    if gap(low) >= 0.0:
        return low
    if gap(high) <= 0.0:  # t = 0 up to rounding
        return high
    return float(optimize.brentq(gap, low, high, xtol=1e-12))


def combination_df(cluster_sums: np.ndarray, v: np.ndarray) -> float:
    """Satterthwaite degrees of freedom of the cluster-robust variance of ``v' beta_hat``:
    ``(sum_c a_c^2)^2 / sum_c a_c^4`` with ``a_c = S_c' v`` (:func:`vaer.did.inference.
    satterthwaite_df` of the combination), between 1 and ``G``; infinite for a zero
    variance (then there is nothing to estimate)."""
    a = cluster_sums @ v
    scale = float(np.max(np.abs(a), initial=0.0))
    if scale == 0.0:
        return float("inf")
    a = a / scale
    return float(np.sum(a**2) ** 2 / np.sum(a**4))


def trend_basis(n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P, t)`` with ``delta = P d + s t`` for every trend with ``delta_0 = 0``.

    Parameters
    ----------
    n_pre, n_post : int
        Pre and post periods (the reference period between them is not counted).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``P`` of shape ``(n_pre + 1 + n_post, n_pre + n_post - 1)`` mapping second
        differences to the trend (zero level and slope at the reference period), and the
        event times ``t`` of the full vector (``0`` at the reference period).
    """
    n_full = n_pre + 1 + n_post
    ref = n_pre
    basis = np.zeros((n_full, n_full))
    for r in range(n_full - 2):
        basis[r, r : r + 3] = (1.0, -2.0, 1.0)
    basis[n_full - 2, ref] = 1.0
    basis[n_full - 1, ref] = -1.0
    basis[n_full - 1, ref + 1] = 1.0
    inverse = np.linalg.inv(basis)
    return inverse[:, : n_full - 2], np.arange(n_full, dtype=float) - ref


@dataclass(frozen=True)
class _Problem:
    """The FLCI programme of one target in ``v_pre`` coordinates."""

    q: np.ndarray  # P_pre'  (n_d, n_pre): P' w = q v + q0
    q0: np.ndarray  # P_post' l
    t_pre: np.ndarray
    c0: float  # t_pre' v = c0
    s_pp: np.ndarray
    s_pq_l: np.ndarray
    l_s_l: float

    def variance(self, v: np.ndarray) -> float:
        return float(v @ self.s_pp @ v + 2.0 * v @ self.s_pq_l + self.l_s_l)

    def bias(self, v: np.ndarray) -> float:
        return float(np.abs(self.q @ v + self.q0).sum())


def _problem(sigma: np.ndarray, n_pre: int, l_vec: np.ndarray) -> _Problem:
    n_post = len(l_vec)
    basis, t_full = trend_basis(n_pre, n_post)
    pre_rows, post_rows = basis[:n_pre], basis[n_pre + 1 :]
    t_pre, t_post = t_full[:n_pre], t_full[n_pre + 1 :]
    return _Problem(
        q=pre_rows.T,
        q0=post_rows.T @ l_vec,
        t_pre=t_pre,
        c0=float(-t_post @ l_vec),
        s_pp=sigma[:n_pre, :n_pre],
        s_pq_l=sigma[:n_pre, n_pre:] @ l_vec,
        l_s_l=float(l_vec @ sigma[n_pre:, n_pre:] @ l_vec),
    )


def _least_variance(problem: _Problem) -> np.ndarray:
    """``argmin v' Sigma v`` subject to ``t_pre' v_pre = c0`` (KKT system)."""
    n = len(problem.t_pre)
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = problem.s_pp
    kkt[:n, n] = problem.t_pre
    kkt[n, :n] = problem.t_pre
    rhs = np.append(-problem.s_pq_l, problem.c0)
    solution, *_ = np.linalg.lstsq(kkt, rhs, rcond=None)
    return solution[:n]


def _least_bias(problem: _Problem) -> np.ndarray:
    """``argmin ||q v + q0||_1`` subject to ``t_pre' v = c0`` (a linear programme)."""
    n_d, n = problem.q.shape
    cost = np.concatenate([np.zeros(n), np.ones(n_d)])
    upper = np.block([[problem.q, -np.eye(n_d)], [-problem.q, -np.eye(n_d)]])
    rhs = np.concatenate([-problem.q0, problem.q0])
    equality = np.concatenate([problem.t_pre, np.zeros(n_d)])[None, :]
    bounds = [(None, None)] * n + [(0.0, None)] * n_d
    fit = optimize.linprog(
        cost, A_ub=upper, b_ub=rhs, A_eq=equality, b_eq=[problem.c0], bounds=bounds,
        method="highs",
    )  # fmt: skip
    if fit.status != 0:
        raise ValueError(f"the least-bias programme of the FLCI failed: {fit.message}")
    return np.asarray(fit.x[:n])


def _variance_at_bias(problem: _Problem, level: float, start: np.ndarray) -> np.ndarray:
    """``argmin v' Sigma v`` subject to ``||q v + q0||_1 <= level`` and ``t' v = c0``."""
    n_d, n = problem.q.shape
    scale = max(problem.l_s_l, 1e-300)
    u0 = np.abs(problem.q @ start + problem.q0)
    x0 = np.concatenate([start, u0 + 1e-12])

    def objective(x: np.ndarray) -> float:
        return problem.variance(x[:n]) / scale

    def gradient(x: np.ndarray) -> np.ndarray:
        grad = np.zeros(n + n_d)
        grad[:n] = 2.0 * (problem.s_pp @ x[:n] + problem.s_pq_l) / scale
        return grad

    jac_abs = np.block([[-problem.q, np.eye(n_d)], [problem.q, np.eye(n_d)]])
    jac_sum = np.concatenate([np.zeros(n), -np.ones(n_d)])[None, :]
    constraints = [
        {
            "type": "ineq",
            "fun": lambda x: np.concatenate(
                [x[n:] - problem.q @ x[:n] - problem.q0, x[n:] + problem.q @ x[:n] + problem.q0]
            ),
            "jac": lambda x: jac_abs,
        },
        {
            "type": "ineq",
            "fun": lambda x: np.array([level - x[n:].sum()]),
            "jac": lambda x: jac_sum,
        },
        {
            "type": "eq",
            "fun": lambda x: np.array([problem.t_pre @ x[:n] - problem.c0]),
            "jac": lambda x: np.concatenate([problem.t_pre, np.zeros(n_d)])[None, :],
        },
    ]
    fit = optimize.minimize(
        objective, x0, jac=gradient, constraints=constraints, method="SLSQP",
        options={"maxiter": 500, "ftol": 1e-12},
    )  # fmt: skip
    return np.asarray(fit.x[:n]) if np.all(np.isfinite(fit.x)) else start


def flci(
    beta: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    l_vec: np.ndarray,
    m: float,
    alpha: float = 0.05,
    *,
    n_grid: int = 15,
    cluster_sums: np.ndarray | None = None,
) -> FLCI:
    """The optimal FLCI for ``theta = l' tau_post`` under ``Delta^SD(M)``.

    Parameters
    ----------
    beta : numpy.ndarray
        ``(n_pre + n_post,)`` event-study estimates, pre periods first, the reference
        period left out.
    sigma : numpy.ndarray
        Their ``(n_pre + n_post, n_pre + n_post)`` covariance.
    n_pre : int
        Number of pre periods (>= 1).
    l_vec : numpy.ndarray
        ``(n_post,)`` weights of the target.
    m : float
        Bound ``M >= 0`` on the second differences of the trend.
    alpha : float
        One minus the coverage.
    n_grid : int
        Bias levels tried before the final Brent search.
    cluster_sums : numpy.ndarray, optional
        ``(G, n_pre + n_post)`` cluster sums of the estimates' influence functions whose
        cross-product is ``sigma`` (:attr:`vaer.did.honest.EventStudyInputs.cluster_sums`).
        Given, the critical value is the folded Student t one
        (:func:`folded_t_critical`) with the Satterthwaite degrees of freedom of
        ``v' beta_hat`` (:func:`combination_df`) in place of the folded normal one; see
        the module docstring. Default: folded normal.

    Returns
    -------
    FLCI
        The interval and its estimator.

    Raises
    ------
    ValueError
        If ``m < 0``, there is no pre period, ``cluster_sums`` has the wrong shape, or
        the least-bias programme fails.
    """
    if not m >= 0:
        raise ValueError(f"the smoothness bound `m` must be >= 0; got {m}")
    if n_pre < 1:
        raise ValueError("the smoothness FLCI needs at least one pre period")
    if cluster_sums is not None and (cluster_sums.ndim != 2 or cluster_sums.shape[1] != len(beta)):
        raise ValueError(
            f"`cluster_sums` must have one column per estimate ({len(beta)}); got shape "
            f"{cluster_sums.shape}"
        )
    l_vec = np.asarray(l_vec, dtype=float)
    problem = _problem(sigma, n_pre, l_vec)
    least_var = _least_variance(problem)

    def result(v_pre: np.ndarray) -> FLCI:
        sd = float(np.sqrt(max(problem.variance(v_pre), 0.0)))
        bias = m * problem.bias(v_pre)
        v = np.concatenate([v_pre, l_vec])
        df = np.inf if cluster_sums is None else combination_df(cluster_sums, v)
        half = sd * folded_t_critical(alpha, bias / sd, df) if sd > 0 else bias
        centre = float(v @ beta)
        return FLCI(centre - half, centre + half, v, half, bias, sd)

    if m == 0:
        return result(least_var)
    least_bias = _least_bias(problem)
    low, high = problem.bias(least_bias), problem.bias(least_var)
    if high - low <= 1e-10 * max(1.0, high):
        return result(least_var)
    cache: dict[float, np.ndarray] = {}

    def solve(level: float) -> np.ndarray:
        if level not in cache:
            start = least_bias if not cache else cache[min(cache, key=lambda b: abs(b - level))]
            cache[level] = _variance_at_bias(problem, level, start)
        return cache[level]

    def half_length(level: float) -> float:
        return result(solve(level)).half_length

    levels = np.linspace(low, high, n_grid)
    values = [half_length(b) for b in levels]
    best = int(np.argmin(values))
    lo, hi = levels[max(best - 1, 0)], levels[min(best + 1, n_grid - 1)]
    if hi > lo:
        fit = optimize.minimize_scalar(
            half_length, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6 * (high - low)}
        )
        if fit.fun < values[best]:
            return result(solve(float(fit.x)))
    return result(solve(float(levels[best])))
