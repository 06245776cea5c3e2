"""Cross-fitting of the nuisance functions, once per run, shared by every estimator.

Folds never split a cluster. Each fold's model is an independent clone with its own
fixed ``random_state`` and one thread, and predictions are written back by index, so
the numbers do not depend on ``n_jobs``.

Three families of nuisances, each computed on first use and then cached per number of
folds ``cv`` (and per binarisation rule):

* continuous treatment: ``m(x, w) = E[Y | X, W]``, ``e(x, w) = E[T | X, W]`` and
  ``s2(x) = E[(T - e)^2 | X]``;
* binarised treatment ``D``: the propensity ``p(x, w) = P(D = 1 | X, W)`` and the outcome
  regressions ``mu_d(x, w) = E[Y | D = d, X, W]`` (one model on ``[X, W, D]``, as
  econml's DR learner fits it);
* instrument ``Z``: ``r(x, w) = E[Z | X, W]``, ``E[T | X, W, Z]`` and the compliance
  ``c(x) = E[(T - e)(Z - r) | X]`` (a cross-fitted ridge regression: boosted trees on a
  product of residuals are noisy, and ``1 / c(x)`` weights the IV scores).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import RidgeCV

from vaer.compute import Backend, LocalBackend
from vaer.config.estimators import NuisanceConfig
from vaer.estimators.learners import (
    LGBM_DEFAULTS,
    ZeroRegressor,
    make_classifier,
    make_regressor,
)

__all__ = [
    "LGBM_DEFAULTS",
    "BinaryNuisances",
    "Folds",
    "IVNuisances",
    "NuisanceCache",
    "Nuisances",
    "ZeroRegressor",
    "binarise",
    "crossfit_predict",
    "fit_nuisances",
    "fold_ids",
    "grouped_folds",
    "make_classifier",
    "make_regressor",
]

Folds = list[tuple[np.ndarray, np.ndarray]]


def grouped_folds(clusters: np.ndarray, n_splits: int, random_state: int) -> Folds:
    """Cross-fitting folds in which no cluster is split across folds.

    Parameters
    ----------
    clusters : ndarray of shape (n,)
        Cluster code per unit.
    n_splits : int
        Number of folds (>= 2).
    random_state : int
        Seed of the shuffle of clusters into folds.

    Returns
    -------
    list of (train, test) index arrays

    Raises
    ------
    ValueError
        If there are fewer clusters than folds.
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(clusters))
    if n_groups < n_splits:
        raise ValueError(
            f"cv={n_splits} folds need at least {n_splits} clusters; the data have {n_groups}"
        )
    splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    index = np.arange(len(clusters))
    return [(train, test) for train, test in splitter.split(index, groups=clusters)]


def _as_array(features: pd.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        return features.to_numpy(dtype=np.float64)
    return np.asarray(features, dtype=np.float64)


def _predict(fitted: BaseEstimator, rows: np.ndarray, proba: bool) -> np.ndarray:
    if proba:
        return np.asarray(fitted.predict_proba(rows)[:, 1], dtype=np.float64)
    return np.asarray(fitted.predict(rows), dtype=np.float64)


@dataclass(frozen=True)
class _FoldFit:
    """One cross-fitting task: fit a clone on a fold's training rows, predict its test rows.

    The arrays are fields of the task function (shipped once per ``map``), folds its items.
    """

    model: BaseEstimator
    train_x: np.ndarray
    target: np.ndarray
    predict_at: tuple[np.ndarray, ...]
    proba: bool
    groups: np.ndarray | None = None

    def __call__(self, fold: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        train, test = fold
        fit_params = {} if self.groups is None else {"groups": self.groups[train]}
        fitted = clone(self.model).fit(self.train_x[train], self.target[train], **fit_params)
        return np.column_stack([_predict(fitted, a[test], self.proba) for a in self.predict_at])


def crossfit_predict(
    model: BaseEstimator,
    features: pd.DataFrame | np.ndarray,
    target: np.ndarray,
    folds: Folds,
    n_jobs: int = 1,
    *,
    proba: bool = False,
    predict_at: Sequence[np.ndarray] | None = None,
    backend: Backend | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold predictions of ``target`` from ``features``, one clone of ``model`` per fold.

    Parameters
    ----------
    model : sklearn estimator
    features : array-like of shape (n, p)
    target : ndarray of shape (n,)
    folds : list of (train, test) index arrays
    n_jobs : int
        Folds fitted in parallel local processes when no ``backend`` is given; the result
        does not depend on it.
    proba : bool
        Predict ``P(target = 1)`` with ``predict_proba`` instead of ``predict``.
    predict_at : sequence of arrays of shape (n, p), optional
        Feature matrices to predict at instead of ``features`` (one output column each),
        e.g. the features with the treatment set to 0 and to 1.
    backend : vaer.compute.Backend, optional
        Where the folds run (one task per fold); default: ``LocalBackend(n_jobs)``.
    groups : ndarray of shape (n,), optional
        Cluster of each row, passed to models that take ``groups`` in ``fit`` (the
        early-stopping wrappers hold out whole clusters); other models ignore it.

    Returns
    -------
    ndarray of shape (n,) or (n, len(predict_at))
    """
    train_x = _as_array(features)
    targets = (train_x,) if predict_at is None else tuple(_as_array(a) for a in predict_at)
    takes_groups = groups is not None and "groups" in inspect.signature(model.fit).parameters
    task = _FoldFit(
        model,
        train_x,
        np.asarray(target),
        targets,
        proba,
        np.asarray(groups) if takes_groups else None,
    )
    runner = backend if backend is not None else LocalBackend(n_jobs)
    prediction = np.empty((len(target), len(targets)), dtype=np.float64)
    for (_, test), values in zip(folds, runner.map(task, folds), strict=True):
        prediction[test] = values
    return prediction[:, 0] if predict_at is None else prediction


def fold_ids(folds: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """The fold each unit is held out in."""
    ids = np.empty(n, dtype=np.int64)
    for k, (_, test) in enumerate(folds):
        ids[test] = k
    return ids


def binarise(t: np.ndarray, rule: str) -> tuple[np.ndarray, float]:
    """Binarise the continuous treatment: ``1`` = high VA.

    Parameters
    ----------
    t : ndarray of shape (n,)
    rule : {"median", "top_tercile"}
        ``median``: above the sample median; ``top_tercile``: above the 2/3 quantile.

    Returns
    -------
    d : ndarray of shape (n,) of 0/1 floats
    threshold : float

    Raises
    ------
    ValueError
        On an unknown rule or when one arm would be empty.
    """
    quantiles = {"median": 0.5, "top_tercile": 2 / 3}
    if rule not in quantiles:
        raise ValueError(f"unknown binarisation rule '{rule}'; allowed: {sorted(quantiles)}")
    threshold = float(np.quantile(t, quantiles[rule]))
    d = (t > threshold).astype(np.float64)
    if d.min() == d.max():
        raise ValueError(
            f"binarising the treatment at its {rule} ({threshold:.4g}) leaves one arm empty; "
            "the treatment has too few distinct values for a binary-treatment estimator"
        )
    return d, threshold


@dataclass(frozen=True)
class Nuisances:
    """Cross-fitted first stages of a continuous treatment.

    Attributes
    ----------
    folds : list of (train, test) index arrays
    y_hat, t_hat : ndarray of shape (n,)
        Out-of-fold predictions of E[Y | X, W] and E[T | X, W].
    y_res, t_res : ndarray of shape (n,)
        Residuals ``y - y_hat`` and ``t - t_hat``.
    t_res_var : ndarray of shape (n,)
        Out-of-fold predictions of E[T_res^2 | X], floored at 5% of mean(T_res^2).
    """

    folds: Folds
    y_hat: np.ndarray
    t_hat: np.ndarray
    y_res: np.ndarray
    t_res: np.ndarray
    t_res_var: np.ndarray


@dataclass(frozen=True)
class BinaryNuisances:
    """Cross-fitted first stages of the binarised treatment.

    Attributes
    ----------
    rule : str
        Binarisation rule; ``threshold`` the VA value above which a unit is "high".
    d : ndarray of shape (n,)
        Binary treatment.
    propensity : ndarray of shape (n,)
        Out-of-fold ``P(D = 1 | X, W)`` (not clipped).
    mu : ndarray of shape (n, 2)
        Out-of-fold ``E[Y | D = d, X, W]`` for d = 0, 1.
    """

    folds: Folds
    rule: str
    threshold: float
    d: np.ndarray
    propensity: np.ndarray
    mu: np.ndarray


@dataclass(frozen=True)
class IVNuisances:
    """Cross-fitted first stages involving the instrument.

    Attributes
    ----------
    z_hat : ndarray of shape (n,)
        Out-of-fold E[Z | X, W]; ``z_res = z - z_hat``.
    t_xwz_hat : ndarray of shape (n,)
        Out-of-fold E[T | X, W, Z] (the projected treatment of DMLIV).
    compliance : ndarray of shape (n,)
        Out-of-fold ``c(x) = E[T_res Z_res | X]`` from a ridge regression on ``X``, kept
        at least 25% of the mean compliance in absolute value (with its sign).
    """

    folds: Folds
    z_hat: np.ndarray
    z_res: np.ndarray
    t_xwz_hat: np.ndarray
    compliance: np.ndarray


def fit_nuisances(
    x: pd.DataFrame | np.ndarray,
    xw: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    folds: Folds,
    make_model: Callable[[], BaseEstimator],
    n_jobs: int = 1,
    backend: Backend | None = None,
    groups: np.ndarray | None = None,
) -> Nuisances:
    """Cross-fit the outcome, treatment and residual-variance regressions.

    The residual variance ``s2(x) = E[(T - e(X, W))^2 | X = x]`` weights the doubly robust
    scores of a continuous treatment (see :mod:`vaer.estimators.scores`). ``groups`` (the
    cluster of each row) reach the learners that hold out whole clusters to stop early.

    Returns
    -------
    Nuisances
    """
    fit = partial(crossfit_predict, folds=folds, n_jobs=n_jobs, backend=backend, groups=groups)
    y_hat = fit(make_model(), xw, y)
    t_hat = fit(make_model(), xw, t)
    t_res = t - t_hat
    t_res_var = fit(make_model(), x, t_res**2)
    floor = 0.05 * float(np.mean(t_res**2))
    return Nuisances(
        folds=folds,
        y_hat=y_hat,
        t_hat=t_hat,
        y_res=y - y_hat,
        t_res=t_res,
        t_res_var=np.maximum(t_res_var, floor),
    )


class NuisanceCache:
    """Nuisances of one run, fitted on first use and shared by every estimator.

    Parameters
    ----------
    x : ndarray of shape (n, p)
        Modifiers.
    xw : ndarray of shape (n, p + q)
        Modifiers and controls.
    y, t : ndarray of shape (n,)
    clusters : ndarray of shape (n,)
    config : NuisanceConfig
    random_state : int
    z : ndarray of shape (n,), optional
        Instrument.
    backend : vaer.compute.Backend, optional
        Where the folds run; default: ``nuisance.n_jobs`` local processes.

    Attributes
    ----------
    seconds : dict
        Wall time spent fitting each nuisance family (``continuous``, ``binary:<rule>``,
        ``iv``) summed over ``cv`` values.
    """

    def __init__(
        self,
        x: np.ndarray,
        xw: np.ndarray,
        y: np.ndarray,
        t: np.ndarray,
        clusters: np.ndarray,
        config: NuisanceConfig,
        random_state: int,
        z: np.ndarray | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.x, self.xw, self.y, self.t, self.z = x, xw, y, t, z
        self.backend = backend if backend is not None else LocalBackend(config.jobs(len(y)))
        self.clusters = clusters
        self.config = config
        self.random_state = random_state
        self.seconds: dict[str, float] = {}
        self._folds: dict[int, Folds] = {}
        self._continuous: dict[int, Nuisances] = {}
        self._binary: dict[tuple[int, str], BinaryNuisances] = {}
        self._iv: dict[int, IVNuisances] = {}

    def _regressor(self) -> BaseEstimator:
        return make_regressor(self.config, self.random_state)

    def _timed(self, key: str, started: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started

    def folds(self, cv: int) -> Folds:
        """Cluster-grouped folds for ``cv`` (same seed, same folds)."""
        if cv not in self._folds:
            self._folds[cv] = grouped_folds(self.clusters, cv, self.random_state)
        return self._folds[cv]

    def first_t_hat(self) -> np.ndarray | None:
        """Cross-fitted E[T | X, W] of the first continuous nuisance set fitted, if any."""
        return next(iter(self._continuous.values())).t_hat if self._continuous else None

    def continuous(self, cv: int) -> Nuisances:
        """Outcome and treatment regressions and the residual variance, for ``cv`` folds."""
        if cv not in self._continuous:
            started = time.perf_counter()
            self._continuous[cv] = fit_nuisances(
                self.x, self.xw, self.y, self.t, self.folds(cv), self._regressor,
                backend=self.backend, groups=self.clusters,
            )  # fmt: skip
            self._timed("continuous", started)
        return self._continuous[cv]

    def binary(self, cv: int, rule: str) -> BinaryNuisances:
        """Propensity and arm-specific outcome regressions of the binarised treatment."""
        key = (cv, rule)
        if key not in self._binary:
            started = time.perf_counter()
            folds = self.folds(cv)
            d, threshold = binarise(self.t, rule)
            propensity = crossfit_predict(
                make_classifier(self.config, self.random_state),
                self.xw,
                d,
                folds,
                proba=True,
                backend=self.backend,
                groups=self.clusters,
            )
            ones = np.ones((len(d), 1))
            mu = crossfit_predict(
                self._regressor(),
                np.hstack([self.xw, d[:, None]]),
                self.y,
                folds,
                backend=self.backend,
                groups=self.clusters,
                predict_at=[np.hstack([self.xw, 0 * ones]), np.hstack([self.xw, ones])],
            )
            self._binary[key] = BinaryNuisances(
                folds=folds, rule=rule, threshold=threshold, d=d, propensity=propensity, mu=mu
            )
            self._timed(f"binary:{rule}", started)
        return self._binary[key]

    def iv(self, cv: int) -> IVNuisances:
        """Instrument regressions and the compliance function, for ``cv`` folds.

        Raises
        ------
        ValueError
            If the run has no instrument.
        """
        if self.z is None:
            raise ValueError(
                "instrumental-variable estimators need an instrument: set `roles.instrument`"
            )
        if cv not in self._iv:
            base = self.continuous(cv)
            started = time.perf_counter()
            folds = base.folds
            z_hat = crossfit_predict(
                self._regressor(), self.xw, self.z, folds, backend=self.backend,
                groups=self.clusters,
            )  # fmt: skip
            t_xwz_hat = crossfit_predict(
                self._regressor(), np.hstack([self.xw, self.z[:, None]]), self.t, folds,
                backend=self.backend, groups=self.clusters,
            )  # fmt: skip
            z_res = self.z - z_hat
            product = base.t_res * z_res
            # a product of two residuals is too noisy a target for boosted trees: a
            # ridge regression keeps c(x) smooth, so the score's weights 1/c(x) stay stable
            linear = RidgeCV(alphas=np.logspace(-3, 3, 13))
            compliance = crossfit_predict(linear, self.x, product, folds, backend=self.backend)
            mean = float(np.mean(product))
            if mean == 0:
                raise ValueError(
                    "the instrument is uncorrelated with the treatment after residualising "
                    "on the controls; it cannot identify the effect"
                )
            floor = 0.25 * abs(mean)
            signed = np.sign(mean) * compliance
            compliance = np.sign(mean) * np.maximum(signed, floor)
            self._iv[cv] = IVNuisances(
                folds=folds, z_hat=z_hat, z_res=z_res, t_xwz_hat=t_xwz_hat, compliance=compliance
            )
            self._timed("iv", started)
        return self._iv[cv]

    @property
    def total_seconds(self) -> float:
        """Wall time of every nuisance fitted so far."""
        return float(sum(self.seconds.values()))
