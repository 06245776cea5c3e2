"""The conditional-least-favourable hybrid test of Andrews, Roth and Pakes (ARP).

Tests ``H0: E[Y] - X xi <= 0 for some xi`` from ``Y ~ N(mu, Sigma_Y)`` (``m`` moment
inequalities, a nuisance ``xi`` entering linearly), as Rambachan and Roth (2023, section
3.2) do for a polyhedral restriction ``A delta <= d``: the statistic is
``eta_hat = min_{eta, xi} eta s.t. Y - X xi <= eta sigma`` (``sigma`` the moments' standard
deviations), whose dual is ``max gamma' Y`` over the polytope
``V = {gamma >= 0 : X' gamma = 0, sigma' gamma = 1}``. The conditional test conditions on
the optimal vertex ``gamma*`` and on ``S = Y - c gamma*' Y``, ``c = Sigma_Y gamma* /
gamma*' Sigma_Y gamma*``: ``gamma*' Y`` is then a normal truncated to ``[v_lo, v_up]``,
the values of ``t`` for which ``gamma*`` stays optimal along ``S + c t``. The hybrid
first rejects if ``eta_hat`` exceeds the least-favourable critical value ``c_LF`` (the
``1 - kappa`` quantile of ``max_{gamma in V} gamma' xi``, ``xi ~ N(0, Sigma_Y)``), and
otherwise runs the conditional test at level ``(alpha - kappa) / (1 - kappa)`` with
``v_up`` capped at ``c_LF`` (ARP section 3.3; R ``HonestDiD``'s ``.lp_conditional_test_fn``,
including its critical value floor of 0).

Computation: ``V`` is a polytope in standard form, so every maximum and every
linear-fractional bound above is attained at one of its vertices. The vertices (basic
feasible solutions, at most ``C(m, rank)``) are enumerated once per polytope; then the
statistic, ``v_lo = max_{gamma' c < 1} gamma' S / (1 - gamma' c)``,
``v_up = min_{gamma' c > 1} -gamma' S / (gamma' c - 1)`` and the least-favourable draws
are matrix products over the vertices and a whole grid of null values at once, with no
linear programme per grid point (HonestDiD solves several per point). Exact, not
approximate: the same optimum as the LPs, up to floating point.

References
----------
Andrews, I., Roth, J. and Pakes, A. (2023), "Inference for linear conditional moment
inequalities", Review of Economic Studies 90(6), 2763-2791.
Rambachan, A. and Roth, J. (2023), "A more credible approach to parallel trends",
Review of Economic Studies 90(5), 2555-2591.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, special

MAX_BASES = 3_000_000
"""Most candidate bases enumerated (``C(m, rank)``); beyond it, restrict event times."""


def vertices(x_mat: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The vertices of ``{gamma >= 0 : x_mat' gamma = 0, sigma' gamma = 1}``.

    Parameters
    ----------
    x_mat : numpy.ndarray
        ``(m, k)`` nuisance design (``k`` may be 0).
    sigma : numpy.ndarray
        ``(m,)`` positive scales.

    Returns
    -------
    numpy.ndarray
        ``(n_vertices, m)``; empty when the polytope is.

    Raises
    ------
    ValueError
        If more than :data:`MAX_BASES` bases would have to be tried.
    """
    m = len(sigma)
    if x_mat.size:
        u, s, _ = np.linalg.svd(x_mat, full_matrices=False)
        rank = int(np.sum(s > 1e-10 * max(1.0, s[0])))
        equality = np.vstack([u[:, :rank].T, sigma[None, :]])
    else:
        equality = sigma[None, :]
    p = equality.shape[0]
    if np.linalg.matrix_rank(equality) < p:  # sigma in the span of X: V is empty
        return np.zeros((0, m))
    n_bases = math.comb(m, p)
    if n_bases > MAX_BASES:
        raise ValueError(
            f"the ARP test would enumerate {n_bases:,} bases ({m} moments, {p - 1} nuisance "
            "parameters): restrict the post-period event times (did.max_e)"
        )
    target = np.zeros(p)
    target[-1] = 1.0
    found: list[np.ndarray] = []
    combos = itertools.combinations(range(m), p)
    chunk = max(1, 2_000_000 // (p * p))
    while True:
        idx = np.array(list(itertools.islice(combos, chunk)), dtype=np.intp)
        if idx.size == 0:
            break
        blocks = np.transpose(equality[:, idx], (1, 0, 2))  # (n, p, p)
        det = np.linalg.det(blocks)
        ok = np.abs(det) > 1e-12
        if not ok.any():
            continue
        solved = np.linalg.solve(blocks[ok], np.broadcast_to(target, (int(ok.sum()), p))[..., None])
        solved = solved[..., 0]
        feasible = np.all(solved >= -1e-10, axis=1)
        for cols, values in zip(idx[ok][feasible], solved[feasible], strict=True):
            gamma = np.zeros(m)
            gamma[cols] = np.maximum(values, 0.0)
            found.append(gamma)
    if not found:
        return np.zeros((0, m))
    stacked = np.array(found)
    _, unique = np.unique(np.round(stacked, 10), axis=0, return_index=True)
    return stacked[np.sort(unique)]


def truncnorm_ppf(p: float, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of a standard normal truncated to ``[low, high]``, in log space (exact
    far in either tail, where ``scipy.stats.truncnorm`` is slower)."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    upper_tail = low > 0.0
    with np.errstate(divide="ignore"):
        # upper tail: survival functions; otherwise: distribution functions
        first = np.where(upper_tail, special.log_ndtr(-low), special.log_ndtr(low))
        second = np.where(upper_tail, special.log_ndtr(-high), special.log_ndtr(high))
        target = np.logaddexp(np.log1p(-p) + first, np.log(p) + second)
    x = special.ndtri_exp(target)
    return np.where(upper_tail, -x, x)


def gaussian_draws(sigma: np.ndarray, n_sims: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_sims, n)`` draws of ``N(0, sigma)`` (symmetric square root: PSD is enough)."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2.0)
    root = vectors * np.sqrt(np.maximum(values, 0.0))
    return rng.standard_normal((n_sims, len(values))) @ root.T


@dataclass(frozen=True)
class MomentProblem:
    """Moments ``Y(theta) = y0 - a theta`` with nuisance design ``x_mat`` (one polyhedron).

    Attributes
    ----------
    y0, a : numpy.ndarray
        ``(m,)`` moments at ``theta = 0`` and their slope in ``theta``.
    sigma_y : numpy.ndarray
        ``(m, m)`` covariance of the moments.
    vertex : numpy.ndarray
        ``(n_vertices, m)`` vertices of the dual polytope.
    lf_cv : float
        The least-favourable critical value.
    """

    y0: np.ndarray
    a: np.ndarray
    sigma_y: np.ndarray
    vertex: np.ndarray
    lf_cv: float


def nuisance_design(post: np.ndarray, l_vec: np.ndarray) -> np.ndarray:
    """``A_post Gamma``: the moments' loading on the nuisance ``xi`` (``Gamma`` a basis of
    the complement of ``l``; no column when there is one post period)."""
    if len(l_vec) == 1:
        return np.zeros((post.shape[0], 0))
    return post @ linalg.null_space(l_vec[None, :])


def moment_problem(
    a_mat: np.ndarray,
    beta: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    l_vec: np.ndarray,
    *,
    kappa: float,
    draws: np.ndarray,
    rays: np.ndarray | None = None,
) -> MomentProblem:
    """The ARP moments of ``H0: theta = l' tau_post, A delta <= 0`` for one polyhedron.

    ``beta = delta + (0, tau_post)``; with ``tau_post = l theta / l'l + Gamma xi``
    (``Gamma`` a basis of the complement of ``l``) the null is
    ``E[A beta] - A_post l theta / l'l - A_post Gamma xi <= 0`` for some ``xi``.

    Parameters
    ----------
    a_mat : numpy.ndarray
        ``(m, n)`` the polyhedron's moments ``A`` (``A delta <= 0``).
    beta, sigma : numpy.ndarray
        Event-study estimates and covariance.
    n_pre : int
        Pre periods.
    l_vec : numpy.ndarray
        Target weights.
    kappa : float
        First-stage size.
    draws : numpy.ndarray
        ``(n_sims, n)`` draws of ``N(0, sigma)`` for the least-favourable critical value.
    rays : numpy.ndarray or None
        Vertices of ``{gamma >= 0 : X' gamma = 0, 1' gamma = 1}`` when already known
        (they do not depend on the moments' scales); enumerated otherwise.
    """
    post = a_mat[:, n_pre:]
    y0 = a_mat @ beta
    slope = post @ l_vec / float(l_vec @ l_vec)
    sigma_y = a_mat @ sigma @ a_mat.T
    scale = np.sqrt(np.clip(np.diag(sigma_y), 0.0, None))
    if np.any(scale <= 1e-14 * max(1.0, float(scale.max()))):
        raise ValueError("a moment of the relative-magnitudes test has zero variance")
    if rays is None:
        rays = vertices(nuisance_design(post, l_vec), np.ones(len(y0)))
    vertex = rays / (rays @ scale)[:, None]  # the cone's extreme rays, rescaled
    lf_cv = np.inf
    if len(vertex):
        loading = a_mat.T @ vertex.T  # (n, n_vertices): draws enter through it
        lf_cv = float(np.quantile((draws @ loading).max(axis=1), 1.0 - kappa))
    return MomentProblem(y0=y0, a=slope, sigma_y=sigma_y, vertex=vertex, lf_cv=lf_cv)


def hybrid_accept(
    problem: MomentProblem, theta: np.ndarray, alpha: float, kappa: float
) -> np.ndarray:
    """Whether the hybrid test accepts ``theta`` (a vector of null values).

    Parameters
    ----------
    problem : MomentProblem
        The moments of one polyhedron.
    theta : numpy.ndarray
        ``(n,)`` null values.
    alpha, kappa : float
        Size and first-stage (least-favourable) size.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` booleans.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    g = problem.vertex
    if len(g) == 0:  # no dual vertex: the moments can all be made slack, never reject
        return np.ones(len(theta), dtype=bool)
    out = np.empty(len(theta), dtype=bool)
    chunk = max(1, 4_000_000 // max(1, len(g)))
    gy0, ga = g @ problem.y0, g @ problem.a
    level = (alpha - kappa) / (1.0 - kappa)
    for start in range(0, len(theta), chunk):
        th = theta[start : start + chunk]
        values = gy0[:, None] - ga[:, None] * th[None, :]  # (n_v, n)
        best = np.argmax(values, axis=0)
        eta = values[best, np.arange(len(th))]
        gamma = g[best]  # (n, m)
        var = np.einsum("nm,mk,nk->n", gamma, problem.sigma_y, gamma)
        sd = np.sqrt(np.maximum(var, 1e-300))
        c = (gamma @ problem.sigma_y) / var[:, None]  # (n, m)
        y = problem.y0[None, :] - problem.a[None, :] * th[:, None]
        s = y - c * eta[:, None]
        gc = c @ g.T  # (n, n_v)
        gs = s @ g.T
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(gc > 1.0 + 1e-9, -gs / (gc - 1.0), np.inf).min(axis=1)
            lo = np.where(gc < 1.0 - 1e-9, gs / (1.0 - gc), -np.inf).max(axis=1)
        up = np.minimum(up, problem.lf_cv)
        first_stage = eta > problem.lf_cv
        z, z_lo, z_up = eta / sd, lo / sd, up / sd
        inside = (z_lo <= z + 1e-9) & (z <= z_up + 1e-9) & (z_lo < z_up)
        crit = np.full(len(th), np.inf)
        if inside.any():
            ppf = truncnorm_ppf(1.0 - level, z_lo[inside], z_up[inside])
            crit[inside] = np.maximum(0.0, ppf)
        reject = first_stage | (inside & (z > crit))
        out[start : start + chunk] = ~reject
    return out
