r"""Least squares with cluster-robust (CR2) standard errors and small-sample tests.

For :math:`y = X\beta + u` with :math:`G` clusters, :math:`M = (X^\top X)^{-1}` and
residuals :math:`e = y - X\hat\beta`, the bias-reduced linearization (CR2) covariance is

.. math:: \hat V = M \Big[\sum_{j=1}^{G} X_j^\top A_j e_j e_j^\top A_j X_j\Big] M,
          \qquad A_j = (I - X_j M X_j^\top)^{-1/2}

(symmetric inverse square root; a pseudo-inverse where a cluster alone determines a
coefficient). Under a working model of independent homoskedastic errors it is unbiased,
where CR1 is biased downwards when clusters are few or unequal (Bell and McCaffrey, 2002).

A contrast :math:`c^\top\beta` is tested with :math:`t = c^\top\hat\beta / \sqrt{c^\top
\hat V c}` against Student's t with the Satterthwaite degrees of freedom of
:math:`c^\top \hat V c` under that working model,

.. math:: \nu = \Big(\sum_j P_{jj}\Big)^2 \Big/ \sum_{j,k} P_{jk}^2, \qquad
          P_{jk} = \delta_{jk}\, a^\top K_j a - (L_j a)^\top M (L_k a),

with :math:`a = Mc`, :math:`K_j = X_j^\top A_j^2 X_j` and :math:`L_j = X_j^\top A_j X_j`
(Bell and McCaffrey, 2002; Imbens and Kolesár, 2016). :math:`\nu` is about :math:`G_c - 1`
for a mean over :math:`G_c` equal clusters and smaller when a few clusters carry the
contrast (a firm type found in a few cities). A joint hypothesis :math:`C\beta = 0`
(``q`` rows) uses Pustejovsky and Tipton's (2018) HTZ test: the Wald statistic
:math:`Q` scaled as Hotelling's :math:`T^2`, :math:`F = \frac{\eta - q + 1}{\eta q} Q \sim
F(q, \eta - q + 1)`, with :math:`\eta = q(q+1) / \sum_{j,k}[\operatorname{tr}(B_{jk}^2) +
\operatorname{tr}(B_{jk})^2]` and :math:`B_{jk} = \Omega^{-1/2} P_{jk} \Omega^{-1/2}`,
:math:`\Omega = \sum_j P_{jj}` (the q x q analogue of :math:`P_{jk}`). For one row it is
the t-test above; with equal clusters and no regressors but the means it is Hotelling's
:math:`T^2` with :math:`G - 1` df, the fixed-G limit of Bester, Conley and Hansen (2011).

References
----------
Bell, R. M. and McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
regression with multi-stage samples. *Survey Methodology* 28(2), 169-181.
Imbens, G. W. and Kolesár, M. (2016). Robust standard errors in small samples: some
practical advice. *Review of Economics and Statistics* 98(4), 701-712.
Pustejovsky, J. E. and Tipton, E. (2018). Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models. *Journal of Business
& Economic Statistics* 36(4), 672-683 (R package clubSandwich).
Bester, C. A., Conley, T. G. and Hansen, C. B. (2011). Inference with dependent data
using cluster covariance estimators. *Journal of Econometrics* 165(2), 137-151.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

_EIGEN_TOLERANCE = 1e-10
SE_TYPE = "cluster-robust (CR2), Bell-McCaffrey df"


@dataclass(frozen=True)
class ClusterDesign:
    """A design matrix, its clusters and the parts of the CR2 variance that depend on
    them only (reused for every outcome regressed on the same design).

    Build with :func:`cluster_design`.

    Attributes
    ----------
    terms : tuple of str
    x : ndarray of shape (n, p)
    codes : ndarray of shape (n,)
        Cluster code ``0..G-1`` of every row.
    bread : ndarray of shape (p, p)
        :math:`M = (X^\\top X)^{-1}`.
    adjusted : ndarray of shape (n, p)
        :math:`A_j X_j` stacked in row order.
    k_blocks, l_blocks : ndarray of shape (G, p, p)
        :math:`K_j = (A_j X_j)^\\top A_j X_j` and :math:`L_j = X_j^\\top A_j X_j`.
    """

    terms: tuple[str, ...]
    x: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    bread: np.ndarray = field(repr=False)
    adjusted: np.ndarray = field(repr=False)
    k_blocks: np.ndarray = field(repr=False)
    l_blocks: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        """Rows."""
        return int(self.x.shape[0])

    @property
    def n_clusters(self) -> int:
        """Clusters ``G``."""
        return int(self.k_blocks.shape[0])

    def fit(self, y: np.ndarray) -> OlsFit:
        """OLS of ``y`` on this design with the CR2 covariance.

        Raises
        ------
        ValueError
            If ``y`` does not have one finite value per row.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (self.n,):
            raise ValueError(f"`y` must have shape ({self.n},); got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("`y` must be finite; found NaN or inf")
        coef = self.bread @ (self.x.T @ y)
        resid = y - self.x @ coef
        scores = np.zeros((self.n_clusters, self.x.shape[1]))
        np.add.at(scores, self.codes, self.adjusted * resid[:, None])
        cov = self.bread @ scores.T @ scores @ self.bread
        return OlsFit(
            terms=self.terms,
            coef=coef,
            cov=cov,
            n=self.n,
            n_clusters=self.n_clusters,
            design=self,
            cluster_scores=scores,
        )

    def _p_blocks(self, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal terms :math:`A^\\top K_j A` (G, q, q) and the cross factors
        :math:`L_j A` (G, p, q) of :math:`P_{jk}` for ``contrasts`` (q, p), A = M C^T."""
        a = self.bread @ contrasts.T
        diagonal = np.einsum("pa,jpr,rb->jab", a, self.k_blocks, a)
        cross = np.einsum("jpr,rb->jpb", self.l_blocks, a)
        return diagonal, cross

    def satterthwaite_df(self, contrasts: np.ndarray) -> np.ndarray:
        """Bell-McCaffrey degrees of freedom of each row of ``contrasts`` (q, p).

        Returns
        -------
        ndarray of shape (q,)
            NaN for a row that fewer than 2 clusters inform (no valid test).
        """
        contrasts = np.atleast_2d(np.asarray(contrasts, dtype=np.float64))
        diagonal, cross = self._p_blocks(contrasts)
        out = np.full(len(contrasts), np.nan)
        for row in range(len(contrasts)):
            b = cross[:, :, row]
            p = -(b @ self.bread @ b.T)
            p[np.diag_indices_from(p)] += diagonal[:, row, row]
            omega = float(np.trace(p))
            weights = diagonal[:, row, row]
            informed = int(np.sum(weights > _EIGEN_TOLERANCE * max(float(weights.max()), 1e-300)))
            denominator = float(np.sum(p**2))
            if informed >= 2 and omega > 0 and denominator > 0:
                out[row] = omega**2 / denominator
        return out

    def htz_df(self, contrasts: np.ndarray) -> float:
        """Pustejovsky and Tipton's :math:`\\eta` for the joint test of ``contrasts`` (q, p)
        (module docstring); NaN when the restricted covariance is singular."""
        contrasts = np.atleast_2d(np.asarray(contrasts, dtype=np.float64))
        q = len(contrasts)
        diagonal, cross = self._p_blocks(contrasts)
        mb = np.einsum("pr,jrb->jpb", self.bread, cross)
        omega = diagonal.sum(axis=0) - np.einsum("jpa,jpb->ab", cross, mb)
        values, vectors = np.linalg.eigh(omega)
        if values.min() <= _EIGEN_TOLERANCE * max(values.max(), 1e-300):
            return float("nan")
        root = (vectors / np.sqrt(values)) @ vectors.T
        d = np.einsum("ab,jbc,cd->jad", root, diagonal, root)
        f = np.einsum("ab,jpb->jpa", root, cross)  # rows of Omega^-1/2 (L_j A)^T, as (G, p, q)
        # B_jk = delta_jk D_j - C_jk with C_jk = F_j^T M F_k. The sums over all G^2 pairs
        # factor through Q = sum_j vec(F_j) vec(F_j)^T, (p, q, p, q), so they cost O(G)
        # (a loop over j of G blocks each took 100 s of a 200,000-firm run's BLP tests):
        # sum_jk tr(C_jk^2) = sum M_pr M_st Q_pasb Q_rbta, sum_jk tr(C_jk)^2 = ... Q_ratb
        m = self.bread
        quad = np.einsum("jpa,jsb->pasb", f, f)
        total = float(
            np.einsum("pr,st,pasb,rbta->", m, m, quad, quad, optimize=True)
            + np.einsum("pr,st,pasb,ratb->", m, m, quad, quad, optimize=True)
        )
        # the diagonal pairs j = k add D_j: tr((D - C)^2) and tr(D - C)^2 less their C parts
        c = np.einsum("jpa,pr,jrb->jab", f, m, f, optimize=True)
        trace_c, trace_d = np.einsum("jaa->j", c), np.einsum("jaa->j", d)
        total += float(
            np.sum(d * d)
            - 2 * np.einsum("jab,jba->", c, d)
            - 2 * trace_c @ trace_d
            + trace_d @ trace_d
        )
        return q * (q + 1) / total


def cluster_design(design: np.ndarray, clusters: np.ndarray, terms: Sequence[str]) -> ClusterDesign:
    """Precompute the CR2 adjustments of ``design`` for clusters ``clusters``.

    Parameters
    ----------
    design : ndarray of shape (n, p)
        Regressors (no intercept is added).
    clusters : ndarray of shape (n,)
    terms : sequence of str
        Names of the ``p`` columns.

    Returns
    -------
    ClusterDesign

    Raises
    ------
    ValueError
        If shapes disagree, there are fewer than 2 clusters or ``n <= p``, or the design
        is rank deficient (e.g. a constant regressor next to the intercept).
    """
    x = np.asarray(design, dtype=np.float64)
    if x.ndim != 2 or len(terms) != x.shape[1]:
        raise ValueError(
            f"`design` must have shape (n, k) with k = len(terms) = {len(terms)}; got {x.shape}"
        )
    n, p = x.shape
    codes, _ = pd.factorize(np.asarray(clusters))
    if len(codes) != n:
        raise ValueError(f"`clusters` must have length {n}; got {len(codes)}")
    n_clusters = int(codes.max()) + 1 if n else 0
    if n_clusters < 2 or n <= p:
        raise ValueError(
            f"cluster-robust OLS needs at least 2 clusters and more rows than terms; "
            f"got {n_clusters} clusters, {n} rows and {p} terms"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("`design` must be finite; found NaN or inf")
    if np.linalg.matrix_rank(x) < p:
        raise ValueError(
            f"the regressors {list(terms)} are collinear (a constant or duplicated column); "
            "drop one"
        )
    bread = np.linalg.inv(x.T @ x)
    adjusted = np.empty_like(x)
    k_blocks = np.empty((n_clusters, p, p))
    l_blocks = np.empty((n_clusters, p, p))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_clusters + 1))
    for j in range(n_clusters):
        rows = order[bounds[j] : bounds[j + 1]]
        xj = x[rows]
        basis, upper = np.linalg.qr(xj)  # xj = basis @ upper, basis (n_j, r)
        leverage = upper @ bread @ upper.T  # H_jj = basis @ leverage @ basis.T
        values, vectors = np.linalg.eigh((leverage + leverage.T) / 2)
        remaining = 1.0 - values
        shift = np.where(
            remaining > _EIGEN_TOLERANCE, 1.0 / np.sqrt(np.maximum(remaining, 1e-300)), 0.0
        )
        shift -= 1.0
        rotated = basis @ vectors  # (n_j, r)
        axj = xj + rotated @ (shift[:, None] * (vectors.T @ upper))
        adjusted[rows] = axj
        k_blocks[j] = axj.T @ axj
        l_blocks[j] = xj.T @ axj
    l_blocks = (l_blocks + np.transpose(l_blocks, (0, 2, 1))) / 2
    return ClusterDesign(
        terms=tuple(terms),
        x=x,
        codes=codes.astype(np.int64),
        bread=bread,
        adjusted=adjusted,
        k_blocks=k_blocks,
        l_blocks=l_blocks,
    )


@dataclass(frozen=True)
class ContrastTests:
    """Linear contrasts :math:`C\\hat\\beta` with CR2 SEs and Bell-McCaffrey t-tests.

    Attributes
    ----------
    estimates, se, df, t_stat : ndarray of shape (q,)
        ``df`` (and ``se``, ``t_stat``) NaN where fewer than 2 clusters inform a row.
    cov : ndarray of shape (q, q)
    cluster_contributions : ndarray of shape (G, q)
        :math:`w_j = C M X_j^\\top A_j e_j`, with ``w.T @ w == cov``.
    """

    estimates: np.ndarray
    se: np.ndarray
    df: np.ndarray
    t_stat: np.ndarray
    cov: np.ndarray
    cluster_contributions: np.ndarray = field(repr=False)

    def p_values(self, alternative: str = "two-sided") -> np.ndarray:
        """p-values of each contrast = 0 from Student's t with ``df``.

        Parameters
        ----------
        alternative : {"two-sided", "greater"}

        Raises
        ------
        ValueError
            For another ``alternative``.
        """
        if alternative == "two-sided":
            return 2 * stats.t.sf(np.abs(self.t_stat), self.df)
        if alternative == "greater":
            return stats.t.sf(self.t_stat, self.df)
        raise ValueError(f"`alternative` must be 'two-sided' or 'greater'; got {alternative!r}")

    def half_width(self, level: float) -> np.ndarray:
        """Half-widths of the two-sided ``level`` confidence intervals, t(df) quantiles."""
        return stats.t.ppf(0.5 + level / 2, self.df) * self.se


@dataclass(frozen=True)
class WaldTest:
    """The HTZ test of a joint hypothesis :math:`C\\beta = 0`.

    Attributes
    ----------
    statistic : float
        The F statistic :math:`\\frac{\\eta - q + 1}{\\eta q} Q`.
    df_num, df_den : float
        :math:`q` and :math:`\\eta - q + 1`.
    p_value : float
    wald : float
        The unscaled Wald statistic :math:`Q`.
    """

    statistic: float
    df_num: int
    df_den: float
    p_value: float
    wald: float


@dataclass(frozen=True)
class OlsFit:
    """Coefficients of a cluster-robust OLS fit.

    Attributes
    ----------
    terms : tuple of str
    coef : ndarray of shape (k,)
    cov : ndarray of shape (k, k)
        CR2 covariance.
    n, n_clusters : int
    design : ClusterDesign
    cluster_scores : ndarray of shape (G, k)
        :math:`X_j^\\top A_j e_j`, with ``cov == M S^T S M``.
    """

    terms: tuple[str, ...]
    coef: np.ndarray
    cov: np.ndarray
    n: int
    n_clusters: int
    design: ClusterDesign = field(repr=False, compare=False)
    cluster_scores: np.ndarray = field(repr=False, compare=False)

    @property
    def se(self) -> np.ndarray:
        """Standard errors, shape (k,)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def contrasts(self, matrix: np.ndarray) -> ContrastTests:
        """Estimates, CR2 SEs and Bell-McCaffrey t-tests of the rows of ``matrix``.

        Parameters
        ----------
        matrix : ndarray of shape (q, k)

        Raises
        ------
        ValueError
            If ``matrix`` does not have one column per term.
        """
        c = self._check(matrix)
        contributions = self.cluster_scores @ self.design.bread @ c.T
        cov = contributions.T @ contributions
        df = self.design.satterthwaite_df(c)
        se = np.where(np.isfinite(df), np.sqrt(np.clip(np.diag(cov), 0.0, None)), np.nan)
        estimates = c @ self.coef
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, estimates / se, np.nan)
        return ContrastTests(
            estimates=estimates,
            se=se,
            df=df,
            t_stat=t,
            cov=cov,
            cluster_contributions=contributions,
        )

    def coefficients(self) -> ContrastTests:
        """Every coefficient as a contrast (identity matrix)."""
        return self.contrasts(np.eye(len(self.terms)))

    def wald(self, matrix: np.ndarray) -> WaldTest:
        """HTZ test of ``matrix @ beta == 0`` (rows linearly independent).

        Returns NaN statistic and p-value when the restricted covariance is singular.

        Raises
        ------
        ValueError
            If ``matrix`` does not have one column per term.
        """
        c = self._check(matrix)
        q = len(c)
        estimates = c @ self.coef
        v = c @ self.cov @ c.T
        eta = self.design.htz_df(c)
        if not np.isfinite(eta) or np.linalg.matrix_rank(v) < q:
            return WaldTest(float("nan"), q, float("nan"), float("nan"), float("nan"))
        wald = float(estimates @ np.linalg.solve(v, estimates))
        df_den = eta - q + 1
        if df_den <= 0:
            return WaldTest(float("nan"), q, float(df_den), float("nan"), wald)
        statistic = (eta - q + 1) / (eta * q) * wald
        return WaldTest(
            statistic=float(statistic),
            df_num=q,
            df_den=float(df_den),
            p_value=float(stats.f.sf(statistic, q, df_den)),
            wald=wald,
        )

    def _check(self, matrix: np.ndarray) -> np.ndarray:
        c = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        if c.shape[1] != len(self.terms):
            raise ValueError(
                f"`matrix` must have {len(self.terms)} columns (one per term); got {c.shape[1]}"
            )
        return c


def cluster_ols(
    y: np.ndarray, design: np.ndarray, clusters: np.ndarray, terms: Sequence[str]
) -> OlsFit:
    """OLS of ``y`` on ``design`` (no intercept added) with the CR2 cluster-robust covariance.

    Parameters
    ----------
    y : ndarray of shape (n,)
    design : ndarray of shape (n, k)
    clusters : ndarray of shape (n,)
    terms : sequence of str
        Names of the ``k`` columns.

    Returns
    -------
    OlsFit

    Raises
    ------
    ValueError
        If shapes disagree, there are fewer than 2 clusters or ``n <= k``, the design is
        rank deficient, or a value is not finite.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(design, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`design` must have shape (n, k) with n = len(y) = {len(y)} and k = len(terms) "
            f"= {len(terms)}; got {x.shape}"
        )
    return cluster_design(x, clusters, terms).fit(y)


def group_design(
    labels: np.ndarray, clusters: np.ndarray, levels: Sequence[str] | None = None
) -> tuple[ClusterDesign, np.ndarray]:
    """The design of group means: one indicator column per level (no intercept).

    OLS on it gives each level's mean; with doubly robust scores as the outcome, the group
    average effects.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Group of every unit (compared as strings).
    clusters : ndarray of shape (n,)
    levels : sequence of str, optional
        Levels in this order; units of other levels are left out. Sorted labels when
        omitted.

    Returns
    -------
    design : ClusterDesign
        Over the units of ``levels`` only.
    rows : ndarray of shape (n_used,)
        Positions of those units.

    Raises
    ------
    ValueError
        If lengths differ or a requested level has no unit.
    """
    strings = pd.Series(np.asarray(labels)).astype(str).to_numpy()
    clusters = np.asarray(clusters)
    if len(strings) != len(clusters):
        raise ValueError(
            f"`labels` and `clusters` must have the same length; got {len(strings)} and "
            f"{len(clusters)}"
        )
    chosen = sorted(set(strings.tolist())) if levels is None else [str(v) for v in levels]
    index = pd.Index(chosen)
    codes = index.get_indexer(pd.Index(strings))
    counts = np.bincount(codes[codes >= 0], minlength=len(chosen))
    empty = [level for level, count in zip(chosen, counts, strict=True) if count == 0]
    if empty:
        raise ValueError(f"levels {empty} have no unit; drop them from `levels`")
    rows = np.flatnonzero(codes >= 0)
    dummies = np.zeros((len(rows), len(chosen)))
    dummies[np.arange(len(rows)), codes[rows]] = 1.0
    return cluster_design(dummies, clusters[rows], chosen), rows
