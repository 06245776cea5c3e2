"""The attribution stage: cluster-honest SHAP of every estimator's tau_hat(x), channel
shares with intervals that include estimation error, and mechanism tests.

For each estimator the final stage is refitted on three folds of the clusters
(:mod:`vaer.attribution.refits`), every explained firm is explained by the two fold
models that never saw its city (:mod:`vaer.attribution.honest`), and channel and feature
importances come from the products of those two explanations with a doubly robust
correction from the estimator's scores (:mod:`vaer.attribution.importance`).

Cost: three refits of each final stage on at most ``refit_units`` firms (forests with at
most ``refit_trees`` trees), and every explained firm explained twice (``n_units``, or
``permutation_units`` on the permutation route); both caps keep the stage's cost flat in
the number of firms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.attribution.channels import (
    SHARE_COLUMNS,
    channel_shares,
    channel_shares_by_type,
    feature_importance,
)
from vaer.attribution.explain import ShapExplanation, resolve_method
from vaer.attribution.honest import explain_across_folds
from vaer.attribution.mechanisms import MechanismEstimate, mechanism_tests, mechanisms_frame
from vaer.attribution.refits import (
    Refitter,
    cluster_folds,
    final_stages,
    fit_fold_models,
    refit_rows,
)
from vaer.attribution.share_intervals import label_share_intervals, share_interval_label
from vaer.compute import Backend
from vaer.config.attribution import AttributionConfig, MechanismTestConfig
from vaer.config.models import NuisanceConfig, Roles
from vaer.context import Progress, RunContext
from vaer.data.design import AnalysisData
from vaer.estimators.results import EstimationResult

CHANNEL_COLUMNS = ["estimator", *SHARE_COLUMNS, "interval"]
FEATURE_COLUMNS = [
    "estimator",
    "feature",
    "channel",
    "share",
    "importance",
    "importance_se",
    "p_value",
    "mean_abs_shap",
    "shap_sd",
]
SUMMARY_COLUMNS = [
    "estimator",
    "method",
    "n_units",
    "n_background",
    "n_refit",
    "fidelity_r2",
    "base",
    "seconds",
    "note",
]
HONEST_NOTE = (
    "cluster-honest: each firm explained by the final stage refitted on two disjoint folds "
    "of cities, neither holding the firm's"
)
NO_REFIT_NOTE = (
    "not explained: the estimation result keeps no nuisances to refit the final stage on "
    "folds of cities (EstimationResult.cache, EstimatorResult.params)"
)


def sample_rows(n: int, size: int, random_state: int) -> np.ndarray:
    """``min(size, n)`` distinct row indices drawn at random, in increasing order.

    Raises
    ------
    ValueError
        If ``size`` < 1.
    """
    if size < 1:
        raise ValueError(f"`size` must be an int >= 1; got {size}")
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


@dataclass(frozen=True)
class AttributionResult:
    """SHAP explanations, channel shares and mechanism tests of one run.

    Attributes
    ----------
    explanations : tuple of ShapExplanation
        One per explained estimator (cluster-honest, cross-fold).
    channels : DataFrame
        ``shap_channels`` table (:data:`CHANNEL_COLUMNS`; empty without
        ``roles.mechanisms``); ``interval`` says what its intervals cover
        (:mod:`vaer.attribution.share_intervals`).
    by_type : DataFrame
        ``shap_by_type`` table.
    mechanisms : tuple of MechanismEstimate
    feature_values : DataFrame
        Original modifier values of the explained units (``unit`` first).
    feature_channels : dict
        Proxy column -> its channel (``roles.mechanisms`` inverted).
    seconds : dict
        ``shap`` and ``mechanisms`` wall times.
    features : DataFrame
        ``shap_features`` table (:data:`FEATURE_COLUMNS`).
    skipped : dict
        Estimator label -> why it was not explained.
    """

    explanations: tuple[ShapExplanation, ...]
    channels: pd.DataFrame
    by_type: pd.DataFrame
    mechanisms: tuple[MechanismEstimate, ...]
    feature_values: pd.DataFrame
    feature_channels: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    features: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FEATURE_COLUMNS))
    skipped: dict[str, str] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The channel-share table (``tables/shap_channels.csv``)."""
        return self.channels

    def shap_values_frame(self) -> pd.DataFrame:
        """Per-unit SHAP values: ``estimator, unit``, then one column per modifier (the mean
        of the unit's two cluster-honest explanations)."""
        parts = []
        for explanation in self.explanations:
            part = explanation.values.copy()
            part.insert(0, "unit", explanation.units)
            part.insert(0, "estimator", explanation.estimator)
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def features_frame(self) -> pd.DataFrame:
        """Importance, share and mean |SHAP| per estimator and modifier (``shap_features``).

        ``share``, ``importance``, ``importance_se`` and ``p_value`` as in
        :data:`vaer.attribution.channels.SHARE_COLUMNS`, over all modifiers;
        ``mean_abs_shap`` and ``shap_sd`` describe the per-firm values."""
        return self.features

    def summary_frame(self) -> pd.DataFrame:
        """How each estimator was explained (``shap_summary``): route, firms explained,
        firms the fold models were refitted on (``n_refit``, summed), the lowest fidelity
        of the three fold models' explained functions, and a note."""
        rows = [
            {
                "estimator": e.estimator,
                "method": e.method,
                "n_units": len(e.units),
                "n_background": e.n_background,
                "n_refit": int(sum(v for k, v in e.extra.items() if k.startswith("n_refit_"))),
                "fidelity_r2": e.fidelity_r2,
                "base": e.base,
                "seconds": e.seconds,
                "note": HONEST_NOTE,
            }
            for e in self.explanations
        ]
        rows += [{"estimator": label, "note": note} for label, note in self.skipped.items()]
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def mechanisms_frame(self) -> pd.DataFrame:
        """The mechanism tests (``tables/mechanisms.csv``)."""
        return mechanisms_frame(self.mechanisms)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the stage by report name (empty ones left out)."""
        tables = {
            "shap_summary": self.summary_frame(),
            "shap_features": self.features_frame(),
            "shap_channels": self.channels,
            "shap_by_type": self.by_type,
            "shap_values": self.shap_values_frame(),
            "shap_data": self.feature_values,
            "mechanisms": self.mechanisms_frame(),
        }
        return {name: table for name, table in tables.items() if not table.empty}

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: channel shares and intervals, fidelity, timings, mechanisms."""
        metrics: dict[str, float] = {}
        for explanation in self.explanations:
            metrics[f"shap.{explanation.estimator}.fidelity_r2"] = explanation.fidelity_r2
            metrics[f"time.shap.{explanation.estimator}"] = explanation.seconds
        columns = ("estimator", "channel", "share", "ci_low", "ci_high")
        for estimator, channel, share, low, high in zip(
            *(self.channels[c] for c in columns), strict=True
        ):
            prefix = f"shap.{estimator}.share.{channel}"
            metrics[prefix] = float(share)
            if np.isfinite(low) and np.isfinite(high):  # withheld for smoothed effects
                metrics[f"{prefix}.ci_low"] = float(low)
                metrics[f"{prefix}.ci_high"] = float(high)
        for estimate in self.mechanisms:
            if estimate.dimension == "all":
                prefix = f"mechanism.{estimate.mediator}"
            else:
                prefix = f"mechanism.{estimate.mediator}.{estimate.dimension}:{estimate.level}"
            metrics[f"{prefix}.estimate"] = estimate.estimate
            metrics[f"{prefix}.se"] = estimate.se
        for name, seconds in self.seconds.items():
            metrics[f"time.attribution.{name}"] = seconds
        return metrics


def _features_table(
    explanation: ShapExplanation,
    scores: np.ndarray,
    clusters: np.ndarray,
    channel_of: dict[str, str],
    ci_level: float,
) -> pd.DataFrame:
    table = feature_importance(explanation, scores, clusters, ci_level=ci_level)
    values = explanation.values
    return pd.DataFrame(
        {
            "estimator": explanation.estimator,
            "feature": list(values.columns),
            "channel": [channel_of.get(str(f), "") for f in values.columns],
            "share": table["share"].to_numpy(),
            "importance": table["importance"].to_numpy(),
            "importance_se": table["importance_se"].to_numpy(),
            "p_value": table["p_value"].to_numpy(),
            "mean_abs_shap": values.abs().mean().to_numpy(),
            "shap_sd": values.std().to_numpy(),
        },
        columns=FEATURE_COLUMNS,
    )


def run_attribution(
    data: AnalysisData,
    estimation: EstimationResult,
    config: AttributionConfig,
    roles: Roles,
    nuisance: NuisanceConfig,
    frame: pd.DataFrame,
    *,
    random_state: int,
    progress: Progress | None = None,
    backend: Backend | None = None,
    refitters: Mapping[str, Refitter] | None = None,
) -> AttributionResult:
    """Explain every estimator's tau_hat(x) cluster-honestly, aggregate by channel and
    firm type, and test the mechanisms.

    Parameters
    ----------
    data : AnalysisData
    estimation : EstimationResult
        Fitted estimators: their kind, scores, and the run's nuisances and parameters to
        refit their final stages (:func:`vaer.attribution.refits.final_stages`).
    config : AttributionConfig
    roles : Roles
        ``mechanisms`` (channel -> proxies) and ``mediators`` (channel -> mediators).
    nuisance : NuisanceConfig
        The learner of the mechanism tests' first stages.
    frame : DataFrame
        The analysis table ``data`` was built from (modifier values and mediators).
    random_state : int
    progress : callable, optional
    backend : vaer.compute.Backend, optional
        Where SHAP chunks and the mechanism tests' folds run (default: in this process).
    refitters : mapping, optional
        Estimator label -> how to refit its final stage; default
        :func:`~vaer.attribution.refits.final_stages` of ``estimation``. Estimators with
        none are not explained (``shap_summary`` says why).

    Returns
    -------
    AttributionResult

    Raises
    ------
    ValueError
        If a mechanism proxy is not a modifier, there are fewer than 6 clusters, or a
        mediator is unusable (see :func:`vaer.attribution.mechanisms.mechanism_tests`).
    """
    say = progress or (lambda _message: None)
    stages = dict(refitters) if refitters is not None else final_stages(estimation)
    rows = sample_rows(data.n, config.n_units, random_state)
    background = sample_rows(data.n, config.n_background, random_state + 1)
    channel_of = {proxy: ch for ch, proxies in roles.mechanisms.items() for proxy in proxies}
    explanations, skipped = [], {}
    channels, by_type, features = [], [], []
    started = time.perf_counter()
    folds = cluster_folds(data.clusters, random_state) if stages else None
    for result in estimation.estimators:
        stage = stages.get(result.label)
        if stage is None or folds is None:
            skipped[result.label] = NO_REFIT_NOTE
            say(f"SHAP of {result.label}: skipped ({NO_REFIT_NOTE})")
            continue
        say(f"refitting {result.label} on 3 folds of the clusters")
        parts = refit_rows(folds, data.clusters, config.refit_units, random_state)
        models = fit_fold_models(
            stage, parts, max_trees=config.refit_trees, random_state=random_state
        )
        method = resolve_method(config.method, result.kind, models[0])
        explain_rows = (
            sample_rows(data.n, min(config.permutation_units, config.n_units), random_state)
            if method == "permutation"
            else rows
        )
        say(f"SHAP of {result.label} ({method}, {len(explain_rows)} units, each by 2 models)")
        explanation = explain_across_folds(
            result.label,
            result.kind,
            models,
            folds,
            data.x,
            explain_rows,
            background,
            data.units,
            data.feature_groups,
            method=method,
            surrogate_options=config.surrogate.model_dump(),
            random_state=random_state,
            backend=backend,
            refit_sizes=[len(rows) for rows in parts],
        )
        explanations.append(explanation)
        scores = np.asarray(result.scores, dtype=np.float64)[explain_rows]
        clusters = data.clusters[explain_rows]
        features.append(_features_table(explanation, scores, clusters, channel_of, config.ci_level))
        if roles.mechanisms:
            shares = channel_shares(
                explanation, roles.mechanisms, scores, clusters, ci_level=config.ci_level
            ).table
            shares.insert(0, "estimator", result.label)
            label = share_interval_label(method, config.smoothed_share_intervals)
            channels.append(label_share_intervals(shares, label))
            typed = channel_shares_by_type(
                explanation,
                roles.mechanisms,
                data.firm_types.iloc[explain_rows].reset_index(drop=True),
                scores,
                clusters,
                ci_level=config.ci_level,
            ).table
            typed.insert(0, "estimator", result.label)
            by_type.append(label_share_intervals(typed, label))
    shap_seconds = time.perf_counter() - started

    mechanisms: tuple[MechanismEstimate, ...] = ()
    started = time.perf_counter()
    if roles.mediators and config.mechanisms.enabled:
        say("mechanism tests: DML effect of VA on each mediator")
        mechanisms = run_mechanism_tests(
            frame, roles, data, nuisance, config.mechanisms, random_state, backend
        )
    mechanism_seconds = time.perf_counter() - started

    modifiers = [c for c in roles.modifiers if c in frame.columns]
    values = frame[modifiers].iloc[rows].reset_index(drop=True)
    values.insert(0, "unit", data.units[rows])
    return AttributionResult(
        explanations=tuple(explanations),
        channels=pd.concat(channels, ignore_index=True)
        if channels
        else pd.DataFrame(columns=CHANNEL_COLUMNS),
        by_type=pd.concat(by_type, ignore_index=True) if by_type else pd.DataFrame(),
        mechanisms=mechanisms,
        feature_values=values,
        feature_channels=channel_of,
        seconds={"shap": shap_seconds, "mechanisms": mechanism_seconds},
        features=pd.concat(features, ignore_index=True)
        if features
        else pd.DataFrame(columns=FEATURE_COLUMNS),
        skipped=skipped,
    )


def run_mechanism_tests(
    frame: pd.DataFrame,
    roles: Roles,
    data: AnalysisData,
    nuisance: NuisanceConfig,
    config: MechanismTestConfig,
    random_state: int,
    backend: Backend | None = None,
) -> tuple[MechanismEstimate, ...]:
    """The stage's mechanism tests: :func:`vaer.attribution.mechanisms.mechanism_tests` of
    ``roles.mediators`` with the settings of ``attribution.mechanisms``."""
    return mechanism_tests(
        frame,
        roles.mediators,
        data,
        nuisance,
        cv=config.cv,
        score=config.score,
        by_firm_type=config.by_firm_type,
        random_state=random_state,
        backend=backend,
        max_units=config.max_units,
        n_rep=config.n_rep,
    )


def attribution_stage(ctx: RunContext) -> AttributionResult:
    """The attribution stage (:mod:`vaer.context`): SHAP channels and mechanism tests of the
    run's estimators (mechanism nuisances from the config's ``nuisance:``, untuned)."""
    config = ctx.config
    return run_attribution(
        ctx.data, ctx.result(EstimationResult), config.attribution, config.roles,
        config.nuisance, ctx.study.frame,
        random_state=ctx.seed, progress=ctx.progress, backend=ctx.backend,
    )  # fmt: skip
