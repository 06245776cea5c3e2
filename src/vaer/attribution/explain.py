"""SHAP values of a fitted model's effect function tau_hat(x), by original column.

The explained function is a fitted CATE function :math:`\\hat\\tau(x)` (``effect(X)``:
the effect of one more unit of VA at modifiers ``x``). The attribution stage applies this
to the estimator's final stage refitted on folds of the clusters, so that no firm is
explained by a model that saw its cluster (:mod:`vaer.attribution.honest`). Three routes:

``linear``
    exact, :math:`\\beta_j (x_j - \\bar x_j)` (:mod:`vaer.attribution.linear`);
``tree_surrogate``
    exact path-dependent TreeSHAP of a LightGBM model distilled from
    :math:`\\hat\\tau`, with its fidelity reported (:mod:`vaer.attribution.surrogate`);
``permutation``
    shap's model-agnostic permutation explainer (:mod:`vaer.attribution.permutation`).

Features are cast to float64, and the SHAP values of one-hot encoded firm types are
summed so each firm-type dimension gets one value (:mod:`vaer.attribution.groups`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from vaer.attribution.groups import modifier_groups, sum_groups
from vaer.attribution.linear import effect_coefficients, linear_coefficients, linear_shap
from vaer.attribution.permutation import permutation_shap
from vaer.attribution.surrogate import fit_surrogate
from vaer.compute import Backend, LocalBackend, chunk_seeds

METHODS = ("linear", "tree_surrogate", "permutation")
LINEAR_KINDS = frozenset({"linear_dml", "sparse_linear_dml"})
"""Kinds whose final stage exposes its slopes as ``coef_``."""
LINEAR_EFFECT_KINDS = frozenset({"dr_learner", "orthoiv", "dmliv"})
"""Kinds whose final stage is linear in X without ``coef_`` as an array: slopes from the
effect function (:func:`vaer.attribution.linear.effect_coefficients`)."""
# units per task: fixed sizes (not the backend) decide how the work is split
TREE_CHUNK = 5000
PERMUTATION_CHUNK = 25


@dataclass(frozen=True)
class _TreeShapChunk:
    """A task: exact TreeSHAP of the distilled surrogate on a chunk of units."""

    surrogate: Any

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cast(tuple[np.ndarray, np.ndarray], self.surrogate.shap_values(rows))


@dataclass(frozen=True)
class _PermutationChunk:
    """A task: permutation SHAP of tau_hat on a chunk of units, with the chunk's seed."""

    model: Any
    background: np.ndarray

    def __call__(self, chunk: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
        rows, seed = chunk
        return permutation_shap(
            effect_function(self.model), rows, self.background, random_state=seed
        )


def _split(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[start : start + size] for start in range(0, len(x), size)]


def _stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Values and base values of the chunks, back in one piece (in unit order)."""
    return np.vstack([v for v, _ in parts]), np.concatenate([b for _, b in parts])


@dataclass(frozen=True)
class ShapExplanation:
    """SHAP values of one estimator's tau_hat(x) on a sample of units.

    From :func:`explain_effect` (one model, as fitted) or
    :func:`vaer.attribution.honest.explain_across_folds` (cluster-honest: each unit
    explained by the two fold models that never saw its cluster; ``values`` is their
    mean and ``pair`` holds both).

    Attributes
    ----------
    estimator : str
        The estimator's label.
    method : str
        ``linear``, ``tree_surrogate`` or ``permutation``.
    units : ndarray of shape (n,)
        Explained unit ids.
    values : DataFrame of shape (n, k)
        SHAP value per unit (rows) and original modifier column (one column per firm-type
        dimension); rows sum to ``tau_hat(x) - base`` (to the surrogate's prediction minus
        ``base`` for ``tree_surrogate``).
    base : float
        Mean of the explained function over the background (expected value).
    fidelity_r2 : float
        R² of the explained function to tau_hat on held-out units (1 for exact routes).
    n_background : int
    seconds : float
        Wall time of the explanation, including any distillation.
    extra : dict
        Route-specific facts (``n_fit``, ``n_holdout`` of the surrogate; for
        cross-fold explanations the fidelity of every fold model, ``fidelity_<k>``, and
        the firms each was refitted on, ``n_refit_<k>``).
    pair : HonestPair or None
        For cross-fold explanations: both fold models' values and predictions per unit.
    """

    estimator: str
    method: str
    units: np.ndarray
    values: pd.DataFrame
    base: float
    fidelity_r2: float
    n_background: int
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)
    pair: HonestPair | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class HonestPair:
    """Two independent explanations of every unit, by models that never saw its cluster.

    Unit ``i`` lies in fold ``folds[i]``; ``first`` comes from the model of the lower of
    the two other folds, ``second`` from the higher one. The two models were fitted on
    disjoint clusters, neither holding unit ``i``'s.

    Attributes
    ----------
    folds : ndarray of int of shape (n,)
    first, second : DataFrame of shape (n, k)
        SHAP values by original column.
    first_prediction, second_prediction : ndarray of shape (n,)
        The explained functions at the unit (values summed plus base).
    """

    folds: np.ndarray
    first: pd.DataFrame
    second: pd.DataFrame
    first_prediction: np.ndarray
    second_prediction: np.ndarray


def resolve_method(method: str, kind: str, model: Any) -> str:
    """The SHAP route for an estimator: ``method`` itself unless it is ``auto``.

    ``auto`` picks ``linear`` for linear final stages without a featurizer (linear and
    sparse linear DML, the linear DR-learner, OrthoIV and DMLIV), ``tree_surrogate`` for
    forests and ``permutation`` otherwise.

    Raises
    ------
    ValueError
        If ``method`` is not one of ``auto``, ``linear``, ``tree_surrogate``,
        ``permutation``.
    """
    if method not in ("auto", *METHODS):
        raise ValueError(
            f"`attribution.method` must be one of auto, {', '.join(METHODS)}; got {method!r}"
        )
    if method != "auto":
        return method
    linear = (kind in LINEAR_KINDS and hasattr(model, "coef_")) or kind in LINEAR_EFFECT_KINDS
    if linear and getattr(model, "featurizer", None) is None:
        return "linear"
    if "forest" in kind:
        return "tree_surrogate"
    return "permutation"


def effect_function(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """tau_hat as a function of a float array of modifiers (econml ``effect``, T0=0, T1=1)."""

    def effect(x: np.ndarray) -> np.ndarray:
        out = np.asarray(model.effect(np.asarray(x, dtype=np.float64)), dtype=np.float64)
        return out.reshape(len(x), -1)[:, 0]

    return effect


@dataclass(frozen=True)
class ModelShap:
    """Raw SHAP values of one model's effect function on some rows (encoded columns).

    Attributes
    ----------
    values : ndarray of shape (m, p)
        One column per encoded modifier.
    base : ndarray of shape (m,)
        Expected value per row: ``values.sum(1) + base`` is the explained function at the
        row (tau_hat itself for the exact routes, the surrogate's prediction otherwise).
    fidelity_r2 : float
        R² of the explained function to the model's effect (1 for exact routes).
    extra : dict
    """

    values: np.ndarray
    base: np.ndarray
    fidelity_r2: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def prediction(self) -> np.ndarray:
        """The explained function at each row."""
        return np.asarray(self.values.sum(axis=1) + self.base)


def check_rows(rows: np.ndarray, n: int, name: str) -> np.ndarray:
    """``rows`` as an int array of row indices in ``[0, n)``.

    Raises
    ------
    ValueError
        If ``rows`` is empty or out of range.
    """
    rows = np.asarray(rows)
    if rows.size == 0 or rows.min() < 0 or rows.max() >= n:
        raise ValueError(f"`{name}` must be non-empty row indices in [0, {n})")
    return rows.astype(np.int64)


def model_shap(
    chosen: str,
    model: Any,
    matrix: np.ndarray,
    explain_rows: np.ndarray,
    background_rows: np.ndarray,
    *,
    surrogate_options: Mapping[str, Any] | None = None,
    random_state: int = 0,
    backend: Backend | None = None,
) -> ModelShap:
    """SHAP values of ``model``'s effect function at ``explain_rows`` of ``matrix`` by the
    route ``chosen`` (``linear``, ``tree_surrogate`` or ``permutation``).

    The tree surrogate is distilled from the model's effect at (up to
    ``surrogate_options['max_units']``) rows of ``matrix``: covariates only, so distilling
    at a firm does not use its outcome.

    Raises
    ------
    ValueError
        If ``chosen`` is not a route or a row index is out of range.
    """
    if chosen not in METHODS:
        raise ValueError(f"`chosen` must be one of {', '.join(METHODS)}; got {chosen!r}")
    explain = matrix[check_rows(explain_rows, len(matrix), "explain_rows")]
    background = matrix[check_rows(background_rows, len(matrix), "background_rows")]
    effect = effect_function(model)
    runner = backend if backend is not None else LocalBackend(1)
    if chosen == "linear":
        if isinstance(getattr(model, "coef_", None), np.ndarray):
            coef = linear_coefficients(model, matrix.shape[1])
        else:
            coef = effect_coefficients(effect, matrix.shape[1], random_state=random_state)
        values = linear_shap(coef, explain, background)
        base = np.full(len(explain), float(np.mean(effect(background))))
        return ModelShap(values, base, 1.0)
    if chosen == "tree_surrogate":
        options = dict(surrogate_options or {})
        surrogate = fit_surrogate(effect, matrix, random_state=random_state, **options)
        values, base = _stack(runner.map(_TreeShapChunk(surrogate), _split(explain, TREE_CHUNK)))
        extra = {"n_fit": float(surrogate.n_fit), "n_holdout": float(surrogate.n_holdout)}
        return ModelShap(values, base, surrogate.fidelity_r2, extra)
    chunks = _split(explain, PERMUTATION_CHUNK)
    seeds = [seed for _, seed in chunk_seeds(random_state, len(chunks), 1)]
    task = _PermutationChunk(model, background)
    values, base = _stack(runner.map(task, list(zip(chunks, seeds, strict=True))))
    return ModelShap(values, base, 1.0)


def explain_effect(
    label: str,
    kind: str,
    model: Any,
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
) -> ShapExplanation:
    """Explain one fitted model's effect function on ``explain_rows`` of ``x``.

    This explains ``model.effect`` as it is: at a firm the model was fitted on, the
    values are not cluster-honest. The attribution stage explains refits that never saw
    the firm's cluster instead (:func:`vaer.attribution.honest.explain_across_folds`).

    Parameters
    ----------
    label, kind : str
        The estimator's label and registry kind.
    model : fitted econml estimator
        Fitted on ``x`` (as a float array).
    x : DataFrame of shape (n, p)
        All units' encoded modifiers (``AnalysisData.x``).
    explain_rows, background_rows : ndarray of int
        Rows of ``x`` to explain, and rows forming the background sample.
    units : ndarray of shape (n,)
        Unit ids of the rows of ``x``.
    feature_groups : mapping
        Original column -> encoded columns (``AnalysisData.feature_groups``).
    method : str
        ``auto``, ``linear``, ``tree_surrogate`` or ``permutation``.
    surrogate_options : mapping, optional
        ``holdout``, ``max_units`` and ``params`` of :func:`fit_surrogate`.
    random_state : int
        Seeds the surrogate and the permutations (chunks of ``PERMUTATION_CHUNK`` units,
        each with a seed spawned from it).
    backend : vaer.compute.Backend, optional
        Where the SHAP chunks run (``TREE_CHUNK`` units per TreeSHAP task,
        ``PERMUTATION_CHUNK`` per permutation task); default: in this process. Results do
        not depend on it.

    Returns
    -------
    ShapExplanation

    Raises
    ------
    ValueError
        If ``method`` is unknown or a row index is out of range.
    """
    chosen = resolve_method(method, kind, model)
    matrix = x.to_numpy(dtype=np.float64)
    started = time.perf_counter()
    raw = model_shap(
        chosen,
        model,
        matrix,
        explain_rows,
        background_rows,
        surrogate_options=surrogate_options,
        random_state=random_state,
        backend=backend,
    )
    seconds = time.perf_counter() - started
    groups = modifier_groups(list(x.columns), feature_groups)
    return ShapExplanation(
        estimator=label,
        method=chosen,
        units=np.asarray(units)[np.asarray(explain_rows)],
        values=sum_groups(raw.values, list(x.columns), groups),
        base=float(np.mean(raw.base)),
        fidelity_r2=raw.fidelity_r2,
        n_background=len(background_rows),
        seconds=seconds,
        extra=raw.extra,
    )
