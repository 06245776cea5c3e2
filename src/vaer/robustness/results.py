"""Frozen result objects of the robustness stage: one row per refutation, and the stage's
whole result with its tables and metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from vaer.robustness.sensitivity import SensitivityResult

ROBUSTNESS_COLUMNS = [
    "check",
    "variant",
    "estimator",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "reference",
    "rule",
    "passed",
]


def slug(text: str) -> str:
    """``text`` as a metric-name part: letters, digits and underscores only."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "all"


@dataclass(frozen=True)
class CheckResult:
    """One refutation: the re-estimated effect, its 95% CI and whether it passed.

    Attributes
    ----------
    check : str
        Refuter name, e.g. ``placebo_treatment``.
    variant : str
        Which modification (``permutation 1``, ``ownership=SOE``, ``all``...).
    estimator : str
        Label of the estimator that was refitted.
    estimate, se, ci_low, ci_high : float
        The re-estimated average effect, its cluster-robust SE and 95% CI.
    reference : float
        The value the rule compares with (0 for placebos, the full-sample estimate...).
    rule : str
        The pass rule in words.
    passed : bool
    """

    check: str
    variant: str
    estimator: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    reference: float
    rule: str
    passed: bool


@dataclass(frozen=True)
class RobustnessResult:
    """Every refutation and the omitted-variable sensitivity analysis of one run.

    Attributes
    ----------
    checks : tuple of CheckResult
    sensitivity : SensitivityResult or None
    seconds : float
        Wall time of the stage.
    n_units : int or None
        Units the refuters refitted on (fewer than the run's when ``robustness.max_units``
        caps them).
    """

    checks: tuple[CheckResult, ...]
    sensitivity: SensitivityResult | None
    seconds: float
    n_units: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """The refutation table (``tables/robustness.csv``), one row per refit."""
        return pd.DataFrame([vars(c) for c in self.checks], columns=ROBUSTNESS_COLUMNS)

    def sensitivity_frame(self) -> pd.DataFrame | None:
        """The sensitivity table (``tables/sensitivity.csv``), or None if not run."""
        return None if self.sensitivity is None else self.sensitivity.to_frame()

    def metrics(self) -> dict[str, float]:
        """``robustness.<check>[.<variant>].estimate/passed``, ``robustness.<check>.passed``
        (1 if every row of the check passed), sensitivity metrics and the stage's time."""
        out: dict[str, float] = {}
        by_check: dict[str, list[CheckResult]] = {}
        for check in self.checks:
            by_check.setdefault(check.check, []).append(check)
        for name, rows in by_check.items():
            out[f"robustness.{name}.passed"] = float(all(r.passed for r in rows))
            if len(rows) == 1:
                out[f"robustness.{name}.estimate"] = rows[0].estimate
                continue
            for row in rows:
                key = f"robustness.{name}.{slug(row.variant)}"
                out[f"{key}.estimate"] = row.estimate
                out[f"{key}.passed"] = float(row.passed)
        if self.sensitivity is not None:
            out.update(self.sensitivity.metrics())
        if self.n_units is not None:
            out["robustness.n_units"] = float(self.n_units)
        out["time.robustness"] = self.seconds
        return out
