"""Frozen result objects of the estimation stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vaer.config.estimators import AnyParams

ATE_COLUMNS = ["estimator", "estimand", "estimate", "se", "ci_low", "ci_high", "n", "se_type"]
CATE_COLUMNS = [
    "estimator",
    "unit",
    "tau_hat",
    "se",
    "ci_low",
    "ci_high",
    "interval",
    "estimand",
]
INTERVAL_KINDS = ("firm", "none")
"""What a per-unit interval of ``tables/cate.csv`` covers: ``firm``, the unit's own
effect tau(x_i); ``none``, nothing (no interval is written, see the estimator's note)."""


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
    tau_hat : ndarray of shape (n,)
        Out-of-sample effect per unit, from models that never saw the unit's cluster
        (forests' cluster out-of-bag effects, or refits on the other half of the clusters).
    tau_se : ndarray of shape (n,)
        Standard error of ``tau_hat`` as an estimate of the unit's effect, NaN where no
        valid one exists (``interval`` is then ``none``).
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
    interval : {"firm", "none"}
        What the per-unit interval ``tau_hat +- 1.96 tau_se`` covers (:data:`INTERVAL_KINDS`).
    interval_note : str
        The same in words, for the report: how the interval is built, or why there is none.
    params : estimator params or None
        The validated params the estimator was fitted with (its spec's ``params``), so that
        later stages can refit its final stage on subsets of the run's nuisances.
    """

    label: str
    kind: str
    ate: AteEstimate
    tau_hat: np.ndarray
    tau_se: np.ndarray
    scores: np.ndarray
    fit_seconds: float
    model: Any = field(compare=False, repr=False)
    estimand: str = ""
    family: str = "continuous"
    interval: str = "none"
    interval_note: str = ""
    params: AnyParams | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EstimationResult:
    """All estimators of a run, over the same units."""

    units: np.ndarray
    estimators: tuple[EstimatorResult, ...]
    nuisance_seconds: float
    nuisance_seconds_by_family: dict[str, float] = field(default_factory=dict)
    t_hat: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Cross-fitted E[T | X, W] per unit (first nuisance fold set), for overlap checks."""
    treatment: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The treatment per unit, written beside ``t_hat`` (``tables/treatment.csv``)."""
    cache: Any = field(default=None, compare=False, repr=False)
    """The run's :class:`~vaer.estimators.nuisance.NuisanceCache`: later stages refit final
    stages on it (e.g. attribution on folds of clusters) without refitting nuisances."""

    def to_frame(self) -> pd.DataFrame:
        """The ATE table: one row per estimator (``tables/ate.csv``)."""
        rows = [vars(result.ate).copy() for result in self.estimators]
        return pd.DataFrame(rows, columns=ATE_COLUMNS)

    def cate_frame(self) -> pd.DataFrame:
        """Per-unit effects in long form (``tables/cate.csv``): ``tau_hat``, its SE and
        95% interval where one is valid for the unit's effect (``interval`` says which)."""
        z = float(stats.norm.ppf(0.975))
        parts = [
            pd.DataFrame(
                {
                    "estimator": result.label,
                    "unit": self.units,
                    "tau_hat": result.tau_hat,
                    "se": result.tau_se,
                    "ci_low": result.tau_hat - z * result.tau_se,
                    "ci_high": result.tau_hat + z * result.tau_se,
                    "interval": result.interval,
                    "estimand": result.estimand,
                }
            )
            for result in self.estimators
        ]
        return pd.concat(parts, ignore_index=True)[CATE_COLUMNS]

    def intervals_frame(self) -> pd.DataFrame:
        """What each estimator's per-firm intervals mean (``tables/intervals.csv``)."""
        return pd.DataFrame(
            {
                "estimator": [r.label for r in self.estimators],
                "interval": [r.interval for r in self.estimators],
                "meaning": [r.interval_note for r in self.estimators],
            }
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """``ate``, ``intervals``, ``cate`` and (when ``t_hat`` is known) ``treatment``."""
        tables = {
            "ate": self.to_frame(),
            "intervals": self.intervals_frame(),
            "cate": self.cate_frame(),
        }
        if self.t_hat is not None and self.treatment is not None:
            tables["treatment"] = pd.DataFrame(
                {"unit": self.units, "treatment": self.treatment, "t_hat": self.t_hat}
            )
        return tables

    def metrics(self) -> dict[str, float]:
        """Each estimator's ATE, SE and CI and its fit time; the nuisances' fit time."""
        metrics: dict[str, float] = {}
        for result in self.estimators:
            for key in ("estimate", "se", "ci_low", "ci_high"):
                metrics[f"ate.{result.label}.{key}"] = getattr(result.ate, key)
            metrics[f"time.fit.{result.label}"] = result.fit_seconds
        metrics["time.fit.nuisances"] = self.nuisance_seconds
        return metrics

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
