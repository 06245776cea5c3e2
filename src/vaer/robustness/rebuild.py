"""Refuters that rebuild the analysis table: placebo shock and alternative measures.

Both need the firm-year panel (``data.mode: panel``): the outcome of a calm window before
the first shock, or the outcome and VA index built another way. They see the panel only
through a :data:`Rebuild` callable, ``rebuild(variant) -> AnalysisData``, which the data
layer supplies for the run's panel and roles; in table mode there is none, and the
config refuses to enable them.

Reference: Martin, R., Sunley, P., Gardiner, B. and Tyler, P. (2016), How regions react to
recessions: resilience and the role of economic structure, *Regional Studies* 50(4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vaer.data.design import AnalysisData
from vaer.estimators.results import AteEstimate
from vaer.robustness.plan import Plan, check_row
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult

Rebuild = Callable[[str], AnalysisData]

PLACEBO_SHOCK = "placebo_shock"
ALTERNATIVE_MEASURES = "alternative_measures"


def placebo_shock_plan(rebuild: Rebuild, *, window: str) -> Plan:
    """One refit on the analysis table of a calm ``window``; passes if its 95% CI covers 0.

    Parameters
    ----------
    rebuild : callable
        ``rebuild(window)`` returns the analysis data built for that window.
    window : str
        Name of the calm (no-shock) window.
    """
    datasets = (rebuild(window),)

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        ate = refits[0].ate
        return [
            check_row(
                PLACEBO_SHOCK,
                f"window {window}",
                ate,
                reference=0.0,
                rule="no shock, no resilience effect: 95% CI covers 0",
                passed=ate.covers(0.0),
            )
        ]

    return Plan(PLACEBO_SHOCK, datasets, evaluate)


def alternative_measures_plan(
    rebuild: Rebuild, full: AteEstimate, *, variants: Sequence[str]
) -> Plan:
    """One refit per alternative outcome measure or VA index.

    A measure on another scale has another effect size, so the rule is qualitative: each
    passes if its estimate has the sign of the run's estimate and its 95% CI excludes 0.

    Raises
    ------
    ValueError
        If ``variants`` is empty.
    """
    if not variants:
        raise ValueError("`variants` must name at least one alternative measure")
    names = list(variants)
    datasets = tuple(rebuild(name) for name in names)
    sign = 1.0 if full.estimate >= 0 else -1.0
    rule = f"same sign as the estimate ({full.estimate:.3g}) and 95% CI excludes 0"

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        return [
            check_row(
                ALTERNATIVE_MEASURES,
                name,
                refit.ate,
                reference=full.estimate,
                rule=rule,
                passed=sign * refit.ate.estimate > 0 and not refit.ate.covers(0.0),
            )
            for name, refit in zip(names, refits, strict=True)
        ]

    return Plan(ALTERNATIVE_MEASURES, datasets, evaluate)
