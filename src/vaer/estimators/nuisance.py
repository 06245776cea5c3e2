"""Cross-fitting of the nuisance functions, once per run, shared by every estimator.

Folds never split a cluster. Each fold's model is an independent clone with its own
fixed ``random_state`` and one thread, and predictions are written back by index, so
the numbers do not depend on ``n_jobs``.

Three families of nuisances, each computed on first use and then cached per number of
folds ``cv`` (and per binarisation rule):

* continuous treatment: ``m(x, w) = E[Y | X, W]``, ``e(x, w) = E[T | X, W]`` and
  ``s2(x) = E[(T - e)^2 | X]``. By default (``nuisance.outcome_model: iv_type``) the
  outcome model is built as ``m = g + theta e`` from a regression ``g`` of
  ``Y - theta T`` on ``(X, W)`` (:func:`fit_nuisances`);
* binarised treatment ``D``: the propensity ``p(x, w) = P(D = 1 | X, W)`` and the outcome
  regressions ``mu_d(x, w) = E[Y | D = d, X, W]`` (one model on ``[X, W, D]``, as
  econml's DR learner fits it);
* instrument ``Z``: ``r(x, w) = E[Z | X, W]``, ``E[T | X, W, Z]`` and the compliance
  ``c(x) = E[(T - e)(Z - r) | X]`` (a cross-fitted ridge regression: boosted trees on a
  product of residuals are noisy, and ``1 / c(x)`` weights the IV scores). The two
  LightGBM instrument models stop early on held-out clusters at any size
  (:meth:`NuisanceCache.iv`).

Why. With few clusters and city-level variation in ``T``, ``Z`` and ``Y``, a flexible
learner fitted on the firms of the training cities partly memorises those cities' shocks,
and its prediction at a held-out city copies the shocks of the training cities that look
like it. The treatment, instrument and outcome models copy the *same* cities, so their
errors are correlated and the products of errors in the orthogonal scores do not vanish:
on tables of 30,000 firms in 150 cities (4 draws of a held-out design, 3 of another;
LightGBM grows 300 trees there, above ``early_stopping_max_rows``) the mean of
``(e - e_hat)(r - r_hat)`` was 0.06-0.10 against a first-stage covariance of 0.20-0.25.
Early stopping on held-out clusters
(:class:`~vaer.estimators.learners.EarlyStoppingRegressor` with ``groups``) chooses how
much a model may fit by what carries over to new cities, a cluster-blocked validation
(Roberts et al., 2017, *Ecography* 40(8)); with it, on the 3 draws, the product fell to
0.005-0.007 (sd of ``r - r_hat`` 0.07-0.10 instead of 0.35). The instrument models use
it at any size; the shared models follow ``nuisance.early_stopping``.

With few clusters the products' realised values also vary from one random split of the
cities to another, which no SE computed from one split sees: on vaer's synthetic table
(3,000 firms, 40 cities, seeds 0-59) the spread of the ATE was 1.28 times its SE.
``nuisance.crossfit_repeats`` averages the out-of-fold predictions over 4 splits below
100 clusters (:meth:`NuisanceCache.splits`): the spread fell by 19% and was 1.08 times
the SE. The IV-type outcome models replace the product ``(e - e_hat)(m - m_hat - tau
(e - e_hat))``, in which the outcome model copies ``tau`` times the treatment's city
shocks less faithfully than the treatment model does, by ``(e - e_hat)(g - g_hat)`` plus
a term in ``tau(x) - theta``, which a preliminary effect linear in the modifiers
(``iv_type_linear``) keeps small when the effect varies across firms.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
from vaer.measures.va_index import binarise

__all__ = [
    "LGBM_DEFAULTS",
    "BinaryNuisances",
    "Folds",
    "IVNuisances",
    "NuisanceCache",
    "Nuisances",
    "ZeroRegressor",
    "averaged_predict",
    "binarise",
    "crossfit_predict",
    "fit_nuisances",
    "fold_ids",
    "grouped_folds",
    "make_classifier",
    "make_regressor",
]

Folds = list[tuple[np.ndarray, np.ndarray]]

AUTO_REPEATS = 4
"""Cross-fitting splits averaged with ``crossfit_repeats: auto`` and few clusters."""
AUTO_REPEATS_MAX_CLUSTERS = 100
"""``crossfit_repeats: auto`` repeats the splits below this many clusters."""


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
    theta : float or None
        The preliminary effect of the ``iv_type`` outcome model, or the mean of the
        ``iv_type_linear`` one's over the units (None for ``partialling_out``).
    """

    folds: Folds
    y_hat: np.ndarray
    t_hat: np.ndarray
    y_res: np.ndarray
    t_res: np.ndarray
    t_res_var: np.ndarray
    theta: float | None = None


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


OUTCOME_MODELS = ("iv_type", "iv_type_linear", "iv_type_auto", "partialling_out")


def averaged_predict(
    make_model: Callable[[], BaseEstimator],
    features: pd.DataFrame | np.ndarray,
    target: np.ndarray,
    splits: Sequence[Folds],
    n_jobs: int = 1,
    *,
    backend: Backend | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold predictions averaged over several cross-fitting splits.

    Each split is a full set of cluster-grouped folds; every unit's prediction in every
    split comes from a model that never saw its cluster, so their mean does not either
    (repeated cross-fitting; Chernozhukov et al., 2018, *Econometrics J.* 21(1),
    section 3.4, aggregate over repeated splits to remove the dependence of the estimate
    on one random split).

    Parameters
    ----------
    make_model : callable
        Returns an unfitted model (one per split).
    features : array-like of shape (n, p)
    target : ndarray of shape (n,)
    splits : sequence of fold lists (at least one)
    n_jobs, backend, groups
        As in :func:`crossfit_predict`.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        If ``splits`` is empty.
    """
    if not splits:
        raise ValueError("`splits` must hold at least one set of folds")
    total = np.zeros(len(target), dtype=np.float64)
    for folds in splits:
        total += crossfit_predict(
            make_model(), features, target, folds, n_jobs, backend=backend, groups=groups
        )
    return total / len(splits)


def preliminary_effect(x: np.ndarray | None, y_res: np.ndarray, t_res: np.ndarray) -> np.ndarray:
    """The preliminary effect of the IV-type outcome model, from partialling-out residuals.

    Least squares of ``y_res`` on ``t_res * (1, x)``: with ``x`` None the constant
    :math:`\\sum \\tilde T \\tilde Y / \\sum \\tilde T^2` (DoubleML's preliminary
    ``theta``), otherwise the linear effect :math:`b_0 + x^\\top b` (the R-learner's
    linear final stage; minimum-norm solution when the modifiers are collinear).

    Parameters
    ----------
    x : ndarray of shape (n, p) or None
        Modifiers.
    y_res, t_res : ndarray of shape (n,)
        Cross-fitted outcome and treatment residuals.

    Returns
    -------
    ndarray of shape (n,)
        The preliminary effect at each unit.
    """
    if x is None:
        return np.full(len(t_res), float(np.sum(t_res * y_res)) / float(np.sum(t_res**2)))
    basis = np.column_stack([np.ones(len(t_res)), x])
    return basis @ _effect_coefficients(basis, y_res, t_res)


def _effect_coefficients(basis: np.ndarray, y_res: np.ndarray, t_res: np.ndarray) -> np.ndarray:
    """Least squares of ``y_res`` on ``t_res * basis`` (minimum norm if collinear)."""
    return np.linalg.lstsq(basis * t_res[:, None], y_res, rcond=None)[0]


def linear_effect_fits_better(
    x: np.ndarray, y_res: np.ndarray, t_res: np.ndarray, folds: Folds
) -> bool:
    """Whether an effect linear in ``x`` predicts held-out residuals better than a constant.

    For each fold, both effects are fitted by least squares on the other folds (as in
    :func:`preliminary_effect`) and scored on the fold by the R-learner loss
    :math:`\\sum (\\tilde Y - \\theta(x) \\tilde T)^2` (Nie and Wager, 2021, *Biometrika*
    108(2), whose model selection uses this loss); the losses are summed over folds.

    Parameters
    ----------
    x : ndarray of shape (n, p)
        Modifiers.
    y_res, t_res : ndarray of shape (n,)
        Cross-fitted outcome and treatment residuals.
    folds : list of (train, test) index arrays
        Cluster-grouped folds, so that the held-out loss is over unseen clusters.

    Returns
    -------
    bool
    """
    one = np.ones((len(t_res), 1))
    losses = [0.0, 0.0]
    for train, test in folds:
        for k, basis in enumerate((one, np.column_stack([one, x]))):
            coef = _effect_coefficients(basis[train], y_res[train], t_res[train])
            losses[k] += float(np.sum((y_res[test] - (basis[test] @ coef) * t_res[test]) ** 2))
    return losses[1] < losses[0]


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
    outcome_model: str = "iv_type",
    extra_folds: Sequence[Folds] = (),
) -> Nuisances:
    """Cross-fit the outcome, treatment and residual-variance regressions.

    The residual variance ``s2(x) = E[(T - e(X, W))^2 | X = x]`` weights the doubly robust
    scores of a continuous treatment (see :mod:`vaer.estimators.scores`). ``groups`` (the
    cluster of each row) reach the learners that hold out whole clusters to stop early.
    With ``extra_folds`` the outcome and treatment predictions are the means of their
    out-of-fold predictions over ``folds`` and every split in ``extra_folds``
    (:func:`averaged_predict`); ``s2`` is then fitted once, on ``folds``.

    ``outcome_model``:

    ``partialling_out``
        ``m_hat`` is a regression of ``Y`` on ``(X, W)``.
    ``iv_type`` (default)
        ``m_hat = g_hat + theta e_hat``, where ``theta`` is the partialling-out estimate
        :math:`\\sum \\tilde T \\tilde Y / \\sum \\tilde T^2` from the regression above and
        ``g_hat`` a cross-fitted regression of ``Y - theta T`` on ``(X, W)``: the outcome
        side of DoubleML's IV-type score for the partially linear model (Chernozhukov et
        al., 2018, *Econometrics J.* 21(1), section 4.1, ``g`` from a preliminary
        ``theta``). ``m_hat`` still estimates ``E[Y | X, W] = g + tau e``, but the
        scores' product of errors becomes :math:`(e - \\hat e)(g - \\hat g)` plus a term
        in :math:`(\\tau - \\theta)`: ``g_hat`` is fitted to a target without
        ``tau T``, so it does not copy the treatment's city shocks, while a direct
        regression of ``Y`` copies ``tau`` times them less faithfully than ``e_hat``
        does. Bias of the constant-effect estimate, in SEs, partialling-out -> iv_type:
        -0.18 -> +0.05 (a table with city shocks in ``T`` and ``Y``, 3,000 firms in 40
        cities, 100 draws), -0.48 -> -0.20 (the same table with 10,000 firms in 150
        cities and LightGBM without early stopping, 40 draws), -0.15 -> +0.15 (vaer's
        synthetic table, 3,000 firms in 40 cities, seeds 0-99: no gain there). It costs
        one more cross-fitted regression.
    ``iv_type_linear``
        as ``iv_type`` with a heterogeneous preliminary effect: ``theta(x) = b_0 +
        x'b`` from the least squares of the partialling-out residuals
        :math:`\\tilde Y` on :math:`\\tilde T (1, x)` (:func:`preliminary_effect`), and
        ``m_hat = g_hat + theta(x) e_hat`` with ``g_hat`` a regression of
        ``Y - theta(X) T``. With a constant ``theta`` the scores keep the term
        :math:`(\\tau(x) - \\theta)\\,e\\,(e - \\hat e)`, which averages to zero only when
        the effect is constant: ``e_hat`` shrinks the city-level VA towards its mean, so
        :math:`e (e - \\hat e)` is larger where VA is high and weights the firms
        unevenly. ``theta(x)`` leaves :math:`(\\tau(x) - \\theta(x))` in its place. Tuning
        designs (vaer's panel through ``data.mode: panel``, 4,000 firms drawn, seeds
        below 1000, linear_dml's ATE, bias in SEs, ``iv_type`` -> ``iv_type_linear``):
        150 cities with heterogeneous effects +0.10 -> -0.06 over 80 seeds (paired
        shift 0.15, MC SE 0.06; with the true ``tau(x)`` as the preliminary effect
        -0.06, within 0.003 of the linear one); 40 cities +0.31 -> +0.14 (dmliv +0.35
        -> +0.07; spread / SE 1.38 -> 1.18 and 1.16 -> 1.08) over 40 seeds; 150
        cities with a constant effect -0.28 -> -0.31 (paired shift 0.02, MC SE 0.05)
        over 40 seeds. Not the default: where the linear fit is noisy (few units, many
        modifiers, extreme propensities) its noise enters ``m_hat`` through
        ``theta(x) e_hat``. On the accuracy designs held apart from this choice
        (``benchmarks/outcome_model_accuracy.py``, 20 draws each, paired): IHDP's ATE
        moved by -0.28 (SE 0.14; 25 modifiers, 747 units) and Nie-Wager C's CATE RMSE
        rose by 0.030 (SE 0.023), with 3 draws at twice ``iv_type``'s RMSE (the auto
        linear base follows the noisy fit; 2 draws went the other way, by 1.5-1.9
        times); the other designs moved by less than 0.006. Choosing between the
        constant and the linear effect by their out-of-fold R-loss did not avoid the
        Nie-Wager C draws (scratch check, 4 draws): the partialling-out residuals carry
        the first stages' errors, which the linear fit absorbs.

    ``iv_type_auto``
        ``iv_type`` first; then, if an effect linear in the modifiers predicts the
        held-out folds' ``iv_type`` residuals better than the constant
        (:func:`linear_effect_fits_better`), ``g_hat`` is refitted on
        ``Y - theta(X) T`` with ``theta(x)`` the least squares of those residuals
        (:func:`preliminary_effect`), and ``m_hat = g_hat + theta(x) e_hat``. The
        ``iv_type`` residuals carry ``g_hat``'s errors rather than those of a direct
        regression of ``Y``, so the choice and the linear fit see less of the first
        stages' errors than ``iv_type_linear``'s. One more cross-fitted regression when
        the linear effect is chosen. On vaer's panel (150 cities, heterogeneous
        effect, tuning seeds 0-39, scratch) it chose the linear effect on every draw: the
        ATE's spread fell from 1.01 to 0.83 times ``iv_type``'s mean SE and the forest's
        CATE RMSE from 0.106 to 0.090. On the accuracy designs
        (``benchmarks/outcome_model_accuracy.py``, section
        ``outcome_model_accuracy_iv_type_auto``) it kept the constant on 19 of 20
        Nie-Wager C draws (no blow-ups) and the CATE RMSE was equal or lower on every
        design, but IHDP's ATE moved by -0.16 (SE 0.06, 80 draws; bias +0.02 ->
        -0.14), as under ``iv_type_linear``: not the default until that is understood.

    Returns
    -------
    Nuisances

    Raises
    ------
    ValueError
        If ``outcome_model`` is unknown or the treatment has no residual variation.
    """
    if outcome_model not in OUTCOME_MODELS:
        raise ValueError(
            f"`outcome_model` must be one of {', '.join(OUTCOME_MODELS)}; got {outcome_model!r}"
        )
    splits = [folds, *extra_folds]

    def fit(features: pd.DataFrame | np.ndarray, target: np.ndarray) -> np.ndarray:
        return averaged_predict(
            make_model, features, target, splits, n_jobs=n_jobs, backend=backend, groups=groups
        )

    y_hat = fit(xw, y)
    t_hat = fit(xw, t)
    t_res = t - t_hat
    theta = None
    if outcome_model != "partialling_out":
        if not float(np.sum(t_res**2)) > 1e-12 * float(np.sum((t - np.mean(t)) ** 2)):
            raise ValueError("the treatment residuals are all zero: VA has no variation left")

        def iv_type_outcome(effect: np.ndarray) -> np.ndarray:
            """``g_hat + effect * e_hat``, ``g_hat`` a regression of ``Y - effect T``."""
            return fit(xw, y - effect * t) + effect * t_hat

        modifiers = np.asarray(x, dtype=np.float64)
        linear = outcome_model == "iv_type_linear"
        effect = preliminary_effect(modifiers if linear else None, y - y_hat, t_res)
        y_hat = iv_type_outcome(effect)
        if outcome_model == "iv_type_auto":
            y_res = y - y_hat
            if linear_effect_fits_better(modifiers, y_res, t_res, folds):
                effect = preliminary_effect(modifiers, y_res, t_res)
                y_hat = iv_type_outcome(effect)
        theta = float(np.mean(effect))
    t_res_var = crossfit_predict(
        make_model(), x, t_res**2, folds, n_jobs=n_jobs, backend=backend, groups=groups
    )
    floor = 0.05 * float(np.mean(t_res**2))
    return Nuisances(
        folds=folds,
        y_hat=y_hat,
        t_hat=t_hat,
        y_res=y - y_hat,
        t_res=t_res,
        t_res_var=np.maximum(t_res_var, floor),
        theta=theta,
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
        self._source = self

    def with_modifiers(self, columns: np.ndarray) -> NuisanceCache:
        """This cache with only the modifier ``columns`` in :attr:`x`, for a final stage
        fitted on a subset of the modifiers.

        The nuisances are those of this cache (fitted on every modifier and control; the
        residual variance and the compliance function use every modifier): the view fits
        none itself but asks this cache for them, so they are the same objects whichever
        cache fitted them first.

        Parameters
        ----------
        columns : ndarray of int
            Modifier columns to keep, in this cache's order.

        Returns
        -------
        NuisanceCache
        """
        view = copy.copy(self)
        view.x = self.x[:, np.asarray(columns, dtype=np.int64)]
        view._source = self._source
        return view

    def _regressor(self) -> BaseEstimator:
        return make_regressor(self.config, self.random_state)

    def _timed(self, key: str, started: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started

    def folds(self, cv: int) -> Folds:
        """Cluster-grouped folds for ``cv`` (same seed, same folds)."""
        if cv not in self._folds:
            self._folds[cv] = grouped_folds(self.clusters, cv, self.random_state)
        return self._folds[cv]

    @property
    def repeats(self) -> int:
        """Cross-fitting splits whose predictions the continuous and IV nuisances average
        (``nuisance.crossfit_repeats``; ``auto``: :data:`AUTO_REPEATS` below
        :data:`AUTO_REPEATS_MAX_CLUSTERS` clusters, else 1)."""
        setting = self.config.crossfit_repeats
        if setting != "auto":
            return int(setting)
        few = len(np.unique(self.clusters)) < AUTO_REPEATS_MAX_CLUSTERS
        return AUTO_REPEATS if few else 1

    def splits(self, cv: int) -> list[Folds]:
        """:meth:`folds` then ``repeats - 1`` further splits with seeds
        ``random_state + 1, ...``."""
        extra = [
            grouped_folds(self.clusters, cv, self.random_state + k) for k in range(1, self.repeats)
        ]
        return [self.folds(cv), *extra]

    def first_t_hat(self) -> np.ndarray | None:
        """Cross-fitted E[T | X, W] of the first continuous nuisance set fitted, if any."""
        return next(iter(self._continuous.values())).t_hat if self._continuous else None

    def continuous(self, cv: int) -> Nuisances:
        """Outcome and treatment regressions and the residual variance, for ``cv`` folds."""
        if self._source is not self:  # a view of fewer modifiers: the full cache's
            return self._source.continuous(cv)
        if cv not in self._continuous:
            started = time.perf_counter()
            splits = self.splits(cv)
            self._continuous[cv] = fit_nuisances(
                self.x, self.xw, self.y, self.t, splits[0], self._regressor,
                backend=self.backend, groups=self.clusters,
                outcome_model=self.config.outcome_model, extra_folds=splits[1:],
            )  # fmt: skip
            self._timed("continuous", started)
        return self._continuous[cv]

    def binary(self, cv: int, rule: str) -> BinaryNuisances:
        """Propensity and arm-specific outcome regressions of the binarised treatment."""
        if self._source is not self:  # a view of fewer modifiers: the full cache's
            return self._source.binary(cv, rule)
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

    def _iv_regressor(self) -> BaseEstimator:
        """The learner of the instrument models: as configured, but a LightGBM model with
        ``early_stopping: auto`` stops early on held-out clusters at any size.

        Above ``early_stopping_max_rows`` training rows ``auto`` grows a fixed number of
        trees, which memorise a city-level instrument (a pilot) from the firms of the
        training cities; the treatment and outcome models memorise the same cities, and
        the product of their errors biases the IV scores (module docstring). On a table
        with 10,000 firms in 150 cities and no early stopping, the IV estimate's spread
        was 1.31 times its SE (coverage 0.80 in 40 draws); with early-stopped instrument
        models 1.04 (0.95).
        """
        config = self.config
        if config.model == "lightgbm" and config.early_stopping == "auto":
            config = config.model_copy(update={"early_stopping": True})
        return make_regressor(config, self.random_state)

    def iv(self, cv: int) -> IVNuisances:
        """Instrument regressions and the compliance function, for ``cv`` folds.

        Raises
        ------
        ValueError
            If the run has no instrument.
        """
        if self._source is not self:  # a view of fewer modifiers: the full cache's
            return self._source.iv(cv)
        if self.z is None:
            raise ValueError(
                "instrumental-variable estimators need an instrument: set `roles.instrument`"
            )
        if cv not in self._iv:
            base = self.continuous(cv)
            started = time.perf_counter()
            folds = base.folds
            splits = self.splits(cv)
            z_hat = averaged_predict(
                self._iv_regressor, self.xw, self.z, splits, backend=self.backend,
                groups=self.clusters,
            )  # fmt: skip
            t_xwz_hat = averaged_predict(
                self._iv_regressor, np.hstack([self.xw, self.z[:, None]]), self.t, splits,
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
