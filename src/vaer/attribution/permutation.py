"""Model-agnostic SHAP of any effect function: shap's permutation explainer.

The value function is interventional: features outside a coalition are drawn from a
background sample (``shap.maskers.Independent``). With ``max_evals`` evaluations per
unit the explainer averages over antithetic permutations, so the values sum exactly to
``f(x) - E_bg[f]`` (Strumbelj and Kononenko, 2014, *Knowl. Inf. Syst.* 41(3)).
It evaluates the model ``max_evals x n_background`` times per unit: use few units.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def permutation_shap(
    effect: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    background: np.ndarray,
    *,
    max_evals: int | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation-explainer SHAP values of ``effect`` at ``x``.

    Parameters
    ----------
    effect : callable
        Maps an (n, p) float array to shape (n,).
    x : ndarray of shape (n, p)
    background : ndarray of shape (m, p)
    max_evals : int, optional
        Model evaluations per unit; defaults to ``max(500, 2 p + 1)``.
    random_state : int
        Seed of the permutations.

    Returns
    -------
    values : ndarray of shape (n, p)
    base : ndarray of shape (n,)

    Raises
    ------
    ValueError
        If ``x`` and ``background`` do not have the same number of columns.
    """
    import shap

    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    if x.ndim != 2 or background.ndim != 2 or x.shape[1] != background.shape[1]:
        raise ValueError(
            "`x` and `background` must be 2-D with the same columns; "
            f"got {x.shape} and {background.shape}"
        )
    p = x.shape[1]
    evals = max_evals if max_evals is not None else max(500, 2 * p + 1)
    masker = shap.maskers.Independent(background, max_samples=len(background))

    def model(rows: np.ndarray) -> np.ndarray:
        return np.asarray(effect(np.asarray(rows, dtype=np.float64)), dtype=np.float64).ravel()

    explainer = shap.PermutationExplainer(model, masker, seed=random_state)
    explanation = explainer(x, max_evals=evals, silent=True)
    return (
        np.asarray(explanation.values, dtype=np.float64),
        np.asarray(explanation.base_values, dtype=np.float64).ravel(),
    )
