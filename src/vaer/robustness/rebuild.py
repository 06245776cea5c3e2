"""Refuters that rebuild the analysis table: placebo shock and alternative measures.

Both need the firm-year panel (``data.mode: panel``): the outcome of a calm window before
the first shock, or the outcome and VA index built another way. They see the panel only
through a :data:`Rebuild` callable, ``rebuild(variant) -> AnalysisData``, which the data
layer supplies for the run's panel and roles; in table mode there is none, and the
config refuses to enable them.

Pass rules (:mod:`vaer.robustness.rules`): the placebo shock's effect is 0 when the model
is right, and its refit is tested for 0 with a t-test on G - 1 df at level ``alpha``. An
alternative measure of the same effect may have another scale but not another sign, so
each variant is a one-sided t-test of "same sign as the main estimate" at level
``alpha / variants``: it is flagged only when significantly of the opposite sign. Both
checks raise a false alarm in at most ``alpha`` of runs when the model is right and the
refits' SEs are valid. (The old alternative-measures rule also required significance,
which is a matter of power, not of a wrong model: a true effect measured more noisily is
not a refutation.)

Reference: Martin, R., Sunley, P., Gardiner, B. and Tyler, P. (2016), How regions react to
recessions: resilience and the role of economic structure, *Regional Studies* 50(4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vaer.data.design import AnalysisData
from vaer.estimators.results import AteEstimate
from vaer.robustness.plan import Plan, check_row, n_clusters
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult
from vaer.robustness.rules import row_level, sign_test, zero_test

Rebuild = Callable[[str], AnalysisData]

PLACEBO_SHOCK = "placebo_shock"
ALTERNATIVE_MEASURES = "alternative_measures"


def placebo_shock_plan(rebuild: Rebuild, *, window: str, alpha: float = 0.05) -> Plan:
    """One refit on the analysis table of a calm ``window``, tested for a zero effect at
    level ``alpha``.

    Parameters
    ----------
    rebuild : callable
        ``rebuild(window)`` returns the analysis data built for that window.
    window : str
        Name of the calm (no-shock) window.
    alpha : float
        False-alarm rate of the check when the model is right.

    Raises
    ------
    ValueError
        If ``alpha`` is not in (0, 0.5].
    """
    level = row_level(alpha, 1)
    datasets = (rebuild(window),)
    clusters = n_clusters(datasets[0])

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        ate = refits[0].ate
        verdict = zero_test(ate.estimate, ate.se, n_clusters=clusters, level=level)
        return [
            check_row(
                PLACEBO_SHOCK,
                f"window {window}",
                ate,
                reference=0.0,
                reference_se=0.0,
                rule=f"no shock, no resilience effect: |t| = {abs(verdict.statistic):.2f} vs "
                f"{verdict.critical:.2f} (t, {clusters - 1} df, level {level:.3g}); false "
                f"alarm {alpha:.0%} when the model is right",
                verdict=verdict,
                alpha=alpha,
            )
        ]

    return Plan(PLACEBO_SHOCK, datasets, evaluate)


def alternative_measures_plan(
    rebuild: Rebuild, full: AteEstimate, *, variants: Sequence[str], alpha: float = 0.05
) -> Plan:
    """One refit per alternative outcome measure or VA index, each tested for the sign of
    the run's estimate (one-sided, level ``alpha / len(variants)``).

    A measure on another scale has another effect size, so the rule is about the sign: a
    variant is flagged when its estimate is significantly of the opposite sign. Whether
    it is significant on its own is stated in the rule text.

    Raises
    ------
    ValueError
        If ``variants`` is empty or ``alpha`` is not in (0, 0.5].
    """
    if not variants:
        raise ValueError("`variants` must name at least one alternative measure")
    names = list(variants)
    level = row_level(alpha, len(names))
    datasets = tuple(rebuild(name) for name in names)
    sign = 1.0 if full.estimate >= 0 else -1.0
    word = "positive" if sign > 0 else "negative"

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        rows = []
        for name, data, refit in zip(names, datasets, refits, strict=True):
            ate = refit.ate
            clusters = n_clusters(data)
            verdict = sign_test(ate.estimate, ate.se, sign=sign, n_clusters=clusters, level=level)
            own = "excludes" if not ate.covers(0.0) else "covers"
            rows.append(
                check_row(
                    ALTERNATIVE_MEASURES,
                    name,
                    ate,
                    reference=full.estimate,
                    reference_se=full.se,
                    rule=f"not significantly of the opposite sign to the estimate "
                    f"({full.estimate:.3g}, {word}): one-sided t = {verdict.statistic:.2f} vs "
                    f"{verdict.critical:.2f} (level {level:.3g}); its 95% CI {own} 0; false "
                    f"alarm at most {alpha:.0%} when the model is right",
                    verdict=verdict,
                    alpha=alpha,
                )
            )
        return rows

    return Plan(ALTERNATIVE_MEASURES, datasets, evaluate)
