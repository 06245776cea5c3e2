"""The attribution stage: SHAP of every estimator's tau_hat(x), channels, mechanism tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.attribution.channels import (
    channel_contributions,
    channel_shares,
    channel_shares_by_type,
)
from vaer.attribution.explain import ShapExplanation, explain_effect, resolve_method
from vaer.attribution.mechanisms import MechanismEstimate, mechanism_tests, mechanisms_frame
from vaer.compute import Backend
from vaer.config.attribution import AttributionConfig
from vaer.config.models import NuisanceConfig, Roles
from vaer.data.design import AnalysisData
from vaer.estimators.results import EstimationResult

Progress = Callable[[str], None]
CHANNEL_COLUMNS = ["estimator", "channel", "share", "ci_low", "ci_high", "mean_abs_shap"]
FEATURE_COLUMNS = ["estimator", "feature", "channel", "mean_abs_shap", "share", "shap_sd"]
SUMMARY_COLUMNS = [
    "estimator",
    "method",
    "n_units",
    "n_background",
    "fidelity_r2",
    "base",
    "seconds",
]


def _metric_name(name: str) -> str:
    """``name`` with characters MLflow refuses in metric names replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.:/ -]", "_", name)


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
        One per estimator.
    channels : DataFrame
        ``shap_channels`` table (empty without ``roles.mechanisms``).
    by_type : DataFrame
        ``shap_by_type`` table.
    mechanisms : tuple of MechanismEstimate
    feature_values : DataFrame
        Original modifier values of the explained units (``unit`` first).
    feature_channels : dict
        Proxy column -> its channel (``roles.mechanisms`` inverted).
    seconds : dict
        ``shap`` and ``mechanisms`` wall times.
    """

    explanations: tuple[ShapExplanation, ...]
    channels: pd.DataFrame
    by_type: pd.DataFrame
    mechanisms: tuple[MechanismEstimate, ...]
    feature_values: pd.DataFrame
    feature_channels: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The channel-share table (``tables/shap_channels.csv``)."""
        return self.channels

    def shap_values_frame(self) -> pd.DataFrame:
        """Per-unit SHAP values: ``estimator, unit``, then one column per modifier."""
        parts = []
        for explanation in self.explanations:
            part = explanation.values.copy()
            part.insert(0, "unit", explanation.units)
            part.insert(0, "estimator", explanation.estimator)
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def features_frame(self) -> pd.DataFrame:
        """Mean |SHAP| and share per estimator and modifier (``shap_features``)."""
        rows = []
        for explanation in self.explanations:
            mean_abs = explanation.values.abs().mean()
            total = float(mean_abs.sum())
            for feature, value in mean_abs.items():
                rows.append(
                    {
                        "estimator": explanation.estimator,
                        "feature": feature,
                        "channel": self.feature_channels.get(str(feature), ""),
                        "mean_abs_shap": float(value),
                        "share": float(value) / total if total > 0 else np.nan,
                        "shap_sd": float(explanation.values[feature].std()),
                    }
                )
        return pd.DataFrame(rows, columns=FEATURE_COLUMNS)

    def summary_frame(self) -> pd.DataFrame:
        """How each estimator was explained (``shap_summary``)."""
        return pd.DataFrame(
            [
                {
                    "estimator": e.estimator,
                    "method": e.method,
                    "n_units": len(e.units),
                    "n_background": e.n_background,
                    "fidelity_r2": e.fidelity_r2,
                    "base": e.base,
                    "seconds": e.seconds,
                }
                for e in self.explanations
            ],
            columns=SUMMARY_COLUMNS,
        )

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
        """MLflow metrics: channel shares, fidelity, timings, mechanism estimates."""
        metrics: dict[str, float] = {}
        for explanation in self.explanations:
            metrics[f"shap.{explanation.estimator}.fidelity_r2"] = explanation.fidelity_r2
            metrics[f"time.shap.{explanation.estimator}"] = explanation.seconds
        for estimator, channel, share in zip(
            self.channels["estimator"],
            self.channels["channel"],
            self.channels["share"],
            strict=True,
        ):
            metrics[_metric_name(f"shap.{estimator}.share.{channel}")] = float(share)
        for estimate in self.mechanisms:
            if estimate.dimension == "all":
                prefix = f"mechanism.{estimate.mediator}"
            else:
                prefix = _metric_name(
                    f"mechanism.{estimate.mediator}.{estimate.dimension}:{estimate.level}"
                )
            metrics[f"{prefix}.estimate"] = estimate.estimate
            metrics[f"{prefix}.se"] = estimate.se
        for name, seconds in self.seconds.items():
            metrics[f"time.attribution.{name}"] = seconds
        return metrics


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
) -> AttributionResult:
    """Explain every estimator's tau_hat(x), aggregate by channel and firm type, and test
    the mechanisms.

    Parameters
    ----------
    data : AnalysisData
    estimation : EstimationResult
        Fitted estimators (their ``model`` is explained).
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

    Returns
    -------
    AttributionResult

    Raises
    ------
    ValueError
        If a mechanism proxy is not a modifier, or a mediator is unusable (see
        :func:`vaer.attribution.mechanisms.mechanism_tests`).
    """
    say = progress or (lambda _message: None)
    rows = sample_rows(data.n, config.n_units, random_state)
    background = sample_rows(data.n, config.n_background, random_state + 1)
    channel_of = {proxy: ch for ch, proxies in roles.mechanisms.items() for proxy in proxies}
    explanations = []
    channels, by_type = [], []
    started = time.perf_counter()
    for result in estimation.estimators:
        method = resolve_method(config.method, result.kind, result.model)
        explain_rows = (
            sample_rows(data.n, min(config.permutation_units, config.n_units), random_state)
            if method == "permutation"
            else rows
        )
        say(f"SHAP of {result.label} ({method}, {len(explain_rows)} units)")
        explanation = explain_effect(
            result.label,
            result.kind,
            result.model,
            data.x,
            explain_rows,
            background,
            data.units,
            data.feature_groups,
            method=method,
            surrogate_options=config.surrogate.model_dump(),
            random_state=random_state,
            backend=backend,
        )
        explanations.append(explanation)
        if roles.mechanisms:
            contrib = channel_contributions(explanation.values, roles.mechanisms)
            clusters = data.clusters[explain_rows]
            shares = channel_shares(
                contrib,
                clusters,
                n_bootstrap=config.n_bootstrap,
                ci_level=config.ci_level,
                random_state=random_state,
            ).table
            shares.insert(0, "estimator", result.label)
            channels.append(shares)
            typed = channel_shares_by_type(
                contrib,
                data.firm_types.iloc[explain_rows].reset_index(drop=True),
                clusters,
                n_bootstrap=config.n_bootstrap,
                ci_level=config.ci_level,
                random_state=random_state,
            ).table
            typed.insert(0, "estimator", result.label)
            by_type.append(typed)
    shap_seconds = time.perf_counter() - started

    mechanisms: tuple[MechanismEstimate, ...] = ()
    started = time.perf_counter()
    if roles.mediators and config.mechanisms.enabled:
        say("mechanism tests: DML effect of VA on each mediator")
        mechanisms = mechanism_tests(
            frame,
            roles.mediators,
            data,
            nuisance,
            cv=config.mechanisms.cv,
            score=config.mechanisms.score,
            by_firm_type=config.mechanisms.by_firm_type,
            random_state=random_state,
            backend=backend,
            max_units=config.mechanisms.max_units,
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
    )
