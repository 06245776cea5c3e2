"""Experiment configuration: pydantic models, YAML loading, overrides and error messages."""

from vaer.config.loader import ConfigError, dump_config, load_experiment, load_raw, validate_config
from vaer.config.models import (
    CausalForestDMLSpec,
    DataConfig,
    EstimatorSpec,
    ExperimentConfig,
    LinearDMLSpec,
    ReportConfig,
    Roles,
    SyntheticTableConfig,
    TrackingConfig,
    estimator_label,
)
from vaer.config.panel import MeasuresConfig, ShockWindow, SyntheticPanelConfig

__all__ = [
    "CausalForestDMLSpec",
    "ConfigError",
    "DataConfig",
    "EstimatorSpec",
    "ExperimentConfig",
    "LinearDMLSpec",
    "MeasuresConfig",
    "ReportConfig",
    "Roles",
    "ShockWindow",
    "SyntheticPanelConfig",
    "SyntheticTableConfig",
    "TrackingConfig",
    "dump_config",
    "estimator_label",
    "load_experiment",
    "load_raw",
    "validate_config",
]
