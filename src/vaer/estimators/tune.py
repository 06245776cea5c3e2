"""Opt-in tuning of the nuisance learners and causal forests on cluster-grouped splits.

econml's own ``tune()`` draws its validation split without groups, so firms of one
city land on both sides and the scores reward memorising city effects. Here every
split is by cluster:

* nuisances: each candidate override of ``nuisance.params`` is scored by the
  cluster-grouped cross-validated MSE of the outcome and treatment regressions, each
  divided by the variance of its target, summed;
* causal forests (``causal_forest_dml``): residuals are cross-fitted with the chosen
  nuisances, and each candidate override of the forest's params is fitted on the
  training clusters of one grouped split and scored by the R-loss
  :math:`\\frac{1}{n_v}\\sum_{i \\in v} (\\tilde Y_i - \\hat\\tau(X_i)\\tilde T_i)^2`
  on the held-out clusters (Nie and Wager, 2021, *Biometrika* 108(2)).

The best candidates replace the run's settings; every trial is returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from vaer.compute import Backend, LocalBackend
from vaer.config.estimators import (
    AnySpec,
    CausalForestDMLParams,
    ForestParams,
    NuisanceConfig,
    TuneConfig,
    estimator_label,
)
from vaer.context import Progress
from vaer.data.design import AnalysisData
from vaer.estimators.cluster_forest import causal_moments
from vaer.estimators.learners import make_regressor
from vaer.estimators.nuisance import crossfit_predict, grouped_folds
from vaer.estimators.registry import forest_of

DEFAULT_NUISANCE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "lightgbm": [
        {},
        {"num_leaves": 7, "min_child_samples": 80},
        {"num_leaves": 31, "min_child_samples": 20, "n_estimators": 500},
    ],
    "random_forest": [{}, {"min_samples_leaf": 5}, {"min_samples_leaf": 20}],
    "hist_gradient_boosting": [
        {},
        {"max_leaf_nodes": 7, "min_samples_leaf": 80},
        {"max_leaf_nodes": 31, "min_samples_leaf": 20, "max_iter": 500},
    ],
    "ridge": [{}],
}
TUNING_TREES = 200


@dataclass(frozen=True)
class TuneTrial:
    """One candidate: which target it tunes, its overrides, its held-out loss."""

    target: str
    candidate: str
    loss: float
    chosen: bool


@dataclass(frozen=True)
class TuneResult:
    """Outcome of the tuning step.

    Attributes
    ----------
    nuisance : NuisanceConfig
        The nuisance config with the chosen params.
    specs : tuple of estimator specs
        The estimator specs with the chosen forest params.
    trials : tuple of TuneTrial
    seconds : float
    """

    nuisance: NuisanceConfig
    specs: tuple[AnySpec, ...]
    trials: tuple[TuneTrial, ...]
    seconds: float

    def to_frame(self) -> pd.DataFrame:
        """One row per trial (``tables/tuning.csv``)."""
        return pd.DataFrame(
            [vars(t) for t in self.trials], columns=["target", "candidate", "loss", "chosen"]
        )

    def metrics(self) -> dict[str, float]:
        """Best held-out loss per target and the time spent."""
        best = {f"tune.{t.target}.best_loss": t.loss for t in self.trials if t.chosen}
        return {**best, "time.tune": self.seconds}

    def tables(self) -> dict[str, pd.DataFrame]:
        """``tuning``: one row per trial."""
        return {"tuning": self.to_frame()}


def _describe(overrides: dict[str, Any]) -> str:
    return json.dumps(overrides, sort_keys=True) if overrides else "defaults"


@dataclass(frozen=True)
class _NuisanceTrial:
    """A task: cross-validated loss of one nuisance candidate (folds fitted in the task)."""

    xw: np.ndarray
    targets: tuple[np.ndarray, ...]
    folds: Any
    rs: int
    clusters: np.ndarray

    def __call__(self, config: NuisanceConfig) -> float:
        loss = 0.0
        for target in self.targets:
            model = make_regressor(config, self.rs)
            prediction = crossfit_predict(model, self.xw, target, self.folds, groups=self.clusters)
            loss += float(np.mean((target - prediction) ** 2) / np.var(target))
        return loss


@dataclass(frozen=True)
class _ForestTrial:
    """A task: held-out R-loss of one causal-forest candidate."""

    x: np.ndarray
    y_res: np.ndarray
    t_res: np.ndarray
    clusters: np.ndarray
    split: tuple[np.ndarray, np.ndarray]
    rs: int

    def __call__(self, params: ForestParams) -> float:
        train, valid = self.split
        trees = min(params.n_estimators, TUNING_TREES)
        small = params.model_copy(update={"n_estimators": trees - trees % params.ci_group_size})
        forest = forest_of(small, self.rs).fit(
            self.x[train],
            causal_moments(self.y_res[train], self.t_res[train]),
            self.clusters[train],
        )
        tau = forest.predict(self.x[valid])
        return float(np.mean((self.y_res[valid] - tau * self.t_res[valid]) ** 2))


def tune_estimation(
    data: AnalysisData,
    specs: Sequence[AnySpec],
    nuisance: NuisanceConfig,
    config: TuneConfig,
    *,
    random_state: int,
    progress: Progress | None = None,
    backend: Backend | None = None,
) -> TuneResult:
    """Choose nuisance and causal-forest params on cluster-grouped held-out data.

    Parameters
    ----------
    data : AnalysisData
    specs : sequence of estimator specs
    nuisance : NuisanceConfig
    config : TuneConfig
        ``cv`` grouped folds; ``nuisance_grid`` (None: a default grid for
        ``nuisance.model``) and ``forest_grid`` of param overrides.
    random_state : int
    progress : callable, optional
    backend : vaer.compute.Backend, optional
        Where candidates (one task each) and the residuals' folds run; default:
        ``nuisance.n_jobs`` local processes. Results do not depend on it.

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        If a grid entry has a key the learner or the forest does not take.
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    folds = grouped_folds(data.clusters, config.cv, random_state)
    xw = data.xw.to_numpy(dtype=np.float64)
    x = data.x.to_numpy(dtype=np.float64)
    y, t = np.asarray(data.y, dtype=np.float64), np.asarray(data.t, dtype=np.float64)
    trials: list[TuneTrial] = []
    runner = (backend or LocalBackend()).with_local_jobs(nuisance.jobs(data.n))

    grid = config.nuisance_grid
    if grid is None:
        grid = DEFAULT_NUISANCE_GRIDS[nuisance.model]
    say(f"tuning nuisances: {len(grid)} candidates on {config.cv} cluster-grouped folds")
    candidates = [
        nuisance.model_copy(update={"params": {**nuisance.params, **override}}) for override in grid
    ]
    losses = runner.map(_NuisanceTrial(xw, (y, t), folds, random_state, data.clusters), candidates)
    best = int(np.argmin(losses))
    trials += [
        TuneTrial("nuisance", _describe(o), loss, k == best)
        for k, (o, loss) in enumerate(zip(grid, losses, strict=True))
    ]
    tuned_nuisance = candidates[best]

    tuned_specs: list[AnySpec] = list(specs)
    forests = [k for k, s in enumerate(specs) if isinstance(s.params, CausalForestDMLParams)]
    if forests and config.forest_grid:
        model = make_regressor(tuned_nuisance, random_state)
        y_res = y - crossfit_predict(model, xw, y, folds, backend=runner, groups=data.clusters)
        t_res = t - crossfit_predict(model, xw, t, folds, backend=runner, groups=data.clusters)
        split = folds[0]
        for k, spec in enumerate(specs):
            base = spec.params
            if not isinstance(base, CausalForestDMLParams):  # only causal forests are tuned
                continue
            label = estimator_label(spec)
            say(f"tuning {label}: {len(config.forest_grid)} candidates on held-out clusters")
            params: list[ForestParams] = []
            for override in config.forest_grid:
                try:
                    params.append(base.model_validate({**base.model_dump(), **override}))
                except ValidationError as exc:
                    raise ValueError(
                        f"tune.forest_grid entry {override} is not valid for {label}: "
                        f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
                    ) from exc
            losses = runner.map(
                _ForestTrial(x, y_res, t_res, data.clusters, split, random_state), params
            )
            best = int(np.argmin(losses))
            trials += [
                TuneTrial(label, _describe(o), loss, j == best)
                for j, (o, loss) in enumerate(zip(config.forest_grid, losses, strict=True))
            ]
            tuned_specs[k] = spec.model_copy(update={"params": params[best]})
    return TuneResult(
        nuisance=tuned_nuisance,
        specs=tuple(tuned_specs),
        trials=tuple(trials),
        seconds=time.perf_counter() - started,
    )
