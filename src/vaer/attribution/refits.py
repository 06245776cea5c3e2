r"""An estimator's final stage refitted on three folds of the clusters.

Cluster-honest SHAP values (:mod:`vaer.attribution.honest`) and the channel shares'
estimation error (:mod:`vaer.attribution.importance`) need models of the effect that
never saw a firm's city, *two of them, fitted on disjoint cities*. The clusters are
split into three folds; the estimator's final stage (the CATE model: the forest, or the
linear final stage) is refitted on each fold alone, on the run's shared cross-fitted
nuisances (:meth:`vaer.estimators.registry.EstimatorKind.fit` on the fold's rows, as
:func:`vaer.estimators.fit._out_of_sample` refits on cluster halves); a firm in fold
:math:`k` is then explained by the models of the two other folds.

Refits are capped to bound the cost on large samples: each fold model uses at most
``max_units / 3`` of its fold's firms (whole clusters drawn at random,
:func:`vaer.data.design.sample_clusters`), and a forest grows at most ``max_trees`` trees
(the Monte-Carlo noise of fewer trees is independent between the fold models, so it adds
variance to the estimates, which their standard errors carry, not bias).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vaer.config.estimators import AnyParams, ForestParams
from vaer.data.design import sample_clusters

N_FOLDS = 3
"""Folds of the clusters: the fewest that give every firm two independent models."""


class Refitter(Protocol):
    """Fits an estimator's final stage on a subset of rows (global row indices)."""

    def fit(self, rows: np.ndarray, *, max_trees: int | None = None, random_state: int = 0) -> Any:
        """The final stage fitted on ``rows`` (forests: at most ``max_trees`` trees)."""
        ...


@dataclass(frozen=True)
class FinalStage:
    """An estimator's final stage on the run's shared nuisances, refittable on any rows.

    Attributes
    ----------
    kind : str
        Registry kind (:func:`vaer.estimators.registry.get_kind`).
    params : pydantic model
        The estimator's parameters as fitted (after tuning).
    cache : NuisanceCache
        The run's nuisances (already fitted; refits reuse them).
    """

    kind: str
    params: AnyParams
    cache: Any

    def fit(self, rows: np.ndarray, *, max_trees: int | None = None, random_state: int = 0) -> Any:
        """Build and fit the final stage on ``rows``.

        Parameters
        ----------
        rows : ndarray of int
            Global row indices (at least 4 clusters for a forest).
        max_trees : int, optional
            For forests, grow at most this many trees (rounded down to a multiple of
            ``ci_group_size``, at least two groups).
        random_state : int
            Seed of the refit (forests' subsamples).

        Returns
        -------
        The fitted model (``effect(X)`` gives its CATE).
        """
        from vaer.estimators.registry import get_kind, halves

        kind = get_kind(self.kind)
        params = self.params
        if (
            isinstance(params, ForestParams)
            and max_trees is not None
            and params.n_estimators > max_trees
        ):
            size = params.ci_group_size
            params = params.model_copy(
                update={"n_estimators": max(2 * size, (max_trees // size) * size)}
            )
        rows = np.asarray(rows)
        model = kind.build(params, halves(len(rows)), random_state, self.cache)
        kind.fit(model, rows, self.cache, params)
        return model


def final_stages(estimation: Any) -> dict[str, FinalStage]:
    """The refittable final stage of every estimator of a run, by label.

    Reads the run's nuisances from ``estimation.cache`` and each estimator's fitted
    parameters from ``result.params``; estimators (or runs) without them are left out.

    Parameters
    ----------
    estimation : EstimationResult

    Returns
    -------
    dict
        Estimator label -> :class:`FinalStage`.
    """
    cache = getattr(estimation, "cache", None)
    if cache is None:
        return {}
    stages = {}
    for result in estimation.estimators:
        params = getattr(result, "params", None)
        if params is not None:
            stages[result.label] = FinalStage(result.kind, params, cache)
    return stages


def cluster_folds(clusters: np.ndarray, random_state: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold code ``0..n_folds-1`` of every unit; each cluster lies in one fold.

    Clusters are shuffled and dealt to the folds in turn, largest first, so the folds
    hold about the same number of units.

    Parameters
    ----------
    clusters : ndarray of shape (n,)
    random_state : int
    n_folds : int
        At least 2.

    Returns
    -------
    ndarray of int of shape (n,)

    Raises
    ------
    ValueError
        If ``n_folds`` < 2, or there are fewer than ``2 * n_folds`` clusters (a fold
        model needs at least two clusters).
    """
    if n_folds < 2:
        raise ValueError(f"`n_folds` must be an int >= 2; got {n_folds}")
    labels, codes = np.unique(np.asarray(clusters), return_inverse=True)
    if len(labels) < 2 * n_folds:
        raise ValueError(
            f"cluster-honest attribution needs at least {2 * n_folds} clusters "
            f"({n_folds} folds of at least 2); the data have {len(labels)}"
        )
    rng = np.random.default_rng(random_state)
    sizes = np.bincount(codes)
    order = rng.permutation(len(labels))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_cluster = np.empty(len(labels), dtype=np.int64)
    loads = np.zeros(n_folds)
    for cluster in order:  # greedy: the next largest cluster to the lightest fold
        fold = int(np.argmin(loads))
        fold_of_cluster[cluster] = fold
        loads[fold] += sizes[cluster]
    return fold_of_cluster[codes]


def refit_rows(
    folds: np.ndarray, clusters: np.ndarray, max_units: int | None, random_state: int
) -> list[np.ndarray]:
    """Rows each fold model is fitted on: its fold, capped at ``max_units / n_folds`` units
    of whole clusters drawn at random (:func:`vaer.data.design.sample_clusters`).

    Parameters
    ----------
    folds : ndarray of int of shape (n,)
        From :func:`cluster_folds`.
    clusters : ndarray of shape (n,)
    max_units : int or None
        Units over all fold models; None: no cap.
    random_state : int

    Returns
    -------
    list of ndarray of int
        One array of global row indices per fold, sorted.
    """
    n_folds = int(folds.max()) + 1
    cap = None if max_units is None else max(1, max_units // n_folds)
    out = []
    for fold in range(n_folds):
        rows = np.flatnonzero(folds == fold)
        keep = sample_clusters(clusters[rows], cap, random_state + fold)
        out.append(rows if keep is None else rows[keep])
    return out


def fit_fold_models(
    stage: Refitter,
    parts: list[np.ndarray],
    *,
    max_trees: int | None,
    random_state: int,
) -> list[Any]:
    """The final stage refitted on each fold's rows (from :func:`refit_rows`); fold ``k``'s
    refit is seeded with ``random_state + 1 + k``.

    Returns
    -------
    list
        One fitted model per fold, in fold order.
    """
    return [
        stage.fit(rows, max_trees=max_trees, random_state=random_state + 1 + fold)
        for fold, rows in enumerate(parts)
    ]
