r"""Mechanism tests: the effect of VA on each mediator, by double machine learning.

For a mediator :math:`M` (e.g. the change of a channel proxy over the shock window), the
partially linear model :math:`M = \theta T + g(X, W) + u` is estimated with cross-fitted
nuisances (folds grouped by cluster, the run's nuisance learner) and one of two
Neyman-orthogonal scores (Chernozhukov et al., 2018, *Econometrics J.* 21(1), C1-C68,
section 4.1; DoubleML's ``partialling out`` and ``IV-type``):

``partialling_out``
    :math:`\tilde M = M - \hat E[M|X,W]`, :math:`\tilde T = T - \hat E[T|X,W]`,
    :math:`\hat\theta = \sum_i \tilde T_i \tilde M_i / \sum_i \tilde T_i^2`;
``iv_type`` (default)
    starts from the partialling-out :math:`\tilde\theta`, cross-fits
    :math:`\hat g = \hat E[M - \tilde\theta T | X, W]` and solves
    :math:`\sum_i \tilde T_i (M_i - \hat g_i - \hat\theta T_i) = 0`.

The IV-type score is the default because :math:`\hat E[M|X,W]` inherits
:math:`\theta\,\hat E[T|X,W]`, so when the treatment model overfits (e.g. city-level
VA shocks learnt from a city-level control), the partialling-out estimate is shrunk
towards zero by about :math:`\theta\,E[\Delta_T^2]/E[\tilde T^2]`; the IV-type score's
:math:`\hat g` does not contain :math:`\theta T` and avoids that product-of-errors term
(see ``benchmarks/mechanism_tests.py``).

The standard error of one cross-fitting split is the one-way cluster-robust SE of the
mean of
:math:`\hat\theta + \psi_i / \overline{J}`, with :math:`\psi` the score at
:math:`\hat\theta` and :math:`\overline{J}` its mean derivative, with Bell and
McCaffrey's CR2 correction and t reference
(:func:`vaer.estimators.inference.cluster_robust_mean`). The nuisance learners receive
the clusters, so that early stopping holds out whole cities: with rows held out at
random, LightGBM chose its rounds on firms whose cities it had trained on and learnt the
cities' treatment shocks. By firm type, the same estimator is applied within each level,
on the same cross-fitted nuisances.

Repeated cross-fitting (``n_rep`` splits; ``auto``: 3 on samples of at most 20,000
units, else 1): one split's estimate depends on which cities share a fold, and with a few
thousand firms that split noise was a third of the SE on the project's tuning panels, so
one split's CI covered too rarely. The split noise is a product of nuisance errors, of
smaller order than the SE as the sample grows, while each split costs a full
cross-fitting (on 50,000 firms three splits made the 200,000-firm default run 58% slower),
hence one split above 20,000 units. As in
Chernozhukov et al. (2018, section 3.4) and DoubleML's ``n_rep``, the reported estimate
is the median :math:`\tilde\theta` of the splits' estimates and its SE
:math:`\sqrt{\operatorname{median}_r(\hat\sigma_r^2 + (\hat\theta_r -
\tilde\theta)^2)}`, which adds the spread between splits to each split's variance; the
t reference keeps the degrees of freedom of the clusters (the same in every split).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from vaer.compute import Backend
from vaer.config.models import NuisanceConfig
from vaer.data.design import AnalysisData, sample_clusters, subset
from vaer.estimators.inference import MeanEstimate, cluster_robust_mean
from vaer.estimators.nuisance import Folds, crossfit_predict, grouped_folds, make_regressor

SCORES = ("iv_type", "partialling_out")
AUTO_SPLITS = 3
"""Cross-fitting splits of ``n_rep="auto"`` on samples of at most
:data:`AUTO_SPLITS_MAX_UNITS` units (one split above)."""
AUTO_SPLITS_MAX_UNITS = 20_000
MECHANISM_COLUMNS = [
    "channel",
    "mediator",
    "dimension",
    "level",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "n",
    "n_clusters",
]


@dataclass(frozen=True)
class MechanismEstimate:
    """The DML effect of one more unit of VA on one mediator (in one group).

    ``dimension`` and ``level`` are ``"all"`` for the whole sample.
    """

    channel: str
    mediator: str
    dimension: str
    level: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_clusters: int

    def covers(self, value: float) -> bool:
        """Whether the 95% CI contains ``value``."""
        return self.ci_low <= value <= self.ci_high

    @classmethod
    def from_mean(cls, key: tuple[str, str, str, str], mean: MeanEstimate) -> MechanismEstimate:
        """The row of ``key`` (channel, mediator, dimension, level) for ``mean``."""
        return cls(
            *key,
            estimate=mean.estimate,
            se=mean.se,
            ci_low=mean.ci_low,
            ci_high=mean.ci_high,
            p_value=mean.p_value,
            n=mean.n,
            n_clusters=mean.n_clusters,
        )

    @property
    def significant(self) -> bool:
        """Whether the 95% CI excludes zero."""
        return not self.covers(0.0)


def partial_out_effect(
    m_res: np.ndarray, t_res: np.ndarray, clusters: np.ndarray, t_design: np.ndarray | None = None
) -> MeanEstimate:
    """Solve the linear orthogonal score sum(T~ (m_res - theta T_design)) = 0.

    Parameters
    ----------
    m_res : ndarray of shape (n,)
        ``M - E[M|X,W]`` (partialling out) or ``M - g(X,W)`` (IV-type).
    t_res : ndarray of shape (n,)
        ``T - E[T|X,W]``, the instrument of the score.
    clusters : ndarray of shape (n,)
    t_design : ndarray of shape (n,), optional
        The regressor multiplying theta: ``t_res`` (default, partialling out) or ``T``.

    Returns
    -------
    MeanEstimate
        The estimate with a CR2 SE and a Bell-McCaffrey t reference (interval, p-value).

    Raises
    ------
    ValueError
        If the score does not depend on theta (no treatment variation), or fewer than 2
        clusters.
    """
    m_res = np.asarray(m_res, dtype=np.float64)
    t_res = np.asarray(t_res, dtype=np.float64)
    design = t_res if t_design is None else np.asarray(t_design, dtype=np.float64)
    jacobian = float(np.mean(t_res * design))
    if not np.isfinite(jacobian) or abs(jacobian) <= 1e-12:
        raise ValueError("the treatment residuals are all zero: VA has no variation left")
    theta = float(np.mean(t_res * m_res)) / jacobian
    scores = theta + t_res * (m_res - theta * design) / jacobian
    return cluster_robust_mean(scores, clusters)


def _mediator_values(frame: pd.DataFrame, column: str, channel: str, n: int) -> np.ndarray:
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise ValueError(
            f"roles.mediators.{channel}: column '{column}' must be numeric; "
            f"got dtype {series.dtype}"
        )
    values = series.to_numpy(dtype=np.float64)
    if len(values) != n:
        raise ValueError(
            f"the table has {len(values)} rows but the analysis data {n}: pass the frame the "
            "analysis data were built from"
        )
    if np.isinf(values).any():
        raise ValueError(f"roles.mediators.{channel}: column '{column}' has infinite values")
    if np.isnan(values).all():
        raise ValueError(f"roles.mediators.{channel}: column '{column}' is missing for every firm")
    return values


def _groups(data: AnalysisData, by_firm_type: bool) -> list[tuple[str, str, np.ndarray]]:
    """The whole sample, then (``by_firm_type``) each level of each firm-type column."""
    groups = [("all", "all", np.ones(data.n, dtype=bool))]
    if by_firm_type:
        for dimension in data.firm_types.columns:
            labels = data.firm_types[dimension].astype(str).to_numpy()
            groups += [(str(dimension), lvl, labels == lvl) for lvl in sorted(set(labels))]
    return groups


def mechanism_tests(
    frame: pd.DataFrame,
    mediators: Mapping[str, Sequence[str]],
    data: AnalysisData,
    nuisance: NuisanceConfig,
    *,
    cv: int = 5,
    score: str = "iv_type",
    by_firm_type: bool = False,
    random_state: int = 0,
    backend: Backend | None = None,
    max_units: int | None = None,
    n_rep: int | Literal["auto"] = "auto",
) -> tuple[MechanismEstimate, ...]:
    """DML effect of VA on every mediator, with cluster-robust 95% CIs.

    A mediator with missing values is estimated on the firms where it is observed (its
    complete cases; ``n`` and ``n_clusters`` of its rows say how many): valid when it is
    missing at random given the features. Its own regressions are cross-fitted on those
    firms; the treatment residuals come from the whole sample.

    Parameters
    ----------
    frame : DataFrame
        The analysis table the ``data`` were built from (same rows, same order).
    mediators : mapping
        Channel -> mediator columns (``roles.mediators``).
    data : AnalysisData
        Treatment, features ``xw`` (nuisance inputs), clusters and firm types.
    nuisance : NuisanceConfig
        The first-stage learner.
    cv : int
        Cross-fitting folds, grouped by cluster (>= 2).
    score : str
        ``iv_type`` (default) or ``partialling_out``.
    by_firm_type : bool
        Also estimate within each level of each firm-type column.
    random_state : int
    backend : vaer.compute.Backend, optional
        Where the cross-fitting folds run (default: in this process).
    max_units : int, optional
        Estimate on whole clusters drawn at random up to this many units (all by default).
    n_rep : int or "auto"
        Cross-fitting splits (seeds ``random_state + r``), aggregated by
        :func:`median_over_splits` (>= 1; ``auto``: :func:`resolve_splits`).

    Returns
    -------
    tuple of MechanismEstimate
        Whole-sample rows first (``dimension == "all"``), then by firm type.

    Raises
    ------
    ValueError
        If ``cv`` < 2, ``n_rep`` < 1, ``score`` is unknown, a mediator is not in the
        table, not numeric, infinite, missing for every firm or observed in fewer clusters
        than folds, or is also a feature (a modifier or control), or there are fewer
        clusters than folds.
    """
    if not isinstance(cv, int) or cv < 2:
        raise ValueError(f"`cv` must be an int >= 2; got {cv!r}")
    if score not in SCORES:
        raise ValueError(f"`score` must be one of {', '.join(SCORES)}; got {score!r}")
    features = set(data.xw.columns) | set(data.feature_groups)
    for channel, columns in mediators.items():
        for column in columns:
            if column not in frame.columns:
                raise ValueError(f"roles.mediators.{channel}: column '{column}' is not in the data")
            if column in features:
                raise ValueError(
                    f"roles.mediators.{channel}: column '{column}' is also a modifier or "
                    "control; a mediator is an outcome of VA: remove it from the features"
                )
    keep = sample_clusters(data.clusters, max_units, random_state)
    if keep is not None:
        frame, data = frame.loc[keep].reset_index(drop=True), subset(data, keep)
    n_splits = resolve_splits(n_rep, data.n)
    values = {
        (channel, column): _mediator_values(frame, column, channel, data.n)
        for channel, columns in mediators.items()
        for column in columns
    }
    for (channel, column), m in values.items():
        observed = np.unique(data.clusters[~np.isnan(m)])
        if len(observed) < min(cv, data.n_clusters):
            raise ValueError(
                f"roles.mediators.{channel}: column '{column}' is observed in "
                f"{len(observed)} clusters, fewer than the {cv} folds"
            )
    splits = [
        _one_split(values, data, nuisance, cv, score, by_firm_type, random_state + r, backend)
        for r in range(n_splits)
    ]
    results = [
        MechanismEstimate.from_mean(key, median_over_splits([split[key] for split in splits]))
        for key in splits[0]
    ]
    results.sort(key=lambda r: r.dimension != "all")
    return tuple(results)


def resolve_splits(n_rep: int | str, n_units: int) -> int:
    """The number of cross-fitting splits: ``n_rep``, or for ``auto``
    :data:`AUTO_SPLITS` on at most :data:`AUTO_SPLITS_MAX_UNITS` units and 1 above.

    Raises
    ------
    ValueError
        If ``n_rep`` is neither ``auto`` nor an int >= 1.
    """
    if n_rep == "auto":
        return AUTO_SPLITS if n_units <= AUTO_SPLITS_MAX_UNITS else 1
    if isinstance(n_rep, bool) or not isinstance(n_rep, int) or n_rep < 1:
        raise ValueError(f"`n_rep` must be an int >= 1 or 'auto'; got {n_rep!r}")
    return n_rep


_Key = tuple[str, str, str, str]


def _one_split(
    values: Mapping[tuple[str, str], np.ndarray],
    data: AnalysisData,
    nuisance: NuisanceConfig,
    cv: int,
    score: str,
    by_firm_type: bool,
    random_state: int,
    backend: Backend | None,
) -> dict[_Key, MeanEstimate]:
    """One cross-fitting split: (channel, mediator, dimension, level) -> the estimate."""

    def crossfit(part: AnalysisData, folds: Folds, target: np.ndarray) -> np.ndarray:
        model = make_regressor(nuisance, random_state)
        return crossfit_predict(
            model, part.xw, target, folds, backend=backend, groups=part.clusters
        )

    folds = grouped_folds(data.clusters, cv, random_state)
    t_res = data.t - crossfit(data, folds, data.t)
    out: dict[_Key, MeanEstimate] = {}
    for (channel, column), m in values.items():
        part, part_folds, part_t_res = data, folds, t_res
        observed = ~np.isnan(m)
        if not observed.all():  # complete cases of this mediator only
            part, m, part_t_res = subset(data, observed), m[observed], t_res[observed]
            part_folds = grouped_folds(part.clusters, cv, random_state)
        m_res, design = m - crossfit(part, part_folds, m), part_t_res
        if score == "iv_type":
            preliminary = partial_out_effect(m_res, part_t_res, part.clusters).estimate
            m_res = m - crossfit(part, part_folds, m - preliminary * part.t)
            design = part.t
        for dimension, level, mask in _groups(part, by_firm_type):
            if len(np.unique(part.clusters[mask])) < 2:
                continue
            out[channel, column, dimension, level] = partial_out_effect(
                m_res[mask], part_t_res[mask], part.clusters[mask], design[mask]
            )
    return out


def median_over_splits(estimates: Sequence[MeanEstimate]) -> MeanEstimate:
    r"""Aggregate one estimate over cross-fitting splits (Chernozhukov et al., 2018, 3.4).

    Parameters
    ----------
    estimates : sequence of MeanEstimate
        The same estimate from each split (same clusters, hence the same degrees of
        freedom).

    Returns
    -------
    MeanEstimate
        Median estimate; SE :math:`\sqrt{\operatorname{median}_r(\hat\sigma_r^2 +
        (\hat\theta_r - \tilde\theta)^2)}`; the splits' median degrees of freedom. One
        split is returned unchanged.

    Raises
    ------
    ValueError
        If ``estimates`` is empty.
    """
    if not estimates:
        raise ValueError("median_over_splits needs at least one split")
    if len(estimates) == 1:
        return estimates[0]
    theta = np.array([e.estimate for e in estimates])
    se = np.array([e.se for e in estimates])
    middle = float(np.median(theta))
    first = estimates[0]
    return replace(
        first,
        estimate=middle,
        se=float(np.sqrt(np.median(se**2 + (theta - middle) ** 2))),
        df=float(np.median([e.df for e in estimates])),
    )


def mechanisms_frame(estimates: Sequence[MechanismEstimate]) -> pd.DataFrame:
    """The ``mechanisms`` table: one row per mediator (and group)."""
    return pd.DataFrame([vars(e) for e in estimates], columns=MECHANISM_COLUMNS)
