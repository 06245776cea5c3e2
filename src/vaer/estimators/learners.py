"""Factories of first-stage (nuisance) learners, and stand-ins for econml's nuisances.

The defaults work on firm data without tuning: a regularised LightGBM with a moderate
number of shallow trees (300 trees of at most 15 leaves, learning rate 0.05, at least 40
firms per leaf, row and column subsampling, L2 penalty), one thread per model (so results
do not depend on the number of parallel jobs), quiet, and a fixed ``random_state``.
Other scikit-learn families are available through ``nuisance.model``. With
``nuisance.early_stopping`` LightGBM is wrapped in :class:`EarlyStoppingRegressor` /
:class:`EarlyStoppingClassifier`, which choose the number of trees on a held-out fifth.

Two stand-ins let econml's final stages run on nuisances fitted once per run:
:class:`ZeroRegressor` (for estimators fitted directly on residuals) and
:class:`CachedRegressor` / :class:`CachedClassifier`, which return precomputed
out-of-fold predictions for the row ids found in one column of their input.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

from vaer.config.estimators import NuisanceConfig

LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}

HGB_DEFAULTS: dict[str, Any] = {
    "max_iter": 300,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


def _with_params(model: BaseEstimator, config: NuisanceConfig) -> BaseEstimator:
    if config.params:
        allowed = model.get_params()
        unknown = sorted(set(config.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"nuisance.params: unknown keys {unknown} for {config.model}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        model.set_params(**config.params)
    return model


EARLY_STOPPING_FRACTION = 0.2
EARLY_STOPPING_ROUNDS = 20


def _held_out_rows(
    n: int, fraction: float, groups: Any, random_state: int, strata: Any = None
) -> np.ndarray:
    """Rows held out to stop early: a random ``fraction`` of the rows, or with ``groups``
    whole groups drawn at random until they hold at least that share of the rows (at
    least one group is kept for training). Fewer than two groups: a random share of rows.

    With ``strata`` (e.g. a classifier's labels) the draw is made within each stratum
    (a group belongs to the largest stratum code of its rows), so that every stratum
    keeps rows for training; a stratum of one group is not held out at all.
    """
    rng = np.random.default_rng(random_state)
    if strata is not None:
        codes_s = pd.factorize(np.asarray(strata), sort=True)[0]
        if groups is None:
            chosen = [
                rng.permutation(rows)[: round(fraction * len(rows))] if len(rows) > 1 else rows[:0]
                for rows in (np.flatnonzero(codes_s == k) for k in np.unique(codes_s))
            ]
            return np.sort(np.concatenate(chosen))
        codes, labels = pd.factorize(np.asarray(groups))
        group_stratum = np.zeros(len(labels), dtype=np.int64)
        np.maximum.at(group_stratum, codes, codes_s)
        held: list[np.ndarray] = []
        for k in np.unique(group_stratum):
            members = np.flatnonzero(group_stratum == k)
            if len(members) < 2:
                continue
            sizes = np.bincount(codes, minlength=len(labels))[members]
            order = rng.permutation(len(members))
            taken = np.cumsum(sizes[order]) >= fraction * sizes.sum()
            last = min(int(np.argmax(taken)), len(members) - 2)
            held.append(members[order[: last + 1]])
        return np.flatnonzero(np.isin(codes, np.concatenate(held))) if held else np.empty(0, int)
    if groups is not None:
        codes, labels = pd.factorize(np.asarray(groups))
        if len(codes) != n:
            raise ValueError(f"`groups` must have one label per row ({n}); got {len(codes)}")
        if len(labels) >= 2:
            sizes = np.bincount(codes, minlength=len(labels))
            order = rng.permutation(len(labels))
            taken = np.cumsum(sizes[order]) >= fraction * n
            last = min(int(np.argmax(taken)), len(labels) - 2)
            return np.flatnonzero(np.isin(codes, order[: last + 1]))
    return np.sort(rng.permutation(n)[: round(fraction * n)])


class _EarlyStopping(BaseEstimator):
    """Number of boosting rounds chosen on a held-out part of the training rows.

    ``fit`` fits a clone of ``estimator`` (a LightGBM model) on ``1 - validation_fraction``
    of the rows with early stopping on the rest (``patience`` rounds without improvement
    of LightGBM's default metric), then refits a clone with the best number of rounds on
    all rows. With more than ``max_rows`` rows (None: no limit) it fits ``estimator`` on
    all rows unchanged.

    With a ``linear`` model, that model is also fitted on the same rows and scored on the
    same held-out rows (squared error for regressors, log loss for classifiers); when it
    does better than the early-stopped LightGBM, it is the one refitted on all rows. The
    choice is made inside each training fold, so cross-fitting stays honest. Where a
    nuisance is close to linear, as the treatment of the firm table is in its controls,
    a penalised linear model beats a few hundred rows' worth of boosted trees.

    Parameters
    ----------
    estimator : LGBMRegressor or LGBMClassifier
    validation_fraction : float
        Share of rows held out to choose the number of rounds, in (0, 0.5].
    patience : int
        Rounds without improvement before stopping (>= 1).
    max_rows : int or None
        Largest training set on which to stop early.
    random_state : int
        Seed of the held-out split.
    linear : sklearn estimator or None
        A linear candidate (scaled ridge or logistic regression), or None.

    Attributes
    ----------
    estimator_ : fitted model
    n_rounds_ : int
        Boosting rounds of the LightGBM model (0 when the linear model was chosen).
    chosen_ : {"lightgbm", "linear"}
    """

    def __init__(
        self,
        estimator: Any = None,
        validation_fraction: float = EARLY_STOPPING_FRACTION,
        patience: int = EARLY_STOPPING_ROUNDS,
        max_rows: int | None = None,
        random_state: int = 0,
        linear: Any = None,
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_rows = max_rows
        self.random_state = random_state
        self.linear = linear

    def _check(self) -> None:
        if self.estimator is None:
            raise ValueError("early stopping needs an `estimator`; got None")
        if not 0 < self.validation_fraction <= 0.5:
            raise ValueError(
                f"`validation_fraction` must be in (0, 0.5]; got {self.validation_fraction}"
            )
        if int(self.patience) < 1:
            raise ValueError(f"`patience` must be an int >= 1; got {self.patience}")

    def fit(self, X: Any, y: Any, groups: Any = None, **fit_params: Any) -> _EarlyStopping:
        """Choose the number of rounds on held-out rows, then refit on all rows.

        With ``groups`` (e.g. the city of each firm) whole groups are held out, so that
        the number of rounds and the linear-or-boosted choice reward what carries over to
        new groups, not group-level noise learnt from the group's other rows. A
        classifier whose held-out groups would take every row of a class (a class in few
        groups, e.g. a cohort of two or three cities) draws them within each class instead.
        """
        from lightgbm import early_stopping

        self._check()
        x = np.asarray(X, dtype=np.float64)
        target = np.asarray(y)
        n = len(target)
        rounds = int(self.estimator.get_params()["n_estimators"])
        chosen = "lightgbm"
        valid = _held_out_rows(n, self.validation_fraction, groups, self.random_state)
        if isinstance(self, ClassifierMixin) and len(np.unique(np.delete(target, valid))) < len(
            np.unique(target)
        ):  # a class held out entirely: draw within each class
            valid = _held_out_rows(
                n, self.validation_fraction, groups, self.random_state, strata=target
            )
        if (self.max_rows is None or n <= self.max_rows) and len(valid) >= 20:
            train = np.setdiff1d(np.arange(n), valid, assume_unique=True)
            probe = clone(self.estimator)
            held_out = (x[valid], target[valid])
            # LightGBM >= 4.6 takes eval_X/eval_y and deprecates eval_set
            evaluation = (
                {"eval_X": (held_out[0],), "eval_y": (held_out[1],)}
                if "eval_X" in inspect.signature(probe.fit).parameters
                else {"eval_set": [held_out]}
            )
            probe.fit(
                x[train],
                target[train],
                callbacks=[early_stopping(int(self.patience), verbose=False)],
                **evaluation,
            )
            rounds = max(1, int(probe.best_iteration_ or rounds))
            if self.linear is not None:
                linear = clone(self.linear).fit(x[train], target[train])
                if self._loss(linear, *held_out) < self._loss(probe, *held_out):
                    chosen = "linear"
        if chosen == "linear":
            self.estimator_ = clone(self.linear).fit(x, target)
            rounds = 0
        else:
            self.estimator_ = clone(self.estimator).set_params(n_estimators=rounds)
            self.estimator_.fit(x, target, **fit_params)
        self.n_rounds_, self.chosen_ = rounds, chosen
        self.n_features_in_ = x.shape[1]
        return self

    def _loss(self, model: Any, x: np.ndarray, target: np.ndarray) -> float:
        """Held-out loss: squared error (regressors) or log loss (classifiers)."""
        if isinstance(self, ClassifierMixin):
            from sklearn.metrics import log_loss

            return float(log_loss(target, model.predict_proba(x), labels=model.classes_))
        return float(np.mean((target - model.predict(x)) ** 2))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the refitted model."""
        return np.asarray(self.estimator_.predict(np.asarray(X, dtype=np.float64)))


class EarlyStoppingRegressor(RegressorMixin, _EarlyStopping):
    """LightGBM regressor with the number of trees chosen on a held-out fifth."""


class EarlyStoppingClassifier(ClassifierMixin, _EarlyStopping):
    """LightGBM classifier with the number of trees chosen on a held-out fifth."""

    def fit(self, X: Any, y: Any, groups: Any = None, **fit_params: Any) -> EarlyStoppingClassifier:
        super().fit(X, y, groups, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the refitted model."""
        return np.asarray(self.estimator_.predict_proba(np.asarray(X, dtype=np.float64)))


def _linear_regressor() -> BaseEstimator:
    """Ridge regression on standardised features, penalty by efficient leave-one-out."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))


def _linear_classifier() -> BaseEstimator:
    """L2 logistic regression on standardised features (the default penalty)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _early_stopping_rows(config: NuisanceConfig) -> int | bool | None:
    """False: no early stopping; None: always; an int: up to that many training rows."""
    if config.model != "lightgbm" or config.early_stopping is False:
        return False
    return None if config.early_stopping is True else config.early_stopping_max_rows


def make_regressor(config: NuisanceConfig, random_state: int) -> BaseEstimator:
    """Build an unfitted nuisance regressor.

    Parameters
    ----------
    config : NuisanceConfig
        ``model`` is ``lightgbm`` (default), ``random_forest``, ``hist_gradient_boosting``
        or ``ridge``; ``params`` override the defaults; ``early_stopping`` wraps LightGBM
        in :class:`EarlyStoppingRegressor`.
    random_state : int
        Seed passed to the learner.

    Returns
    -------
    sklearn regressor

    Raises
    ------
    ValueError
        If ``params`` has a key the learner does not take.
    """
    if config.model == "lightgbm":
        from lightgbm import LGBMRegressor

        model: BaseEstimator = LGBMRegressor(**{**LGBM_DEFAULTS, "random_state": random_state})
        rows = _early_stopping_rows(config)
        if rows is not False:
            return EarlyStoppingRegressor(
                _with_params(model, config),
                max_rows=rows,
                random_state=random_state,
                linear=_linear_regressor() if config.linear_candidate else None,
            )
    elif config.model == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        model = RandomForestRegressor(
            n_estimators=200, min_samples_leaf=10, n_jobs=1, random_state=random_state
        )
    elif config.model == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        model = HistGradientBoostingRegressor(**HGB_DEFAULTS, random_state=random_state)
    else:
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=np.logspace(-3, 3, 13))
    return _with_params(model, config)


def make_classifier(config: NuisanceConfig, random_state: int) -> BaseEstimator:
    """Build an unfitted nuisance classifier (propensity of the binarised treatment).

    Same families and defaults as :func:`make_regressor`; ``ridge`` means an
    L2-penalised logistic regression with the penalty chosen by 5-fold CV.

    Raises
    ------
    ValueError
        If ``params`` has a key the learner does not take.
    """
    if config.model == "lightgbm":
        from lightgbm import LGBMClassifier

        model: BaseEstimator = LGBMClassifier(**{**LGBM_DEFAULTS, "random_state": random_state})
        rows = _early_stopping_rows(config)
        if rows is not False:
            return EarlyStoppingClassifier(
                _with_params(model, config),
                max_rows=rows,
                random_state=random_state,
                linear=_linear_classifier() if config.linear_candidate else None,
            )
    elif config.model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(
            n_estimators=200, min_samples_leaf=10, n_jobs=1, random_state=random_state
        )
    elif config.model == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(**HGB_DEFAULTS, random_state=random_state)
    else:
        from sklearn.linear_model import LogisticRegressionCV

        model = LogisticRegressionCV(Cs=13, cv=5, max_iter=2000)
    return _with_params(model, config)


class ZeroRegressor(RegressorMixin, BaseEstimator):
    """Predicts 0; stands in for econml's nuisance models when residuals are precomputed.

    Fitting an econml DML estimator on residuals ``(Y - m, T - e)`` with zero nuisance
    models gives exactly the final stage it would fit on ``(Y, T)`` with ``m`` and ``e``.
    """

    def fit(self, X: Any, y: Any, **_: Any) -> ZeroRegressor:
        self.n_features_in_ = np.shape(X)[1] if np.ndim(X) > 1 else 1
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.zeros(np.shape(X)[0])


def _row_ids(X: Any, id_column: int) -> np.ndarray:
    return np.asarray(X, dtype=np.float64)[:, id_column].astype(np.int64)


class CachedRegressor(RegressorMixin, BaseEstimator):
    """Returns precomputed out-of-fold predictions, looked up by a row-id column.

    econml passes its nuisance models ``[X, W, ...]``; with ``W`` = the row ids of the
    analysis table, ``X[:, id_column]`` says which row each input is, and ``predict``
    returns the cross-fitted prediction of that row. ``fit`` learns nothing.

    Parameters
    ----------
    values : ndarray of shape (n,) or (n, 2)
        Predictions per row; with two columns, column ``k`` is the prediction at
        treatment arm ``k``, and the arm is read from the input's last column (econml's
        one-hot encoded binary treatment).
    id_column : int
        Position of the row-id column in the input.
    """

    def __init__(self, values: np.ndarray | None = None, id_column: int = 0) -> None:
        self.values = values
        self.id_column = id_column

    def fit(self, X: Any, y: Any, **_: Any) -> CachedRegressor:
        if self.values is None:
            raise ValueError("CachedRegressor needs `values`; got None")
        self.n_features_in_ = np.shape(X)[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        values = np.asarray(self.values, dtype=np.float64)
        ids = _row_ids(X, self.id_column)
        if values.ndim == 1:
            return values[ids]
        arm = np.asarray(X, dtype=np.float64)[:, -1] > 0.5
        return np.where(arm, values[ids, 1], values[ids, 0])


class CachedClassifier(ClassifierMixin, BaseEstimator):
    """Returns precomputed out-of-fold probabilities of class 1, looked up by row id.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Cross-fitted ``P(D = 1 | X, W)`` per row.
    id_column : int
        Position of the row-id column in the input.
    """

    def __init__(self, values: np.ndarray | None = None, id_column: int = 0) -> None:
        self.values = values
        self.id_column = id_column

    def fit(self, X: Any, y: Any, **_: Any) -> CachedClassifier:
        if self.values is None:
            raise ValueError("CachedClassifier needs `values`; got None")
        self.classes_ = np.unique(np.asarray(y))
        self.n_features_in_ = np.shape(X)[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(self.values, dtype=np.float64)[_row_ids(X, self.id_column)]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
