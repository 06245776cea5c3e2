"""Experiment configuration: pydantic models, YAML loading, overrides and error messages."""

from vaer.config.expand import SweepPlan, Variant, expand_sweep, load_sweep
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
from vaer.config.sweep import SweepConfig

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
    "SweepConfig",
    "SweepPlan",
    "SyntheticPanelConfig",
    "SyntheticTableConfig",
    "TrackingConfig",
    "Variant",
    "dump_config",
    "estimator_label",
    "expand_sweep",
    "load_experiment",
    "load_raw",
    "load_sweep",
    "validate_config",
]
