r"""Cluster-honest SHAP values: every firm explained by two models that never saw its city.

A SHAP value of :math:`\hat\tau` at a firm the model was fitted on carries what the model
learned from the firm's own city: its shocks, and whatever a proxy that tracks the city
(e.g. one correlated with city GDP) lets the model fit of them. Summed into channel
shares, that noise looks like heterogeneity. The estimator's own ``tau_hat`` is already
cluster-honest (forests' out-of-bag groups, linear kinds' cluster halves), but a surrogate
distilled from it is not: the targets of other cities were predicted by trees that saw
this firm's city. So the attribution stage explains *refits* instead
(:mod:`vaer.attribution.refits`):

1. the clusters are split into three folds, and the estimator's final stage is refitted
   on each fold alone, on the run's shared cross-fitted nuisances;
2. a firm in fold :math:`k` is explained by the two models of the other folds
   (:math:`a < b`), each by the estimator's route (exact linear SHAP, TreeSHAP of a
   surrogate distilled from the fold model, or the permutation explainer); the firm's
   reported SHAP value is their mean, :math:`\tfrac12(\phi^a + \phi^b)`, which is the
   SHAP value of the mean of the two explained functions (Shapley values are linear in
   the function).

Neither model saw any firm of the firm's cluster, and the two saw disjoint clusters, so
their estimation errors at the firm are independent: that is what
:mod:`vaer.attribution.importance` needs to estimate mean *squared* contributions without
the upward bias of squaring one noisy estimate (the cross-fitting of Chernozhukov et al.,
2018, with two independent learners as in Newey and Robins, 2018). Distilling a surrogate
at a firm's covariates uses no outcome, so it does not break this.

The fold models are fitted on a third of the clusters each: noisier than the run's model,
and a forest's smoothing bias is larger. The shares' standard errors carry the noise; the
bias enters the share estimates only through its square (see
:mod:`vaer.attribution.importance`). The per-firm values describe what a model fitted
without the firm's city predicts, not the run's ``model.effect``.

References
----------
Chernozhukov, V. et al. (2018). Double/debiased machine learning for treatment and
structural parameters. *Econometrics Journal* 21(1), C1-C68.
Newey, W. K. and Robins, J. M. (2018). Cross-fitting and fast remainder rates for
semiparametric estimation. arXiv:1801.09138.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vaer.attribution.explain import (
    HonestPair,
    ModelShap,
    ShapExplanation,
    check_rows,
    model_shap,
    resolve_method,
)
from vaer.attribution.groups import modifier_groups, sum_groups
from vaer.attribution.refits import N_FOLDS
from vaer.compute import Backend


def partner_models(folds: np.ndarray, n_folds: int = N_FOLDS) -> tuple[np.ndarray, np.ndarray]:
    """The two fold models that explain each unit: the lower and the higher of the folds
    other than the unit's own.

    Raises
    ------
    ValueError
        If ``n_folds`` is not 3 or a fold code is outside ``0..n_folds-1``.
    """
    if n_folds != N_FOLDS:
        raise ValueError(f"cross-fold explanations need exactly {N_FOLDS} folds; got {n_folds}")
    folds = np.asarray(folds)
    if folds.size and (folds.min() < 0 or folds.max() >= n_folds):
        raise ValueError(f"fold codes must be in 0..{n_folds - 1}")
    first = np.where(folds == 0, 1, 0)
    second = np.where(folds == 2, 1, 2)
    return first, second


def explain_across_folds(
    label: str,
    kind: str,
    models: Sequence[Any],
    folds: np.ndarray,
    x: pd.DataFrame,
    explain_rows: np.ndarray,
    background_rows: np.ndarray,
    units: np.ndarray,
    feature_groups: Mapping[str, Sequence[str]],
    *,
    method: str = "auto",
    surrogate_options: Mapping[str, Any] | None = None,
    random_state: int = 0,
    backend: Backend | None = None,
    refit_sizes: Sequence[int] | None = None,
) -> ShapExplanation:
    """Explain every unit by the two fold models that never saw its cluster.

    Parameters
    ----------
    label, kind : str
        The estimator's label and registry kind.
    models : sequence of 3 fitted models
        The final stage refitted on each fold (:func:`vaer.attribution.refits.fit_fold_models`).
    folds : ndarray of int of shape (n,)
        Fold of every row of ``x`` (:func:`vaer.attribution.refits.cluster_folds`).
    x : DataFrame of shape (n, p)
        All units' encoded modifiers.
    explain_rows, background_rows : ndarray of int
        Rows to explain, and the background sample (for the linear and permutation
        routes).
    units : ndarray of shape (n,)
    feature_groups : mapping
        Original column -> encoded columns.
    method : str
        ``auto``, ``linear``, ``tree_surrogate`` or ``permutation``.
    surrogate_options : mapping, optional
    random_state : int
        Fold model ``k``'s surrogate and permutations use ``random_state + k``.
    backend : vaer.compute.Backend, optional
    refit_sizes : sequence of int, optional
        Firms each fold model was fitted on (reported in ``extra``).

    Returns
    -------
    ShapExplanation
        ``values`` the mean of the two explanations, ``pair`` both, ``fidelity_r2`` the
        lowest fidelity of the three fold models.

    Raises
    ------
    ValueError
        If there are not 3 models, ``folds`` does not have one entry per row of ``x``, or
        a row index is out of range.
    """
    if len(models) != N_FOLDS:
        raise ValueError(f"`models` must hold {N_FOLDS} fold models; got {len(models)}")
    folds = np.asarray(folds)
    if folds.shape != (len(x),):
        raise ValueError(
            f"`folds` must have one entry per row of `x` ({len(x)}); got {folds.shape}"
        )
    explain_rows = check_rows(explain_rows, len(x), "explain_rows")
    background_rows = check_rows(background_rows, len(x), "background_rows")
    chosen = resolve_method(method, kind, models[0])
    matrix = x.to_numpy(dtype=np.float64)
    own = folds[explain_rows]
    first_model, second_model = partner_models(own)
    started = time.perf_counter()
    raws: list[ModelShap] = []
    positions: list[np.ndarray] = []
    for k, model in enumerate(models):
        where = np.flatnonzero(own != k)
        positions.append(where)
        raws.append(
            model_shap(
                chosen,
                model,
                matrix,
                explain_rows[where],
                background_rows,
                surrogate_options=surrogate_options,
                random_state=random_state + k,
                backend=backend,
            )
        )
    n, p = len(explain_rows), matrix.shape[1]
    values = {side: np.empty((n, p)) for side in ("first", "second")}
    predictions = {side: np.empty(n) for side in ("first", "second")}
    bases = []
    for k, (where, raw) in enumerate(zip(positions, raws, strict=True)):
        for side, chooser in (("first", first_model), ("second", second_model)):
            mine = chooser[where] == k
            values[side][where[mine]] = raw.values[mine]
            predictions[side][where[mine]] = raw.prediction[mine]
        bases.append(raw.base)
    seconds = time.perf_counter() - started
    groups = modifier_groups(list(x.columns), feature_groups)
    first = sum_groups(values["first"], list(x.columns), groups)
    second = sum_groups(values["second"], list(x.columns), groups)
    extra = {f"fidelity_{k}": raw.fidelity_r2 for k, raw in enumerate(raws)}
    for k, size in enumerate(refit_sizes or ()):
        extra[f"n_refit_{k}"] = float(size)
    return ShapExplanation(
        estimator=label,
        method=chosen,
        units=np.asarray(units)[explain_rows],
        values=(first + second) / 2,
        base=float(np.mean(np.concatenate(bases))),
        fidelity_r2=min(raw.fidelity_r2 for raw in raws),
        n_background=len(background_rows),
        seconds=seconds,
        extra=extra,
        pair=HonestPair(
            folds=own,
            first=first,
            second=second,
            first_prediction=predictions["first"],
            second_prediction=predictions["second"],
        ),
    )
