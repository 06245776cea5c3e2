"""Frozen result objects of the robustness stage: one row per refutation, and the stage's
whole result with its tables and metrics.

Each check is a test at its false-alarm rate (its rows share it by Bonferroni:
:func:`check_p_value`). A run has several checks, so "some check is flagged" happens by
chance more often than any one check's rate. The **family verdict** adjusts the checks'
p-values by Holm's (1979) step-down method, valid under any dependence between checks: the
model is flagged by the family when a check's Holm p-value is at most the false-alarm rate,
which happens in at most that share of runs when the model is right and every check's test
is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vaer.heterogeneity.multiple_testing import holm

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
    "check_p",
    "family_p",
]
"""``check_p``: the row's check's p-value (:func:`check_p_value`); ``family_p``: that
p-value Holm-adjusted over the run's checks (:func:`family_p_values`)."""


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


def rows_by_check(checks: tuple[CheckResult, ...]) -> dict[str, list[CheckResult]]:
    """The rows of each check, in the order the checks first appear."""
    by_check: dict[str, list[CheckResult]] = {}
    for row in checks:
        by_check.setdefault(row.check, []).append(row)
    return by_check


def family_p_values(checks: tuple[CheckResult, ...]) -> dict[str, tuple[float, float]]:
    """Each check's p-value and its Holm-adjusted p-value over the run's checks.

    Parameters
    ----------
    checks : tuple of CheckResult
        The rows of every check.

    Returns
    -------
    dict
        Check name -> ``(check_p, family_p)``, in the order the checks first appear.
    """
    by_check = rows_by_check(checks)
    check_p = np.array([check_p_value(rows) for rows in by_check.values()])
    family_p = holm(check_p)
    return {
        name: (float(p), float(q)) for name, p, q in zip(by_check, check_p, family_p, strict=True)
    }


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
        """The refutation table (``tables/robustness.csv``), one row per refit, with its
        check's p-value and family (Holm) p-value."""
        family = family_p_values(self.checks)
        rows = []
        for row in self.checks:
            check_p, family_p = family[row.check]
            rows.append({**vars(row), "check_p": check_p, "family_p": family_p})
        return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)

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
        ``robustness.<check>.test_p`` (:func:`check_p_value`), the family verdict
        ``robustness.family.test_p`` (the smallest Holm-adjusted check p-value) and
        ``robustness.family.passed`` (1 unless it is at most the false-alarm rate),
        sensitivity metrics and the stage's time."""
        out: dict[str, float] = {}
        if self.checks:
            smallest = min(q for _, q in family_p_values(self.checks).values())
            out["robustness.family.test_p"] = smallest
            alpha = min(c.false_alarm for c in self.checks)
            out["robustness.family.passed"] = float(not smallest <= alpha)
        for name, rows in rows_by_check(self.checks).items():
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
