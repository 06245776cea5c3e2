"""Data subsets: the effect re-estimated on random subsets of clusters.

Whole clusters are kept or dropped, so the subsets respect the dependence the standard
errors allow for. A subset estimate differs from the full-sample one by sampling noise of
about ``SE * sqrt(1/fraction - 1)`` (half an SE at 80%), so nearly every subset estimate
should fall inside the full-sample 95% CI; the check passes if at least ``min_share`` do.

Reference: Sharma, A. and Kiciman, E. (2020), DoWhy, arXiv:2011.04216 (data subset refuter).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vaer.data.design import AnalysisData, subset
from vaer.estimators.results import AteEstimate
from vaer.robustness.plan import Plan, check_row
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult

CHECK = "data_subsets"


def data_subsets_plan(
    data: AnalysisData,
    full: AteEstimate,
    *,
    fraction: float,
    repeats: int,
    min_share: float,
    random_state: int,
) -> Plan:
    """``repeats`` refits on ``fraction`` of the clusters, and a summary row.

    Each subset row passes if its estimate lies inside the full-sample 95% CI; the summary
    row (variant ``all``: mean of the subset estimates, SD across subsets, and their range
    as the interval) passes if at least ``min_share`` of them do.

    Raises
    ------
    ValueError
        If ``fraction`` is not in (0, 1), ``repeats`` < 1, ``min_share`` not in (0, 1], or
        a subset would keep fewer than 2 clusters.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`fraction` must be in (0, 1); got {fraction}")
    if repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1; got {repeats}")
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"`min_share` must be in (0, 1]; got {min_share}")
    clusters = np.unique(data.clusters)
    n_keep = round(fraction * len(clusters))
    if n_keep < 2:
        raise ValueError(
            f"a subset of {fraction:.0%} of {len(clusters)} clusters keeps {n_keep}; "
            "cluster-robust SEs need at least 2: raise `fraction`"
        )
    rng = np.random.default_rng(random_state)
    datasets = tuple(
        subset(data, np.isin(data.clusters, rng.choice(clusters, n_keep, replace=False)))
        for _ in range(repeats)
    )
    inside_rule = f"inside the full-sample 95% CI [{full.ci_low:.3g}, {full.ci_high:.3g}]"

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        rows = [
            check_row(
                CHECK,
                f"subset {k + 1} ({fraction:.0%} of clusters)",
                refit.ate,
                reference=full.estimate,
                rule=inside_rule,
                passed=full.covers(refit.ate.estimate),
            )
            for k, refit in enumerate(refits)
        ]
        estimates = np.array([r.estimate for r in rows])
        share = float(np.mean([r.passed for r in rows]))
        summary = AteEstimate(
            estimator=full.estimator,
            estimand=full.estimand,
            estimate=float(estimates.mean()),
            se=float(estimates.std(ddof=1)) if len(estimates) > 1 else 0.0,
            ci_low=float(estimates.min()),
            ci_high=float(estimates.max()),
            n=full.n,
            se_type="spread across subsets",
        )
        rows.append(
            check_row(
                CHECK,
                "all",
                summary,
                reference=full.estimate,
                rule=f"at least {min_share:.0%} of {len(rows)} subset estimates {inside_rule} "
                f"(got {share:.0%})",
                passed=share >= min_share,
            )
        )
        return rows

    return Plan(CHECK, datasets, evaluate)
