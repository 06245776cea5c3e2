"""SHAP values of one estimator's effect function tau_hat(x), by original column.

The explained function is the fitted CATE function :math:`\\hat\\tau(x)` (econml
``effect(X)``: the effect of one more unit of VA at modifiers ``x``). Three routes:

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
from vaer.attribution.linear import linear_coefficients, linear_shap
from vaer.attribution.permutation import permutation_shap
from vaer.attribution.surrogate import fit_surrogate
from vaer.compute import Backend, LocalBackend, chunk_seeds

METHODS = ("linear", "tree_surrogate", "permutation")
LINEAR_KINDS = frozenset({"linear_dml", "sparse_linear_dml"})
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
        Route-specific facts (``n_fit``, ``n_holdout`` of the surrogate).
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


def resolve_method(method: str, kind: str, model: Any) -> str:
    """The SHAP route for an estimator: ``method`` itself unless it is ``auto``.

    ``auto`` picks ``linear`` for linear final stages without a featurizer,
    ``tree_surrogate`` for forests and ``permutation`` otherwise.

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
    if (
        kind in LINEAR_KINDS
        and hasattr(model, "coef_")
        and getattr(model, "featurizer", None) is None
    ):
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
    """Explain one estimator's tau_hat(x) on ``explain_rows`` of ``x``.

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
    for name, rows in (("explain_rows", explain_rows), ("background_rows", background_rows)):
        rows = np.asarray(rows)
        if rows.size == 0 or rows.min() < 0 or rows.max() >= len(matrix):
            raise ValueError(f"`{name}` must be non-empty row indices in [0, {len(matrix)})")
    explain = matrix[explain_rows]
    background = matrix[background_rows]
    effect = effect_function(model)
    runner = backend if backend is not None else LocalBackend(1)
    started = time.perf_counter()
    extra: dict[str, float] = {}
    if chosen == "linear":
        coef = linear_coefficients(model, matrix.shape[1])
        values = linear_shap(coef, explain, background)
        base = float(np.mean(effect(background)))
        fidelity = 1.0
    elif chosen == "tree_surrogate":
        options = dict(surrogate_options or {})
        surrogate = fit_surrogate(effect, matrix, random_state=random_state, **options)
        values, bases = _stack(runner.map(_TreeShapChunk(surrogate), _split(explain, TREE_CHUNK)))
        base = float(bases[0])
        fidelity = surrogate.fidelity_r2
        extra = {"n_fit": float(surrogate.n_fit), "n_holdout": float(surrogate.n_holdout)}
    else:
        chunks = _split(explain, PERMUTATION_CHUNK)
        seeds = [seed for _, seed in chunk_seeds(random_state, len(chunks), 1)]
        task = _PermutationChunk(model, background)
        values, bases = _stack(runner.map(task, list(zip(chunks, seeds, strict=True))))
        base = float(np.mean(bases))
        fidelity = 1.0
    seconds = time.perf_counter() - started
    groups = modifier_groups(list(x.columns), feature_groups)
    grouped = sum_groups(values, list(x.columns), groups)
    return ShapExplanation(
        estimator=label,
        method=chosen,
        units=np.asarray(units)[explain_rows],
        values=grouped,
        base=base,
        fidelity_r2=fidelity,
        n_background=len(background_rows),
        seconds=seconds,
        extra=extra,
    )
