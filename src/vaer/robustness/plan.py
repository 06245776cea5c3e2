"""A refuter's plan: the modified data sets to refit, and how to judge the refits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vaer.data.design import AnalysisData
from vaer.estimators.results import AteEstimate
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult
from vaer.robustness.rules import Verdict

Evaluate = Callable[[Sequence[Refit]], list[CheckResult]]


@dataclass(frozen=True)
class Plan:
    """What one refuter needs refitted and how its refits are judged.

    Attributes
    ----------
    check : str
        Refuter name.
    datasets : tuple of AnalysisData
        Modified copies of the run's data, refitted in parallel with every other plan's.
    evaluate : callable
        Turns the refits (in the order of ``datasets``) into rows of the robustness table.
    """

    check: str
    datasets: tuple[AnalysisData, ...]
    evaluate: Evaluate


def check_row(
    check: str,
    variant: str,
    ate: AteEstimate,
    *,
    reference: float,
    reference_se: float,
    rule: str,
    verdict: Verdict,
    alpha: float,
) -> CheckResult:
    """A row of the robustness table from a re-estimated effect and its test.

    ``alpha`` is the false-alarm rate of the whole check (its rows share it).
    """
    return CheckResult(
        check=check,
        variant=variant,
        estimator=ate.estimator,
        estimate=ate.estimate,
        se=ate.se,
        ci_low=ate.ci_low,
        ci_high=ate.ci_high,
        reference=reference,
        reference_se=reference_se,
        rule=rule,
        test_p=verdict.p_value,
        level=verdict.level,
        false_alarm=alpha,
        passed=verdict.passed,
    )


def n_clusters(data: AnalysisData) -> int:
    """Number of clusters of ``data``."""
    return len(np.unique(data.clusters))
