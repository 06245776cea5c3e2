"""Random common cause: an independent standard-normal column added as a control.

The column is unrelated to everything, so conditioning on it must not change the
estimate beyond sampling noise of the nuisance fits; the rule asks the refit to stay
within one standard error of the run's estimate.

Reference: Sharma, A. and Kiciman, E. (2020), DoWhy, arXiv:2011.04216.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from vaer.data.design import AnalysisData
from vaer.estimators.results import AteEstimate
from vaer.robustness.plan import Plan, check_row
from vaer.robustness.refit import Refit
from vaer.robustness.results import CheckResult

CHECK = "random_common_cause"
COLUMN = "__random_common_cause"


def random_common_cause_plan(data: AnalysisData, full: AteEstimate, *, random_state: int) -> Plan:
    """One refit with a random control; passes if ``|refit - full| <= SE(full)``.

    Parameters
    ----------
    data : AnalysisData
    full : AteEstimate
        The run's estimate from the same estimator.
    random_state : int
    """
    rng = np.random.default_rng(random_state)
    w = data.w.copy()
    w[COLUMN] = rng.normal(size=data.n)
    rule = f"moves less than one SE ({full.se:.3g}) from the estimate {full.estimate:.3g}"

    def evaluate(refits: Sequence[Refit]) -> list[CheckResult]:
        ate = refits[0].ate
        return [
            check_row(
                CHECK,
                "N(0,1) control",
                ate,
                reference=full.estimate,
                rule=rule,
                passed=abs(ate.estimate - full.estimate) <= full.se,
            )
        ]

    return Plan(CHECK, (replace(data, w=w),), evaluate)
