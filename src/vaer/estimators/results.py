"""Frozen result objects of the estimation stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

ATE_COLUMNS = ["estimator", "estimand", "estimate", "se", "ci_low", "ci_high", "n", "se_type"]
CATE_COLUMNS = ["estimator", "unit", "tau_hat", "se", "estimand"]


@dataclass(frozen=True)
class AteEstimate:
    """One average effect with its SE and 95% CI; ``se_type`` says how the SE was computed."""

    estimator: str
    estimand: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    se_type: str

    def covers(self, value: float) -> bool:
        """Whether the 95% CI contains ``value``."""
        return self.ci_low <= value <= self.ci_high


@dataclass(frozen=True)
class EstimatorResult:
    """One fitted estimator: its effects and the fitted econml model.

    Attributes
    ----------
    label, kind : str
        The estimator's name in outputs, and its registry kind.
    ate : AteEstimate
        Mean of the doubly robust scores, cluster-robust SE.
    ate_econml : AteEstimate
        econml's own ATE interval, for comparison (ignores clustering).
    tau_hat : ndarray of shape (n,)
        Out-of-sample effect per unit (out-of-bag or cross-fitted).
    tau_se : ndarray of shape (n,)
        econml's standard error of the effect per unit.
    scores : ndarray of shape (n,)
        Doubly robust scores.
    fit_seconds : float
        Seconds of this estimator's own fitting (shared nuisances not included).
    model : object
        The fitted econml estimator (not compared, not printed). Its nuisances are
        the run's shared ones: DML kinds were fitted on residuals, DR-learner and IV kinds
        with ``W`` = row ids; use ``effect(X)`` / ``const_marginal_effect(X)`` on new
        ``X`` (the final stage), not its nuisance models.
    estimand : str
        What ``ate`` and ``tau_hat`` estimate.
    family : str
        Nuisance family: ``continuous``, ``binary`` or ``iv``.
    """

    label: str
    kind: str
    ate: AteEstimate
    ate_econml: AteEstimate
    tau_hat: np.ndarray
    tau_se: np.ndarray
    scores: np.ndarray
    fit_seconds: float
    model: Any = field(compare=False, repr=False)
    estimand: str = ""
    family: str = "continuous"


@dataclass(frozen=True)
class EstimationResult:
    """All estimators of a run, over the same units."""

    units: np.ndarray
    estimators: tuple[EstimatorResult, ...]
    nuisance_seconds: float
    nuisance_seconds_by_family: dict[str, float] = field(default_factory=dict)
    t_hat: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Cross-fitted E[T | X, W] per unit (first nuisance fold set), for overlap checks."""

    def to_frame(self) -> pd.DataFrame:
        """The ATE table: one row per estimator and SE type (``tables/ate.csv``)."""
        rows = [
            vars(est).copy()
            for result in self.estimators
            for est in (result.ate, result.ate_econml)
        ]
        return pd.DataFrame(rows, columns=ATE_COLUMNS)

    def cate_frame(self) -> pd.DataFrame:
        """Per-unit effects in long form (``tables/cate.csv``)."""
        parts = [
            pd.DataFrame(
                {
                    "estimator": result.label,
                    "unit": self.units,
                    "tau_hat": result.tau_hat,
                    "se": result.tau_se,
                    "estimand": result.estimand,
                }
            )
            for result in self.estimators
        ]
        return pd.concat(parts, ignore_index=True)[CATE_COLUMNS]

    def get(self, label: str) -> EstimatorResult:
        """The result of the estimator named ``label``.

        Raises
        ------
        KeyError
            If no estimator has that label.
        """
        for result in self.estimators:
            if result.label == label:
                return result
        raise KeyError(f"no estimator named '{label}'; have {[r.label for r in self.estimators]}")
