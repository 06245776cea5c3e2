r"""A linear CATE the causal forest starts from (``causal_forest_dml.linear_base``).

A forest approximates a smooth effect by steps, and on a few thousand units the steps are
coarse; where the effect is close to linear in the modifiers, a linear R-learner is the
better estimate. ``causal_forest_dml`` combines the two: a lasso R-learner
:math:`b(x) = b_0 + x'\beta` is fitted on the cross-fitted residuals,

.. math:: \min_{b_0, \beta}\ \tfrac{1}{2n} \sum_i \big(\tilde Y_i - (b_0 + x_i'\beta)
          \tilde T_i\big)^2 + \alpha \lVert \beta \rVert_1,

with :math:`b_0` unpenalised (partialled out, Frisch-Waugh) and :math:`\alpha` chosen by
cross-validation over folds of clusters; the forest is then grown on what a share
:math:`s` of it leaves, :math:`\tilde Y - s\,b(X)\,\tilde T`, and the effect is
:math:`\hat\tau(x) = s\,b(x) + \hat\theta(x)`. Where the effect is constant the lasso
keeps little more than :math:`b_0` and the forest is close to the one without a base;
where it has a linear part the forest only has to find what is left. The share is fixed
(0.3 by default) rather than chosen by the forest's R-loss, which on clustered data
prefers the forest without a base even where the base is better (out-of-bag units share
their cluster's shocks with the trees' units); the base is fitted on all units, so the
out-of-bag effects are out-of-sample for the forest only (the base has one coefficient
per modifier).

The forest's intervals (and its out-of-bag effects) are shifted by :math:`s\,b(x)`; the
sampling variance of :math:`b` (a regression with one coefficient per modifier) is not
added to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from econml.dml import CausalForestDML
from sklearn.base import clone
from sklearn.linear_model import LassoCV
from sklearn.model_selection import GroupKFold

#: Folds of the lasso's cross-validation (fewer when there are fewer clusters).
CV_FOLDS = 5


class LinearCate:
    """A lasso R-learner of a linear CATE ``b0 + x @ beta``.

    Parameters
    ----------
    random_state : int
        Seed of the cross-validation folds.
    """

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(
        self, x: np.ndarray, y_res: np.ndarray, t_res: np.ndarray, groups: np.ndarray
    ) -> LinearCate:
        """Fit on modifiers ``x`` and residuals of outcome and treatment.

        ``groups`` (cluster codes) keep each cluster within one cross-validation fold.

        Raises
        ------
        ValueError
            If the treatment residuals are all zero, or there are fewer than 2 clusters.
        """
        x = np.asarray(x, dtype=np.float64)
        y_res = np.asarray(y_res, dtype=np.float64).ravel()
        t_res = np.asarray(t_res, dtype=np.float64).ravel()
        tt = float(t_res @ t_res)
        if tt == 0.0:
            raise ValueError("the linear base needs treatment residuals that are not all zero")
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError("the linear base needs at least 2 clusters to cross-validate")
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = t_res[:, None] * ((x - self.mean_) / self.scale_)
        # partial the unpenalised b0 * t_res out of the outcome and of every column
        y_perp = y_res - t_res * (t_res @ y_res) / tt
        z_perp = z - np.outer(t_res, t_res @ z) / tt
        folds = GroupKFold(min(CV_FOLDS, n_groups), shuffle=True, random_state=self.random_state)
        lasso = LassoCV(
            fit_intercept=False, cv=list(folds.split(z_perp, y_perp, groups)), max_iter=5000
        )
        lasso.fit(z_perp, y_perp)
        self.beta_ = np.asarray(lasso.coef_, dtype=np.float64)
        self.b0_ = float(t_res @ (y_res - z @ self.beta_) / tt)
        self.alpha_ = float(lasso.alpha_)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``b0 + x @ beta`` at ``x``, shape (n,)."""
        if not hasattr(self, "beta_"):
            raise ValueError("this LinearCate is not fitted yet; call `fit` first")
        xs = (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
        return self.b0_ + xs @ self.beta_

    @property
    def coefficients(self) -> np.ndarray:
        """Slopes on the modifiers in their own units (``beta / scale``)."""
        return self.beta_ / self.scale_


class ShiftedForest:
    """econml's forest of a ``CausalForestDML`` on ``Y - share * base(X) * T``, with every
    prediction shifted back by ``share * base(X)``.

    Parameters
    ----------
    forest : econml.grf.MultiOutputGRF
        The unfitted forest ``CausalForestDML`` would grow.
    base : LinearCate
        A fitted linear CATE.
    share : float
        Share of the base the forest starts from.
    """

    def __init__(self, forest: Any, base: LinearCate, share: float) -> None:
        self.forest = forest
        self.base = base
        self.share = share

    def _shift(self, x: np.ndarray, like: np.ndarray) -> np.ndarray:
        shift = self.share * self.base.predict(x)
        return shift.reshape((len(shift),) + (1,) * (np.ndim(like) - 1))

    def fit(self, X: np.ndarray, T: np.ndarray, y: np.ndarray, **kwargs: Any) -> ShiftedForest:
        """Fit the forest on ``y - share * base(X) * T`` (one outcome, one treatment)."""
        y = np.asarray(y, dtype=np.float64)
        t = np.asarray(T, dtype=np.float64).reshape(y.shape)
        self.forest.fit(X, T, y - self.share * self.base.predict(X).reshape(y.shape) * t, **kwargs)
        return self

    def predict(self, X: np.ndarray, interval: bool = False, alpha: float = 0.05) -> Any:
        """The forest's prediction (and interval bounds) plus ``share * base(X)``."""
        out = self.forest.predict(X, interval=interval, alpha=alpha)
        shift = self._shift(X, out[0] if interval else out)  # the base once for all bounds
        return tuple(part + shift for part in out) if interval else out + shift

    def predict_and_var(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shifted prediction and the forest's variance."""
        pred, var = self.forest.predict_and_var(X)
        return pred + self._shift(X, pred), var

    def predict_projection_and_var(
        self, X: np.ndarray, projector: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shifted projection ``<tau(x), projector>`` (one treatment) and its variance."""
        pred, var = self.forest.predict_projection_and_var(X, projector)
        shift = self._shift(X, pred)
        return pred + shift * np.asarray(projector).reshape(shift.shape), var

    def oob_predict(self, Xtrain: np.ndarray) -> np.ndarray:
        """Shifted out-of-bag prediction of the training rows."""
        out = self.forest.oob_predict(Xtrain)
        return out + self._shift(Xtrain, out)

    def __sklearn_clone__(self) -> ShiftedForest:
        # econml clones its final model before fitting it; the base is fitted and kept
        return ShiftedForest(clone(self.forest), self.base, self.share)

    @property
    def estimators_(self) -> list[Any]:
        """The forest's per-outcome forests (econml ``MultiOutputGRF.estimators_``)."""
        return self.forest.estimators_

    def feature_importances(self, max_depth: int = 4, depth_decay_exponent: float = 2.0) -> Any:
        """The forest's split-based feature importances (the base is not counted)."""
        return self.forest.feature_importances(max_depth, depth_decay_exponent)

    @property
    def feature_importances_(self) -> Any:
        """The forest's split-based feature importances (the base is not counted)."""
        return self.forest.feature_importances_


class LinearBaseCausalForestDML(CausalForestDML):
    """econml's ``CausalForestDML`` whose forest starts from ``linear_base_share_`` times
    the fitted :class:`LinearCate` ``linear_base_`` (set both before ``fit``; without a
    base it is econml's own).

    Every effect, interval and out-of-bag prediction econml derives from the forest
    includes the base, since econml reaches the forest only through ``model_final_``.
    """

    linear_base_: LinearCate | None = None
    linear_base_share_: float = 0.0

    def _gen_model_final(self) -> Any:
        forest = super()._gen_model_final()
        if self.linear_base_ is None or self.linear_base_share_ == 0.0:
            return forest
        return ShiftedForest(forest, self.linear_base_, self.linear_base_share_)
