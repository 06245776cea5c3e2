"""A causal IV forest fitted on cross-fitted residuals (the ``causal_iv_forest`` kind).

econml's :class:`econml.grf.CausalIVForest` is a bare generalized random forest that
solves the local moment :math:`E[(\\tilde Y - \\tau(x)\\tilde T - \\alpha(x))\\,
(1, \\tilde Z)] = 0`. Fitted on residuals of ``(Y, T, Z)`` on ``(X, W)`` it becomes
the orthogonalised instrumental forest of grf (Athey, Tibshirani and Wager, 2019), in
the same way ``CausalForestDML`` wraps a causal forest. This class gives it the small
part of econml's CATE interface the rest of vaer uses (``effect``,
``const_marginal_effect``, ``effect_stderr``, ``ate_interval``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from vaer.estimators.chunks import by_rows


class ResidualIVForest:
    """An econml ``CausalIVForest`` on residuals, with a CATE-estimator interface.

    Parameters
    ----------
    **forest_params
        Passed to :class:`econml.grf.CausalIVForest` (``n_estimators``,
        ``min_samples_leaf``, ``max_samples``, ``random_state``, ...).
    """

    def __init__(self, **forest_params: Any) -> None:
        self.forest_params = forest_params

    def fit(
        self, X: np.ndarray, t_res: np.ndarray, y_res: np.ndarray, z_res: np.ndarray
    ) -> ResidualIVForest:
        """Fit the forest on modifiers ``X`` and residuals of treatment, outcome, instrument."""
        from econml.grf import CausalIVForest

        self.forest_ = CausalIVForest(inference=True, **self.forest_params)
        self.forest_.fit(X, t_res, y_res, Z=z_res)
        return self

    def _check_fitted(self) -> Any:
        if not hasattr(self, "forest_"):
            raise ValueError("this ResidualIVForest is not fitted yet; call `fit` first")
        return self.forest_

    def effect(self, X: np.ndarray) -> np.ndarray:
        """CATE of one more unit of treatment at ``X``, shape (n,)."""
        return np.asarray(self._check_fitted().predict(X), dtype=np.float64).reshape(len(X))

    def const_marginal_effect(self, X: np.ndarray) -> np.ndarray:
        """Same as :meth:`effect` (the effect is linear in the treatment)."""
        return self.effect(X)

    def effect_stderr(self, X: np.ndarray) -> np.ndarray:
        """Standard error of the CATE at ``X`` (forest bootstrap-of-little-bags variance),
        a block of rows at a time (:func:`~vaer.estimators.chunks.by_rows`)."""
        forest = self._check_fitted()
        blocks = by_rows(lambda part: np.ravel(forest.predict_and_var(part)[1]), X)
        return np.sqrt(np.concatenate(blocks).astype(np.float64)).reshape(len(X))

    def oob_effect(self, X: np.ndarray) -> np.ndarray:
        """Out-of-bag CATE of the training rows ``X`` (NaN where no tree left a row out)."""
        return np.asarray(self._check_fitted().oob_predict(X), dtype=np.float64).reshape(len(X))

    def ate_interval(self, X: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
        """Mean effect over ``X`` with econml's conservative population-summary SE
        (root mean of the per-unit variances), as ``(estimate, se, z)``."""
        point = self.effect(X)
        se = float(np.sqrt(np.mean(self.effect_stderr(X) ** 2)))
        return float(point.mean()), se, float(stats.norm.ppf(1 - alpha / 2))
