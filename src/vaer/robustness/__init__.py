"""Robustness: refuters (placebo treatment, random common cause, data subsets, leave one
group out, placebo shock, alternative measures) and omitted-variable sensitivity."""

from vaer.robustness.placebo_treatment import permute_within_cluster
from vaer.robustness.rebuild import Rebuild
from vaer.robustness.refit import PlrSensitivity, Refit, parallel_map, refit_many
from vaer.robustness.results import CheckResult, RobustnessResult
from vaer.robustness.sensitivity import (
    Benchmark,
    SensitivityBound,
    SensitivityResult,
    robustness_value,
    sensitivity_bound,
)
from vaer.robustness.stage import run_robustness

__all__ = [
    "Benchmark",
    "CheckResult",
    "PlrSensitivity",
    "Rebuild",
    "Refit",
    "RobustnessResult",
    "SensitivityBound",
    "SensitivityResult",
    "parallel_map",
    "permute_within_cluster",
    "refit_many",
    "robustness_value",
    "run_robustness",
    "sensitivity_bound",
]
