"""Re-estimating the effect on modified data, in parallel.

Every refuter turns the run's :class:`~vaer.data.design.AnalysisData` into one or more
modified copies; :func:`refit_many` re-estimates each with one (cheap) estimator through
:func:`vaer.estimators.fit_estimators`, nuisances included, so each refit is a complete
re-analysis with the run's seed (and therefore the same cluster-grouped folds). The refits
are independent tasks sent to the run's compute backend (:mod:`vaer.compute`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from vaer.compute import Backend, LocalBackend
from vaer.config.models import EstimatorSpec, LinearDMLSpec, NuisanceConfig, estimator_label
from vaer.data.design import AnalysisData
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import AteEstimate

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PlrSensitivity:
    """econml's omitted-variable sensitivity elements of a fitted DML model.

    For residuals :math:`\\tilde Y, \\tilde T`: ``theta`` is the partially linear
    coefficient :math:`E[\\tilde Y\\tilde T]/E[\\tilde T^2]`, ``sigma2`` the outcome's
    residual variance :math:`E[(\\tilde Y - \\theta\\tilde T)^2]`, ``nu2`` the second moment
    of the Riesz representer :math:`1/E[\\tilde T^2]`, and ``cov`` the (iid) covariance of
    the three estimates.
    """

    theta: float
    sigma2: float
    nu2: float
    cov: np.ndarray


@dataclass(frozen=True)
class Refit:
    """The effect re-estimated on one modified data set.

    Attributes
    ----------
    ate : AteEstimate
        Mean of the refit's doubly robust scores with its cluster-robust SE.
    sensitivity : PlrSensitivity or None
    scores : ndarray of shape (n,)
        The refit's doubly robust scores, one per unit of its data set (refuters compare
        them with the run's scores of the same units to get the SE of a difference).
    """

    ate: AteEstimate
    sensitivity: PlrSensitivity | None
    scores: np.ndarray = field(compare=False, repr=False)


def plr_sensitivity(model: Any) -> PlrSensitivity | None:
    """The sensitivity elements econml stored when fitting ``model`` (None if it has none).

    econml 0.17 keeps them on the final stage of ``LinearDML`` and ``CausalForestDML``; the
    models of :mod:`vaer.estimators` are fitted on cross-fitted residuals with zero nuisance
    models, so the residuals econml sees are the run's own.
    """
    final = getattr(getattr(model, "_ortho_learner_model_final", None), "_model_final", None)
    params = getattr(final, "sensitivity_params", None)
    if params is None:
        return None
    return PlrSensitivity(
        theta=float(np.ravel(params.theta)[0]),
        sigma2=float(np.ravel(params.sigma)[0]),
        nu2=float(np.ravel(params.nu)[0]),
        cov=np.asarray(params.cov, dtype=np.float64).reshape(3, 3),
    )


def parallel_map(func: Callable[[T], R], items: Sequence[T], n_jobs: int) -> list[R]:
    """``[func(item) for item in items]`` on a local backend with ``n_jobs`` processes.

    Results are in the order of ``items`` and do not depend on ``n_jobs``.
    """
    return LocalBackend(n_jobs=n_jobs).map(func, items)


def refuter_spec(specs: Sequence[EstimatorSpec], label: str | None) -> EstimatorSpec:
    """The estimator refuters refit: the one named ``label``, else the run's first
    ``linear_dml``, else a default ``linear_dml`` with the first estimator's ``cv``.

    Raises
    ------
    ValueError
        If ``label`` names no estimator in ``specs``.
    """
    if label is not None:
        for spec in specs:
            if estimator_label(spec) == label:
                return spec
        raise ValueError(
            f"`robustness.estimator` is '{label}', which is not an estimator of this run; "
            f"use one of {[estimator_label(s) for s in specs]}"
        )
    for spec in specs:
        if spec.kind == "linear_dml":
            return spec
    cv = specs[0].params.cv if specs else 5
    return LinearDMLSpec.model_validate({"kind": "linear_dml", "params": {"cv": cv}})


@dataclass(frozen=True)
class _RefitTask:
    spec: EstimatorSpec
    nuisance: NuisanceConfig
    random_state: int

    def __call__(self, data: AnalysisData) -> Refit:
        result = fit_estimators(data, [self.spec], self.nuisance, random_state=self.random_state)
        fitted = result.estimators[0]
        return Refit(
            ate=fitted.ate, sensitivity=plr_sensitivity(fitted.model), scores=fitted.scores
        )


def refit_many(
    datasets: Sequence[AnalysisData],
    spec: EstimatorSpec,
    nuisance: NuisanceConfig,
    *,
    random_state: int,
    backend: Backend | None = None,
) -> list[Refit]:
    """Re-estimate the effect on each data set (nuisances and final stage).

    Parameters
    ----------
    datasets : sequence of AnalysisData
    spec : EstimatorSpec
        The estimator to refit (a cheap one: refuters run it many times).
    nuisance : NuisanceConfig
    random_state : int
        Seed of every refit (the run's seed, so folds match the main run).
    backend : vaer.compute.Backend, optional
        Where the refits run (default: in this process).

    Returns
    -------
    list of Refit, in the order of ``datasets``.
    """
    runner = backend if backend is not None else LocalBackend(n_jobs=1)
    return runner.map(_RefitTask(spec, nuisance, random_state), list(datasets))
