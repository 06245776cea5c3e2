"""The heterogeneity stage: every analysis of :mod:`vaer.heterogeneity` for every estimator.

:func:`analyze_heterogeneity` takes the estimation stage's out-of-sample ``tau_hat`` and
doubly robust scores and returns one frozen :class:`HeterogeneityResult` with the tables
of the report (``gate``, ``gate_tests``, ``gates_sorted``, ``clan``, ``calibration``,
``blp``, ``rate``, ``toc``, ``policy_tree``) and the metrics of the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.compute import Backend
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.context import Progress, RunContext
from vaer.data.design import AnalysisData
from vaer.estimators.results import EstimationResult
from vaer.heterogeneity.blp import BlpResult, best_linear_projection
from vaer.heterogeneity.calibration import CalibrationResult, test_calibration
from vaer.heterogeneity.gates import GateResult, estimate_gates
from vaer.heterogeneity.policy_tree import PolicyTreeResult, fit_policy_tree, split_candidates
from vaer.heterogeneity.rate import RateResult, rank_average_treatment_effect
from vaer.heterogeneity.sorted_gates import SortedGatesResult, clan_variables, sorted_gates

TABLE_NAMES = (
    "gate",
    "gate_tests",
    "gates_sorted",
    "clan",
    "calibration",
    "blp",
    "rate",
    "toc",
    "policy_tree",
)


@dataclass(frozen=True)
class EstimatorHeterogeneity:
    """Every heterogeneity analysis of one estimator."""

    estimator: str
    gates: GateResult
    sorted_gates: SortedGatesResult
    calibration: CalibrationResult | None
    blp: BlpResult
    rate: RateResult
    policy_tree: PolicyTreeResult

    def metrics(self) -> dict[str, float]:
        """The headline numbers of this estimator (see each result's ``metrics``)."""
        out: dict[str, float] = {
            **self.gates.metrics(),
            **self.sorted_gates.metrics(),
            **self.blp.metrics(),
            **self.rate.metrics(),
            **self.policy_tree.metrics(),
        }
        if self.calibration is not None:
            out.update(self.calibration.metrics())
        return out


@dataclass(frozen=True)
class HeterogeneityResult:
    """The heterogeneity stage's results, one entry per analysed estimator.

    Attributes
    ----------
    estimators : tuple of EstimatorHeterogeneity
    notes : tuple of str
        Analyses that could not run and why (e.g. a constant ``tau_hat``).
    """

    estimators: tuple[EstimatorHeterogeneity, ...]
    notes: tuple[str, ...] = ()

    def get(self, label: str) -> EstimatorHeterogeneity:
        """The analyses of the estimator named ``label``.

        Raises
        ------
        KeyError
            If that estimator was not analysed.
        """
        for item in self.estimators:
            if item.estimator == label:
                return item
        raise KeyError(
            f"no heterogeneity results for '{label}'; have {[e.estimator for e in self.estimators]}"
        )

    def to_frame(self) -> pd.DataFrame:
        """The GATE table of every estimator (``tables/gate.csv``)."""
        return self.tables()["gate"]

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the stage by its report name."""
        pieces: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLE_NAMES}
        for item in self.estimators:
            pieces["gate"].append(item.gates.to_frame())
            pieces["gate_tests"].append(item.gates.tests_frame())
            pieces["gates_sorted"].append(item.sorted_gates.to_frame())
            pieces["clan"].append(item.sorted_gates.clan_frame())
            if item.calibration is not None:
                pieces["calibration"].append(item.calibration.to_frame())
            pieces["blp"].append(item.blp.to_frame())
            pieces["rate"].append(item.rate.to_frame())
            pieces["toc"].append(item.rate.toc_frame())
            pieces["policy_tree"].append(item.policy_tree.to_frame())
        return {
            name: pd.concat(frames, ignore_index=True)
            for name, frames in pieces.items()
            if frames and any(len(f) for f in frames)
        }

    def metrics(self) -> dict[str, float]:
        """Every estimator's headline metrics; withheld (NaN) p-values are left out (the
        tracking layer makes the keys valid MLflow names)."""
        out: dict[str, float] = {}
        for item in self.estimators:
            out.update(item.metrics())
        return {k: v for k, v in out.items() if np.isfinite(v)}

    def withhold_ranking(self) -> HeterogeneityResult:
        """A copy without the p-values and CIs of the tests that rank or regress on
        ``tau_hat`` (:mod:`vaer.heterogeneity.withhold`), with a note saying so."""
        items = tuple(
            dataclasses.replace(
                item,
                calibration=None
                if item.calibration is None
                else item.calibration.withhold_ranking(),
                sorted_gates=item.sorted_gates.withhold_ranking(),
                rate=item.rate.withhold_ranking(),
            )
            for item in self.estimators
        )
        note = (
            "p-values and confidence intervals of the calibration slope, sorted GATES, "
            "AUTOC/Qini and the TOC band are withheld: under a constant effect they "
            "rejected in up to 25% of draws at the 5% level, because tau_hat and the "
            "doubly robust scores share the nuisance models' errors (and the out-of-bag "
            "forest carries each city's scores into other cities' predictions); the GATE "
            "equality F-tests and the BLP joint F-test do not use tau_hat and hold their "
            "level (benchmarks/RESULTS.md, heterogeneity_size). Set "
            "heterogeneity.ranking_tests: true to print them anyway."
        )
        return HeterogeneityResult(estimators=items, notes=(*self.notes, note))


def _columns_of(data: AnalysisData, names: list[str]) -> pd.DataFrame:
    """The encoded modifier columns of the original columns ``names``."""
    columns = [
        c for name in names for c in data.feature_groups.get(name, []) if c in data.x.columns
    ]
    return data.x[columns]


def _numeric_modifiers(data: AnalysisData) -> list[str]:
    return [
        name
        for name, cols in data.feature_groups.items()
        if cols == [name] and name in data.x.columns
    ]


def _policy_features(
    data: AnalysisData, dimensions: list[str], extra: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    categorical = data.firm_types[[d for d in dimensions if d in data.firm_types.columns]].copy()
    numeric = _numeric_modifiers(data)
    numeric_frame = pd.DataFrame(index=range(data.n))
    for name in extra:
        if name in categorical.columns:
            continue
        if name in data.firm_types.columns:
            categorical[name] = data.firm_types[name]
        elif name in numeric:
            numeric_frame[name] = data.x[name].to_numpy()
        else:
            encoded = data.x[data.feature_groups[name]].to_numpy()
            levels = [c.split("=", 1)[1] for c in data.feature_groups[name]]
            labels = np.full(data.n, "other", dtype=object)
            for k, level in enumerate(levels):
                labels[encoded[:, k] == 1.0] = level
            categorical[name] = labels
    return categorical, numeric_frame


def tau_folds(result: object) -> np.ndarray | None:
    """The cross-fitting fold of every unit's ``tau_hat`` (units predicted by one model
    share a fold), from the estimator result's ``tau_folds`` when it has one; None when
    the folds are unknown (every unit then counts as one fold, see
    :mod:`vaer.heterogeneity.folds`)."""
    folds = getattr(result, "tau_folds", None)
    return None if folds is None else np.asarray(folds)


def analyze_heterogeneity(
    estimation: EstimationResult,
    data: AnalysisData,
    config: HeterogeneityConfig,
    *,
    random_state: int,
    progress: Progress | None = None,
    backend: Backend | None = None,
) -> HeterogeneityResult:
    """Run GATEs, sorted GATES/CLAN, calibration, BLP, RATE and the policy tree.

    Parameters
    ----------
    estimation : EstimationResult
        Out-of-sample ``tau_hat`` and doubly robust ``scores`` per estimator.
    data : AnalysisData
        The same units, in the same order.
    config : HeterogeneityConfig
    random_state : int
        Seed used when ``config.random_state`` is unset.
    progress : callable, optional
    backend : vaer.compute.Backend, optional
        Where the RATE cluster-bootstrap chunks run (default: in this process).

    Returns
    -------
    HeterogeneityResult

    Raises
    ------
    ValueError
        If the estimation and the data have different units, or the config names an
        estimator, firm type or modifier the run does not have.
    """
    say = progress or (lambda _message: None)
    if len(estimation.units) != data.n or not np.array_equal(estimation.units, data.units):
        raise ValueError("`estimation` and `data` must cover the same units in the same order")
    labels = [r.label for r in estimation.estimators]
    modifiers = [
        name
        for name, columns in data.feature_groups.items()
        if any(c in data.x.columns for c in columns)
    ]
    config.check_roles(list(data.firm_types.columns), modifiers, labels)
    seed = config.random_state if config.random_state is not None else random_state
    dimensions = (
        list(config.dimensions) if config.dimensions is not None else list(data.firm_types.columns)
    )
    blp_names = (
        list(config.blp_covariates)
        if config.blp_covariates is not None
        else _numeric_modifiers(data)
    )
    blp_covariates = _columns_of(data, blp_names)
    variables = clan_variables(data)
    categorical, numeric = _policy_features(data, dimensions, list(config.policy_features))
    candidates = split_candidates(categorical, numeric, config.policy_split_points)
    chosen = config.estimators if config.estimators is not None else labels
    results: list[EstimatorHeterogeneity] = []
    notes: list[str] = []
    for result in estimation.estimators:
        if result.label not in chosen:
            continue
        say(f"heterogeneity of {result.label}")
        clusters = data.clusters
        folds = tau_folds(result)
        try:
            calibration: CalibrationResult | None = test_calibration(
                result.label,
                result.tau_hat,
                result.scores,
                clusters,
                folds=folds,
                ci_level=config.ci_level,
            )
        except ValueError as exc:
            calibration = None
            notes.append(f"{result.label}: calibration test skipped: {exc}")
        results.append(
            EstimatorHeterogeneity(
                estimator=result.label,
                gates=estimate_gates(
                    result.label,
                    result.scores,
                    data.firm_types,
                    clusters,
                    dimensions=dimensions,
                    crossed=config.crossed,
                    ci_level=config.ci_level,
                    n_bootstrap=config.n_bootstrap,
                    random_state=seed,
                ),
                sorted_gates=sorted_gates(
                    result.label,
                    result.tau_hat,
                    result.scores,
                    clusters,
                    variables,
                    folds=folds,
                    n_groups=config.n_groups,
                    ci_level=config.ci_level,
                ),
                calibration=calibration,
                blp=best_linear_projection(
                    result.label, result.scores, blp_covariates, clusters, ci_level=config.ci_level
                ),
                rate=rank_average_treatment_effect(
                    result.label,
                    result.tau_hat,
                    result.scores,
                    clusters,
                    folds=folds,
                    n_bootstrap=config.n_bootstrap,
                    ci_level=config.ci_level,
                    random_state=seed,
                    backend=backend,
                ),
                policy_tree=fit_policy_tree(
                    result.label,
                    result.scores,
                    clusters,
                    candidates,
                    cost=config.policy_cost,
                    min_leaf=config.policy_min_leaf,
                    honest=config.policy_honest,
                    ci_level=config.ci_level,
                    random_state=seed,
                ),
            )
        )
    found = HeterogeneityResult(estimators=tuple(results), notes=tuple(notes))
    return found if config.ranking_tests else found.withhold_ranking()


def heterogeneity_stage(ctx: RunContext) -> HeterogeneityResult:
    """The heterogeneity stage (:mod:`vaer.context`) over the run's estimation result."""
    return analyze_heterogeneity(
        ctx.result(EstimationResult), ctx.data, ctx.config.heterogeneity,
        random_state=ctx.seed, progress=ctx.progress, backend=ctx.backend,
    )  # fmt: skip
