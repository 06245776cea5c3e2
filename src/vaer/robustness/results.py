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
    "reference_se",
    "rule",
    "test_p",
    "level",
    "false_alarm",
    "passed",
]


def slug(text: str) -> str:
    """``text`` as a metric-name part: letters, digits and underscores only."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "all"


@dataclass(frozen=True)
class CheckResult:
    """One refutation: the re-estimated effect, its 95% CI and its test at a stated level.

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
    reference_se : float
        The reference's SE (0 for a fixed value such as a placebo's 0).
    rule : str
        The pass rule in words, with its false-alarm rate.
    test_p : float
        p-value of the row's test (:mod:`vaer.robustness.rules`; conservative for
        comparisons of two estimates).
    level : float
        The row's level: flagged when ``test_p <= level``. The rows of one check share
        its false-alarm budget (Bonferroni).
    false_alarm : float
        The check's nominal false-alarm rate: the share of runs in which any of its rows
        is flagged when the model is right and the SEs are valid is at most this.
    passed : bool
        True unless the row is flagged at ``level``.
    """

    check: str
    variant: str
    estimator: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    reference: float
    reference_se: float
    rule: str
    test_p: float
    level: float
    false_alarm: float
    passed: bool


def check_p_value(rows: list[CheckResult]) -> float:
    """The Bonferroni p-value of a check: the smallest ``test_p * false_alarm / level``
    over its rows (each row's p-value times the number of rows sharing the budget),
    capped at 1. The check is flagged exactly when this is at most ``false_alarm``."""
    if not rows:
        raise ValueError("a check needs at least one row")
    return min(1.0, min(r.test_p * r.false_alarm / r.level for r in rows))


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

    def tables(self) -> dict[str, pd.DataFrame]:
        """``robustness`` and, when it ran, ``sensitivity``."""
        tables = {"robustness": self.to_frame()}
        if self.sensitivity is not None:
            tables["sensitivity"] = self.sensitivity.to_frame()
        return tables

    def metrics(self) -> dict[str, float]:
        """``robustness.<check>[.<variant>].estimate/passed``, ``robustness.<check>.passed``
        (1 if no row of the check is flagged: a test at level ``false_alarm``),
        ``robustness.<check>.test_p`` (:func:`check_p_value`), sensitivity metrics and the
        stage's time."""
        out: dict[str, float] = {}
        by_check: dict[str, list[CheckResult]] = {}
        for check in self.checks:
            by_check.setdefault(check.check, []).append(check)
        for name, rows in by_check.items():
            out[f"robustness.{name}.passed"] = float(all(r.passed for r in rows))
            out[f"robustness.{name}.test_p"] = check_p_value(rows)
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
