r"""ATT(g, t) with machine-learned, cross-fitted nuisances (double/debiased ML DiD).

Each cell of :func:`vaer.did.att_gt` is a two-period problem on the units of cohort
``g`` (``D = 1``) and of its comparison group (``D = 0``) observed in the base period and
``t``. :func:`dml_att_gt` solves it with the doubly robust DiD score of Sant'Anna and Zhao
(2020) in the form Chang (2020) shows to be Neyman orthogonal, with the propensity
:math:`p(X) = P(D = 1 \mid X)` and the comparison units' outcome change
:math:`m(X) = E[\Delta Y \mid X, D = 0]` learnt by any scikit-learn estimator (LightGBM in
the ``did`` stage) and cross-fitted over folds of whole clusters:

.. math::

    \widehat{ATT} = \frac{\sum_i w^1_i (\Delta Y_i - \hat m(X_i))}{\sum_i w^1_i}
                  - \frac{\sum_i w^0_i (\Delta Y_i - \hat m(X_i))}{\sum_i w^0_i},
    \qquad w^1_i = D_i,\quad w^0_i = \frac{(1 - D_i)\,\hat p(X_i)}{1 - \hat p(X_i)},

the normalised ("Hajek") weights of R ``DRDID::drdid_panel`` and of DoubleML's
``DoubleMLDID(in_sample_normalization=True)``. Orthogonality makes the first-order effect
of the nuisances' errors vanish, so with cross-fitting the influence function is the
score itself,
:math:`\psi_i = w^1_i(\Delta Y_i - \hat m_i - \widehat{ATT}_1)/\bar w^1
- w^0_i(\Delta Y_i - \hat m_i - \widehat{ATT}_0)/\bar w^0`, and the cells' inference,
aggregations, bands and pre-trend test are those of :func:`vaer.did.att_gt` (the
influence columns are clustered in the same small-cluster mode).

Folds hold out whole clusters (cities): the pilots vary by city, and a learner trained on
a firm's city can learn the city's shocks in both the propensity and the outcome change,
whose errors would then be correlated (the product-of-errors term orthogonality needs to
be small; see :mod:`vaer.estimators.nuisance`). The cohort's cities and the comparison
cities are each dealt over the folds (:func:`vaer.did.folds.deal_city_folds`), so a
cohort of two or more cities has cities in every training set. Comparison units with
:math:`\hat p \geq` ``trim_level`` get zero weight, as in R ``did``.

With ``n_folds=1`` the nuisances are fitted on the whole cell sample (no cross-fitting):
an unpenalised logit and least squares then give exactly ``att_gt(method="dr")``'s point
estimates (its influence functions add the linear models' estimation terms; the two SEs
differ by a term of smaller order).

References
----------
Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust difference-in-differences
estimators", Journal of Econometrics 219(1), 101-122.
Chang, N.-C. (2020), "Double/debiased machine learning for difference-in-differences
models", The Econometrics Journal 23(2), 177-191.
Chernozhukov, V. et al. (2018), "Double/debiased machine learning for treatment and
structural parameters", The Econometrics Journal 21(1), C1-C68.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from vaer.compute import Backend
from vaer.did.att_gt import DEFAULT_OPTIONS, ATTGTResult, CellOptions, checked_panel, fit_cells
from vaer.did.drdid import _PS_CLIP, EstimationError, TwoPeriodFit
from vaer.did.folds import deal_city_folds
from vaer.did.panel import PanelColumns
from vaer.estimators.nuisance import Folds, crossfit_predict

METHOD = "dml"
"""The ``method`` of a :func:`dml_att_gt` result."""


def _folds(clusters: np.ndarray, d: np.ndarray, n_folds: int, random_state: int) -> Folds:
    """Folds of whole clusters of one cell sample, each arm's clusters dealt over the folds
    (:func:`vaer.did.folds.deal_city_folds`), or the whole sample as its own training set."""
    if n_folds == 1:
        every = np.arange(len(clusters))
        return [(every, every)]
    if len(np.unique(clusters)) < n_folds:
        raise EstimationError(
            f"cross-fitting over {n_folds} folds of clusters needs >= {n_folds} clusters in "
            f"the cell's sample; it has {len(np.unique(clusters))} (lower `n_folds`)"
        )
    codes = deal_city_folds(clusters, d.astype(np.int64), random_state, n_folds)
    return [(np.flatnonzero(codes != k), np.flatnonzero(codes == k)) for k in range(n_folds)]


@dataclass(frozen=True, eq=False)
class CrossFitting:
    """How the nuisances of a cell sample are learnt and cross-fitted.

    Attributes
    ----------
    propensity_model, outcome_model : sklearn estimators
        Classifier of ``d`` (``predict_proba``) and regressor of each outcome change on
        the comparison units (cloned per fold; models whose ``fit`` takes ``groups`` get
        the clusters, e.g. vaer's early-stopping LightGBM).
    n_folds : int
        Folds of clusters (>= 2), or 1 to fit on the whole sample.
    random_state : int
        Seed of the fold assignment.

    Raises
    ------
    ValueError
        If ``n_folds < 1``.
    """

    propensity_model: BaseEstimator
    outcome_model: BaseEstimator
    n_folds: int = 5
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.n_folds < 1:
            raise ValueError(f"`n_folds` must be >= 1 (1 = no cross-fitting); got {self.n_folds}")


@dataclass(frozen=True)
class CellNuisances:
    """Cross-fitted nuisances of one cell sample.

    Attributes
    ----------
    p : numpy.ndarray
        ``(n,)`` out-of-fold propensity ``P(D = 1 | X)``, clipped away from 0 and 1.
    fitted : numpy.ndarray
        ``(n, m)`` out-of-fold predictions of each outcome-change column from the
        comparison units' model, ``E[dY | X, D = 0]``.
    """

    p: np.ndarray
    fitted: np.ndarray


def crossfit_nuisances(
    delta_y: np.ndarray,
    d: np.ndarray,
    features: np.ndarray,
    clusters: np.ndarray,
    crossfit: CrossFitting,
    backend: Backend | None = None,
) -> CellNuisances:
    """The propensity and the comparison units' outcome change, cross-fitted over folds of
    whole clusters (arguments as :func:`orthogonal_two_period_att`).

    Raises
    ------
    EstimationError
        If the sample has fewer clusters than folds, or a fold trains on one arm only.
    """
    n = len(d)
    x = features if features.shape[1] else np.zeros((n, 1))
    folds = _folds(clusters, d, crossfit.n_folds, crossfit.random_state)
    if any(d[train].all() or not d[train].any() for train, _ in folds):
        raise EstimationError(
            "a cross-fitting fold trains on one arm only (a cohort or the comparison group "
            "sits in too few cities for the folds); lower `n_folds` (did.dml_folds)"
        )
    p_raw = crossfit_predict(
        crossfit.propensity_model, x, d.astype(np.int64), folds, proba=True, backend=backend,
        groups=clusters,
    )  # fmt: skip
    comparison_folds = [(train[~d[train]], test) for train, test in folds]
    outcome_model = crossfit.outcome_model
    fitted = np.column_stack(
        [
            crossfit_predict(
                outcome_model, x, column, comparison_folds, backend=backend, groups=clusters
            )
            for column in delta_y.T
        ]
    )
    return CellNuisances(np.clip(p_raw, _PS_CLIP, 1.0 - _PS_CLIP), fitted)


def orthogonal_terms(
    delta_y: np.ndarray,
    d: np.ndarray,
    nuisances: CellNuisances,
    *,
    trim_level: float = 0.995,
    subset: np.ndarray | None = None,
) -> TwoPeriodFit:
    """ATT and influence functions of the orthogonal DR-DiD score on fitted nuisances.

    Parameters
    ----------
    delta_y, d : numpy.ndarray
        As :func:`orthogonal_two_period_att`.
    nuisances : CellNuisances
        From :func:`crossfit_nuisances` on the same sample.
    trim_level : float
        Comparison units with a propensity at or above it get zero weight.
    subset : numpy.ndarray, optional
        ``(n,)`` boolean: the ATT of these units only (e.g. one firm-type level), both
        arms' weights multiplied by it and normalised within it
        (:mod:`vaer.did.dml_types`); the influence functions are over all ``n`` units
        (0 outside the subset). Default: every unit.

    Returns
    -------
    TwoPeriodFit
        ``n_trimmed`` counts the trimmed comparison units of the subset.

    Raises
    ------
    EstimationError
        If no comparison weight is left after trimming.
    """
    dt = d.astype(np.float64)
    s = np.ones(len(d)) if subset is None else subset.astype(np.float64)
    p = nuisances.p
    keep = d | (p < trim_level)
    w_t = dt * s
    w_c = keep * (1.0 - dt) * p / (1.0 - p) * s
    if w_c.sum() <= 0:
        raise EstimationError(
            f"every comparison unit has a propensity score >= {trim_level} (no overlap)"
        )
    resid = delta_y - nuisances.fitted
    eta_t = w_t @ resid / w_t.sum()
    eta_c = w_c @ resid / w_c.sum()
    influence = (
        w_t[:, None] * (resid - eta_t) / w_t.mean() - w_c[:, None] * (resid - eta_c) / w_c.mean()
    )
    return TwoPeriodFit(eta_t - eta_c, influence, int(np.sum(~keep & (s > 0))))


def orthogonal_two_period_att(
    delta_y: np.ndarray,
    d: np.ndarray,
    features: np.ndarray,
    clusters: np.ndarray,
    crossfit: CrossFitting,
    *,
    trim_level: float = 0.995,
    backend: Backend | None = None,
) -> TwoPeriodFit:
    """ATT of each outcome-change column on one sample, with cross-fitted nuisances.

    Parameters
    ----------
    delta_y : numpy.ndarray
        ``(n, m)`` outcome changes, one column per cell.
    d : numpy.ndarray
        ``(n,)`` boolean, True for the cohort's units.
    features : numpy.ndarray
        ``(n, k)`` covariates (no intercept column; ``k`` may be 0).
    clusters : numpy.ndarray
        ``(n,)`` cluster codes; folds never split a cluster.
    crossfit : CrossFitting
        The nuisance learners, folds and fold seed.
    trim_level : float
        Comparison units with a propensity at or above it get zero weight.
    backend : vaer.compute.Backend, optional
        Where the folds are fitted (default: in this process).

    Returns
    -------
    TwoPeriodFit

    Raises
    ------
    EstimationError
        If the sample has fewer clusters than folds, or no comparison weight is left
        after trimming.
    """
    nuisances = crossfit_nuisances(delta_y, d, features, clusters, crossfit, backend)
    return orthogonal_terms(delta_y, d, nuisances, trim_level=trim_level)


def dml_att_gt(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    crossfit: CrossFitting,
    covariates: Sequence[str] | pd.DataFrame | None = None,
    options: CellOptions = DEFAULT_OPTIONS,
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ATTGTResult:
    """Every ATT(g, t) with cross-fitted ML nuisances and the orthogonal DR-DiD score.

    Parameters
    ----------
    data, columns, covariates
        As :func:`vaer.did.att_gt` (covariates: the nuisances' features).
    crossfit : CrossFitting
        The nuisance learners, the folds of clusters (1 = no cross-fitting) and the seed
        of the fold assignment (the same folds for every cell sample's clusters).
    options : CellOptions
        As :func:`vaer.did.att_gt` (no bootstrap: bands are Bonferroni-t in the
        small-cluster mode, absent in the asymptotic one).
    backend : vaer.compute.Backend, optional
        Where the cell samples are fitted, one task per sample (cells of a cohort that
        share their units are fitted together), e.g. a Ray cluster
        (:class:`vaer.compute.ray_backend.RayBackend`); a sample's folds are fitted in
        its task. The result does not depend on it (:func:`vaer.did.att_gt.fit_cells`).
    progress : callable, optional
        Called with ``(samples fitted, samples)`` as cell samples finish.

    Returns
    -------
    ATTGTResult
        With ``method == "dml"``; aggregate it with :func:`vaer.did.aggregate`.

    Raises
    ------
    ValueError
        On the inputs :func:`vaer.did.att_gt` refuses, or a cell sample with fewer
        clusters than folds.
    """
    panel = checked_panel(data, columns, covariates, options)
    fit_cell = _OrthogonalCell(panel.covariates[:, 1:], panel.cluster, crossfit, options.trim_level)
    return fit_cells(panel, fit_cell, METHOD, options, backend=backend, progress=progress)


@dataclass(frozen=True)
class _OrthogonalCell:
    """:func:`dml_att_gt`'s cell fitter: :func:`orthogonal_two_period_att` on the sample's
    rows of the panel's features and clusters, its folds fitted in the sample's task."""

    features: np.ndarray
    clusters: np.ndarray
    crossfit: CrossFitting
    trim_level: float

    def __call__(self, delta: np.ndarray, treated: np.ndarray, rows: np.ndarray) -> TwoPeriodFit:
        return orthogonal_two_period_att(
            delta, treated, self.features[rows], self.clusters[rows], self.crossfit,
            trim_level=self.trim_level,
        )  # fmt: skip
