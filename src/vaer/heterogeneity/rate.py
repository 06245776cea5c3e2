r"""Rank-weighted average treatment effects (RATE): the TOC curve, AUTOC and Qini.

Rank firms by a priority score :math:`S(X_i)` (here the out-of-sample
:math:`\hat\tau(X_i)`, highest first). The targeting operator characteristic at
fraction :math:`q` is the gain of treating the top :math:`q` over treating at random,

.. math:: \mathrm{TOC}(q) = E[\tau(X) \mid F(S(X)) \ge 1 - q] - E[\tau(X)],

and RATEs weight it over :math:`q \in (0, 1]`: :math:`\mathrm{AUTOC} = \int_0^1
\mathrm{TOC}(q)\,dq` and :math:`\mathrm{Qini} = \int_0^1 q\,\mathrm{TOC}(q)\,dq`. With
doubly robust scores :math:`\Gamma_{(j)}` sorted by priority,
:math:`\widehat{\mathrm{TOC}}(j/n) = \frac1j\sum_{i \le j}\Gamma_{(i)} - \bar\Gamma` and
the integrals are sums over :math:`j` with weight :math:`1/n` (grf's estimator). Because
only scores are used, this works for a continuous treatment (the effect is then per unit
of VA). Tied priorities are averaged over (the scores in a tie block are replaced by
their block mean).

With cross-fitting folds (firms predicted by one model share a fold;
:mod:`vaer.heterogeneity.folds`), firms are ranked and the TOC is computed within each
fold, and the folds' AUTOC, Qini and TOC are averaged with weights proportional to their
sizes: ranking firms predicted by different models against each other makes RATE
negative under a constant effect (each model carries its training cities' chance highs
to firms whose own scores do not share them).

Standard errors come from a cluster bootstrap: clusters are drawn with replacement and
every unit weighted by its cluster's count; the ranking (fitted out of sample) is held
fixed. The bootstrap variance is the plug-in (CR0-like) variance of the clusters'
contributions; scaled by :math:`G/(G-1)` it is the CR1 analogue, whose t-statistic is
referred to Student's t with :math:`G - 1` degrees of freedom, the fixed-G limit of
Bester, Conley and Hansen (2011), instead of the normal (which over-rejects with few
clusters). A positive, significant AUTOC means the ranking finds firms with larger
effects: a test of heterogeneity that :math:`\hat\tau` can detect, so p-values are
one-sided (:math:`H_1`: RATE > 0); the TOC band is pointwise, with the same t quantile.

References
----------
Yadlowsky, S., Fleming, S., Shah, N., Brunskill, E. and Wager, S. (2025). Evaluating
treatment prioritization rules via rank-weighted average treatment effects. *JASA*
120(549), 38-51. grf documentation, ``rank_average_treatment_effect``.
Bester, C. A., Conley, T. G. and Hansen, C. B. (2011). Inference with dependent data
using cluster covariance estimators. *Journal of Econometrics* 165(2), 137-151.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy import stats

from vaer.compute import Backend, LocalBackend, chunk_seeds
from vaer.heterogeneity.folds import fold_codes
from vaer.heterogeneity.withhold import withhold

RATE_COLUMNS = [
    "estimator",
    "target",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "df",
    "p_value",
    "n_bootstrap",
    "inference",
]
TOC_COLUMNS = ["estimator", "q", "toc", "se", "ci_low", "ci_high"]
TOC_GRID = np.linspace(0.02, 1.0, 50)


@dataclass(frozen=True)
class RateResult:
    """AUTOC, Qini and the TOC curve of one estimator's ranking.

    Attributes
    ----------
    estimator : str
    table : DataFrame
        Rows ``AUTOC`` and ``QINI`` (``RATE_COLUMNS``); one-sided p-values of RATE = 0
        against RATE > 0 from Student's t with ``df`` = G - 1.
    toc : DataFrame
        The TOC curve on a grid of ``q`` with pointwise bootstrap SEs (``TOC_COLUMNS``).
    """

    estimator: str
    table: pd.DataFrame
    toc: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The RATE table rows of this estimator (``tables/rate.csv``)."""
        return self.table.copy()

    def toc_frame(self) -> pd.DataFrame:
        """The TOC curve rows of this estimator (``tables/toc.csv``)."""
        return self.toc.copy()

    def withhold_ranking(self) -> RateResult:
        """A copy without the CIs and p-values of AUTOC and Qini and without the TOC band
        (:mod:`vaer.heterogeneity.withhold`)."""
        every = np.ones(len(self.table), dtype=bool)
        table = withhold(self.table, every, ["ci_low", "ci_high", "p_value"])
        toc = self.toc.copy()
        toc[["ci_low", "ci_high"]] = np.nan
        return RateResult(estimator=self.estimator, table=table, toc=toc)

    def target(self, name: str) -> pd.Series:
        """The row of ``AUTOC`` or ``QINI``.

        Raises
        ------
        KeyError
            If there is no such target.
        """
        rows = self.table[self.table["target"] == name]
        if rows.empty:
            raise KeyError(f"no target '{name}'; have {list(self.table['target'])}")
        return rows.iloc[0]

    def metrics(self) -> dict[str, float]:
        """``rate.<estimator>.autoc`` / ``.qini`` with their SEs and p-values."""
        out: dict[str, float] = {}
        for row in self.table.to_dict("records"):
            prefix = f"rate.{self.estimator}.{str(row['target']).lower()}"
            out[prefix] = float(row["estimate"])
            out[f"{prefix}_se"] = float(row["se"])
            out[f"{prefix}_p_value"] = float(row["p_value"])
        return out


def _sorted_blocks(priority: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order by fold, then descending ``priority``, and the tie-block id of each sorted
    position (blocks never span two folds)."""
    order = np.lexsort((-priority, codes))
    sorted_priority, sorted_codes = priority[order], codes[order]
    change = (sorted_priority[1:] != sorted_priority[:-1]) | (sorted_codes[1:] != sorted_codes[:-1])
    block = np.concatenate([[0], np.cumsum(change)])
    return order, block


def _rate_curves(
    scores: np.ndarray, weights: np.ndarray, block: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """AUTOC, Qini and TOC on ``TOC_GRID`` for sorted scores with unit weights."""
    total = weights.sum()
    n_blocks = int(block[-1]) + 1
    block_w = np.bincount(block, weights=weights, minlength=n_blocks)
    block_s = np.bincount(block, weights=weights * scores, minlength=n_blocks)
    block_mean = np.divide(block_s, block_w, out=np.zeros(n_blocks), where=block_w > 0)
    smoothed = block_mean[block]
    cum_w = np.cumsum(weights)
    cum_s = np.cumsum(weights * smoothed)
    mean = cum_s[-1] / total
    toc = np.divide(cum_s, cum_w, out=np.zeros_like(cum_s), where=cum_w > 0) - mean
    share = weights / total
    position = cum_w / total
    autoc = float(np.sum(share * toc))
    qini = float(np.sum(share * position * toc))
    index = np.minimum(np.searchsorted(position, TOC_GRID - 1e-12), len(position) - 1)
    return autoc, qini, toc[index]


def _fold_curves(
    scores: np.ndarray, weights: np.ndarray, block: np.ndarray, bounds: np.ndarray
) -> np.ndarray:
    """AUTOC, Qini and the TOC grid averaged over the folds (contiguous in sorted order,
    ``bounds`` their start positions and the end), weighted by each fold's total weight."""
    found = np.zeros(2 + len(TOC_GRID))
    total = weights.sum()
    for start, stop in pairwise(bounds):
        part = slice(start, stop)
        fold_total = weights[part].sum()
        if fold_total <= 0:
            continue
        autoc, qini, toc = _rate_curves(scores[part], weights[part], block[part] - block[start])
        found += fold_total / total * np.array([autoc, qini, *toc])
    return found


BOOTSTRAP_CHUNK = 25  # replicates per task; with the seed, fixes the draws on any backend


@dataclass(frozen=True)
class _BootstrapChunk:
    """A task drawing ``size`` cluster-bootstrap replicates of the RATE curves."""

    sorted_scores: np.ndarray
    sorted_codes: np.ndarray
    block: np.ndarray
    bounds: np.ndarray
    n_clusters: int

    def __call__(self, chunk: tuple[int, int]) -> np.ndarray:
        size, seed = chunk
        rng = np.random.default_rng(seed)
        found = np.empty((size, 2 + len(TOC_GRID)))
        uniform = np.full(self.n_clusters, 1.0 / self.n_clusters)
        for b in range(size):
            counts = rng.multinomial(self.n_clusters, uniform)
            weights = counts[self.sorted_codes].astype(np.float64)
            found[b] = _fold_curves(self.sorted_scores, weights, self.block, self.bounds)
        return found


def rank_average_treatment_effect(
    estimator: str,
    priority: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray,
    *,
    folds: np.ndarray | None = None,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    random_state: int = 0,
    backend: Backend | None = None,
) -> RateResult:
    r"""AUTOC and Qini of the ranking by ``priority`` with cluster-bootstrap SEs.

    Parameters
    ----------
    estimator : str
    priority : ndarray of shape (n,)
        Higher means treat first (out-of-sample ``tau_hat``).
    scores : ndarray of shape (n,)
        Doubly robust scores.
    clusters : ndarray of shape (n,)
    folds : ndarray of shape (n,), optional
        Cross-fitting fold of every unit's ``priority``; firms are ranked within folds.
    n_bootstrap : int
        Cluster-bootstrap replications (>= 20).
    ci_level : float
    random_state : int
        Seeds the replicates, drawn in chunks of ``BOOTSTRAP_CHUNK`` with seeds spawned
        from it (:func:`vaer.compute.chunk_seeds`).
    backend : vaer.compute.Backend, optional
        Where the chunks run (default: in this process); results do not depend on it.

    Returns
    -------
    RateResult

    Raises
    ------
    ValueError
        If lengths differ, a value is not finite, ``n_bootstrap`` < 20, there are fewer
        than 2 clusters, or a cluster spans two folds.
    """
    priority = np.asarray(priority, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if not priority.shape == scores.shape == np.shape(clusters) or priority.ndim != 1:
        raise ValueError(
            "`priority`, `scores` and `clusters` must be 1-d of the same length; got "
            f"{priority.shape}, {scores.shape} and {np.shape(clusters)}"
        )
    if not (np.all(np.isfinite(priority)) and np.all(np.isfinite(scores))):
        raise ValueError("`priority` and `scores` must be finite; found NaN or inf")
    if n_bootstrap < 20:
        raise ValueError(f"`n_bootstrap` must be an int >= 20; got {n_bootstrap}")
    codes, _ = pd.factorize(np.asarray(clusters))
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if n_clusters < 2:
        raise ValueError(f"the cluster bootstrap needs at least 2 clusters; got {n_clusters}")
    fold = fold_codes(folds, len(priority), codes)
    order, block = _sorted_blocks(priority, fold)
    sorted_scores, sorted_codes = scores[order], codes[order]
    bounds = np.searchsorted(fold[order], np.arange(int(fold.max()) + 2))
    point = _fold_curves(sorted_scores, np.ones(len(scores)), block, bounds)
    autoc, qini, toc = point[0], point[1], point[2:]
    task = _BootstrapChunk(sorted_scores, sorted_codes, block, bounds, n_clusters)
    chunks = chunk_seeds(random_state, n_bootstrap, BOOTSTRAP_CHUNK)
    runner = backend if backend is not None else LocalBackend(1)
    boot = np.vstack(runner.map(task, chunks))
    se = boot.std(axis=0, ddof=1) * np.sqrt(n_clusters / (n_clusters - 1))
    df = n_clusters - 1
    quantile = float(stats.t.ppf(0.5 + ci_level / 2, df))
    rows = []
    for k, (target, estimate) in enumerate((("AUTOC", autoc), ("QINI", qini))):
        p = float(stats.t.sf(estimate / se[k], df)) if se[k] > 0 else float("nan")
        rows.append(
            {
                "estimator": estimator,
                "target": target,
                "estimate": estimate,
                "se": se[k],
                "ci_low": estimate - quantile * se[k],
                "ci_high": estimate + quantile * se[k],
                "df": df,
                "p_value": p,
                "n_bootstrap": n_bootstrap,
                "inference": "cluster bootstrap, t(G-1), one-sided",
            }
        )
    toc_frame = pd.DataFrame(
        {
            "estimator": estimator,
            "q": TOC_GRID,
            "toc": toc,
            "se": se[2:],
            "ci_low": toc - quantile * se[2:],
            "ci_high": toc + quantile * se[2:],
        },
        columns=TOC_COLUMNS,
    )
    return RateResult(
        estimator=estimator, table=pd.DataFrame(rows, columns=RATE_COLUMNS), toc=toc_frame
    )
