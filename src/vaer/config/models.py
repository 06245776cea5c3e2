"""Pydantic models of an experiment.

Every section forbids unknown keys, so a misspelt key fails before any data are read or
any model is fitted. Library code receives these models (never raw YAML dicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vaer.config.attribution import AttributionConfig
from vaer.config.compute import ComputeConfig
from vaer.config.did import DidConfig
from vaer.config.estimators import (
    CausalForestDMLParams,
    CausalForestDMLSpec,
    EstimatorSpec,
    LinearDMLParams,
    LinearDMLSpec,
    NuisanceConfig,
    TuneConfig,
    check_instrument_for,
    estimator_label,
)
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.config.labels import LabelsConfig
from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
from vaer.config.robustness import RobustnessConfig
from vaer.config.section import Section
from vaer.config.sweep import SweepConfig

# --------------------------------------------------------------------------- data


class SyntheticTableConfig(Section):
    """Parameters of the built-in cross-sectional synthetic firm table.

    See :func:`vaer.data.synthetic_table.make_synthetic_table` for the formulas.
    """

    n_units: int = Field(8000, ge=200)
    n_clusters: int = Field(120, ge=10)
    ate: float = 0.5
    heterogeneity: float = Field(1.0, ge=0.0)
    confounding: float = Field(1.0, ge=0.0)
    noise: float = Field(0.5, gt=0.0)
    cluster_effect: float = Field(0.5, ge=0.0)
    unobserved_confounding: float = Field(0.0, ge=0.0)
    instrument_strength: float = Field(1.0, ge=0.0)


class DataConfig(Section):
    """Where the data come from and what one row is.

    ``source: synthetic`` uses the built-in synthetic data (with known truth);
    ``source: file`` reads ``path`` (CSV, Parquet or Stata ``.dta``). A ``path`` given
    without ``source`` means ``source: file``; a ``path`` with ``source: synthetic`` is
    an error (the path would be ignored). ``max_levels`` bounds the levels of a text
    column among the controls, modifiers and firm types; ``encoding`` is the CSV file's
    text encoding (default: UTF-8, or GBK/GB18030 when the file is not UTF-8).
    ``mode: table`` means one row per unit with outcome and treatment already built;
    ``mode: panel`` means firm-year rows from which ``measures`` build the table;
    ``panel`` parameterises the built-in synthetic firm panel
    (:func:`vaer.data.synthetic.make_synthetic_panel`), ``synthetic`` the table.
    """

    source: Literal["file", "synthetic"] = "synthetic"
    path: Path | None = None
    mode: Literal["table", "panel"] = "table"
    synthetic: SyntheticTableConfig = SyntheticTableConfig()
    panel: SyntheticPanelConfig = SyntheticPanelConfig()
    min_firms_per_type: int = Field(20, ge=1)
    max_levels: int = Field(50, ge=2)
    encoding: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _path_implies_file(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("path") is None:
            return data
        source = data.get("source")
        if source is None:
            return {**data, "source": "file"}
        if source == "synthetic":
            raise ValueError(
                f"`data.path` ({data['path']}) is given but `data.source` is 'synthetic', "
                "which would ignore it: set `data.source: file` to read the file, or remove "
                "`data.path` to use the built-in synthetic data"
            )
        return data

    @model_validator(mode="after")
    def _check_source(self) -> DataConfig:
        if self.source == "file" and self.path is None:
            raise ValueError("`data.path` is required when `data.source` is 'file'")
        return self


class Roles(Section):
    """Column roles of a study (DESIGN.md section 3)."""

    unit: str
    outcome: str
    treatment: str
    controls: list[str] = []
    modifiers: list[str] = []
    firm_types: list[str] = []
    cluster: str | None = None
    instrument: str | None = None
    mechanisms: dict[str, list[str]] = {}
    # panel mode (see vaer.measures): year, export value, industry, city-year VA
    # components (the first is ICT-service employment for the location quotient) and
    # the firm's platform participation added to the city VA index
    time: str | None = None
    exports: str | None = None
    industry: str | None = None
    va_components: list[str] = []
    va_firm: str | None = None
    mediators: dict[str, list[str]] = {}
    # staggered policies (the did stage): the adoption year of the unit's city, 0 = never
    policy: str | None = None

    @model_validator(mode="after")
    def _check_roles(self) -> Roles:
        singles = {"unit": self.unit, "outcome": self.outcome, "treatment": self.treatment}
        if self.instrument is not None:
            singles["instrument"] = self.instrument
        seen: dict[str, str] = {}
        for role, column in singles.items():
            if column in seen:
                raise ValueError(
                    f"column '{column}' is given two roles ({seen[column]} and {role}); "
                    "each of unit, outcome, treatment and instrument needs its own column"
                )
            seen[column] = role
        for role in ("controls", "modifiers"):
            for column in getattr(self, role):
                if column in seen:
                    raise ValueError(
                        f"column '{column}' is both {seen[column]} and one of the {role}; "
                        f"remove it from `roles.{role}`"
                    )
        if not self.modifiers:
            raise ValueError(
                "`roles.modifiers` must name at least one column the effect may vary with"
            )
        return self

    @property
    def features(self) -> list[str]:
        """Modifiers then controls that are not also modifiers, in config order."""
        return list(dict.fromkeys([*self.modifiers, *self.controls]))

    def columns(self) -> dict[str, str]:
        """Every column a role names -> its role (the first, in the order of the fields)."""
        named: dict[str, str] = {}
        singles = ("unit", "outcome", "treatment", "instrument", "cluster", "time", "exports",
                   "industry", "va_firm", "policy")  # fmt: skip
        for role in singles:
            column = getattr(self, role)
            if column is not None:
                named.setdefault(column, role)
        for role in ("controls", "modifiers", "firm_types", "va_components"):
            for column in getattr(self, role):
                named.setdefault(column, f"one of the {role}")
        for role in ("mechanisms", "mediators"):
            for channel, columns in getattr(self, role).items():
                for column in columns:
                    named.setdefault(column, f"{role}.{channel}")
        return named

    def categorical_candidates(self) -> set[str]:
        """The columns that may hold categories: controls, modifiers, firm types,
        cluster and industry."""
        named = {*self.controls, *self.modifiers, *self.firm_types}
        return named | {c for c in (self.cluster, self.industry) if c is not None}


# --------------------------------------------------------------------- estimators


# Estimator specs live in vaer.config.estimators; re-exported here.
__all__ = [
    "CausalForestDMLParams",
    "CausalForestDMLSpec",
    "EstimatorSpec",
    "LinearDMLParams",
    "LinearDMLSpec",
    "NuisanceConfig",
    "TuneConfig",
    "estimator_label",
]


# ----------------------------------------------------------- tracking and report


class TrackingConfig(Section):
    """Where runs are logged. ``uri`` overrides ``MLFLOW_TRACKING_URI`` and the default
    ``sqlite:///mlruns/mlflow.db``; ``experiment`` defaults to the config's ``name``."""

    enabled: bool = True
    uri: str | None = None
    experiment: str | None = None


class ReportConfig(Section):
    """Where the run's tables and report are written (``out`` may use ``{run_name}`` and
    ``{run_id}``)."""

    out: str = "reports/{run_name}-{run_id}"
    formats: list[Literal["html", "csv", "latex", "xlsx", "pdf"]] = ["html", "csv", "latex", "xlsx"]
    language: str = "en"
    """The language of the report's own words (titles, summary, notes, axes): ``en``
    (default) or ``zh`` (simplified Chinese). Column names, labels and numbers are shown
    as they are in either."""

    @field_validator("language")
    @classmethod
    def _known_language(cls, language: str) -> str:
        if language not in ("en", "zh"):
            raise ValueError("must be `en` (English) or `zh` (simplified Chinese)")
        return language


class ExperimentConfig(Section):
    """A whole experiment: the single object that drives :func:`vaer.pipeline.run_experiment`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    roles: Roles
    nuisance: NuisanceConfig = NuisanceConfig()
    estimators: list[EstimatorSpec] = Field(min_length=1)
    measures: MeasuresConfig = MeasuresConfig()
    heterogeneity: HeterogeneityConfig = HeterogeneityConfig()
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()
    report: ReportConfig = ReportConfig()
    compute: ComputeConfig = ComputeConfig()
    robustness: RobustnessConfig = RobustnessConfig()
    attribution: AttributionConfig = AttributionConfig()
    did: DidConfig = DidConfig()
    labels: LabelsConfig = LabelsConfig({})
    """Display labels of columns and labels of their values (:mod:`vaer.config.labels`);
    a Stata file's own variable and value labels are read without it."""
    sweep: SweepConfig | None = None

    @model_validator(mode="after")
    def _unique_estimator_names(self) -> ExperimentConfig:
        labels = [estimator_label(spec) for spec in self.estimators]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(
                f"estimator names must be unique; {duplicated} appear twice: "
                "give each a distinct `name`"
            )
        self.robustness.check_against(self.data.mode, labels, list(self.roles.firm_types))
        check_instrument_for(self.estimators, self.roles.instrument)
        self.did.check_against(self.data.mode, self.roles.policy, self.roles.time)
        return self

    @model_validator(mode="after")
    def _check_labels(self) -> ExperimentConfig:
        self.labels.check_roles(self.roles.columns(), self.roles.categorical_candidates())
        return self

    @model_validator(mode="after")
    def _check_heterogeneity(self) -> ExperimentConfig:
        self.heterogeneity.check_roles(
            self.roles.firm_types,
            self.roles.modifiers,
            [estimator_label(s) for s in self.estimators],
        )
        return self
