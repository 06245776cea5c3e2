r"""Omitted-variable sensitivity of the average effect (Chernozhukov et al., 2022).

If a hidden confounder :math:`A` were added, the effect would move by at most

.. math:: |\theta_{\text{long}} - \theta| \le \rho\,\sqrt{c_y\,\frac{c_d}{1 - c_d}}\;S,
          \qquad S^2 = \sigma^2 \nu^2,

where :math:`c_y` is the share of the outcome's residual variance :math:`\sigma^2` that
:math:`A` explains (its partial :math:`R^2` with the outcome), :math:`c_d` the share of the
Riesz representer's second moment :math:`\nu^2` it explains (in the partially linear
model, of the treatment's residual variance), and :math:`|\rho| \le 1` the correlation of
the two gaps. :math:`\sigma^2` and :math:`\nu^2` come from econml's final stage of the
fitted model (``sensitivity_params`` of ``LinearDML``/``CausalForestDML``), which our models
fit on the run's cross-fitted residuals, so they are the run's residual moments.

The bounds are centred at each estimator's cluster-robust doubly robust ATE; the 95% CI of
a bound adds ``1.96 * (SE(ATE) + C * SE(S))`` (a conservative sum, ``C`` the factor in
front of :math:`S`, ``SE(S)`` by the delta method from econml's covariance of
:math:`(\sigma^2, \nu^2)`). The robustness value is the strength :math:`r = c_y = c_d`
(with :math:`\rho = 1`) at which the bound reaches the null value; the ``ci`` version asks
the bound's CI to reach it. Since :math:`r/\sqrt{1-r} = k` has the root
:math:`r = (\sqrt{k^4 + 4k^2} - k^2)/2`, both are closed form.

Benchmarks: dropping an observed control :math:`W_j` and refitting gives its implied
strengths :math:`c_y = (\sigma^2_{-j} - \sigma^2)/\sigma^2_{-j}` and
:math:`c_d = 1 - \nu^2_{-j}/\nu^2`, i.e. how strong a confounder "as strong as
:math:`W_j`" would be (DoubleML's ``sensitivity_benchmark``).

Reference: Chernozhukov, V., Cinelli, C., Newey, W., Sharma, A. and Syrgkanis, V. (2022),
Long story short: omitted variable bias in causal machine learning, NBER WP 30302.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vaer.estimators.results import AteEstimate
from vaer.robustness.refit import PlrSensitivity
from vaer.robustness.results import slug

SENSITIVITY_COLUMNS = [
    "estimator",
    "scenario",
    "cf_y",
    "cf_d",
    "rho",
    "estimate",
    "bias_bound",
    "bound_low",
    "bound_high",
    "ci_low",
    "ci_high",
    "covers_zero",
    "rv",
    "rv_ci",
    "rv_econml",
]
Z = float(stats.norm.ppf(0.975))


def _check_strength(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1); got {value}")


def confounding_factor(cf_y: float, cf_d: float, rho: float = 1.0) -> float:
    """The factor :math:`\\rho\\sqrt{c_y c_d/(1-c_d)}` in front of :math:`S`.

    Raises
    ------
    ValueError
        If ``cf_y`` or ``cf_d`` is outside [0, 1) or ``rho`` outside [-1, 1].
    """
    _check_strength("cf_y", cf_y)
    _check_strength("cf_d", cf_d)
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"`rho` must be in [-1, 1]; got {rho}")
    return abs(rho) * math.sqrt(cf_y * cf_d / (1.0 - cf_d))


def scale_and_se(params: PlrSensitivity) -> tuple[float, float]:
    """:math:`S = \\sqrt{\\sigma^2\\nu^2}` and its delta-method SE from econml's covariance.

    Raises
    ------
    ValueError
        If ``sigma2`` or ``nu2`` is not positive.
    """
    if params.sigma2 <= 0 or params.nu2 <= 0:
        raise ValueError(
            f"sigma2 and nu2 must be positive; got {params.sigma2} and {params.nu2}: "
            "check the nuisance fits"
        )
    scale = math.sqrt(params.sigma2 * params.nu2)
    grad = np.array(
        [
            0.5 * math.sqrt(params.nu2 / params.sigma2),
            0.5 * math.sqrt(params.sigma2 / params.nu2),
        ]
    )
    var = float(grad @ params.cov[1:, 1:] @ grad)
    return scale, math.sqrt(max(var, 0.0))


def _rv_from_ratio(k: float) -> float:
    """Root in [0, 1) of r / sqrt(1 - r) = k (0 if k <= 0)."""
    if k <= 0:
        return 0.0
    k2 = k * k
    return (math.sqrt(k2 * k2 + 4 * k2) - k2) / 2


def robustness_value(
    ate: AteEstimate, params: PlrSensitivity, *, null: float = 0.0, ci: bool = False
) -> float:
    """The confounding strength ``r = cf_y = cf_d`` (``rho = 1``) that moves the bound
    (``ci=False``) or the bound's 95% CI (``ci=True``) to ``null``; 0 if it is there already.

    Returns
    -------
    float in [0, 1)
    """
    scale, scale_se = scale_and_se(params)
    distance = abs(ate.estimate - null)
    if ci:
        return _rv_from_ratio((distance - Z * ate.se) / (scale + Z * scale_se))
    return _rv_from_ratio(distance / scale)


@dataclass(frozen=True)
class SensitivityBound:
    """Bounds on the effect for one confounding scenario.

    Attributes
    ----------
    estimator, scenario : str
    cf_y, cf_d, rho : float
        Confounding strengths (partial R^2 with the outcome and the Riesz representer).
    estimate : float
        The run's (doubly robust, cluster-robust) ATE.
    bias_bound : float
        Largest possible bias :math:`\\rho\\sqrt{c_y c_d/(1-c_d)} S`.
    bound_low, bound_high : float
        ``estimate -/+ bias_bound``.
    ci_low, ci_high : float
        95% confidence bounds of the bounds.
    """

    estimator: str
    scenario: str
    cf_y: float
    cf_d: float
    rho: float
    estimate: float
    bias_bound: float
    bound_low: float
    bound_high: float
    ci_low: float
    ci_high: float

    @property
    def covers_zero(self) -> bool:
        """Whether the bounds' CI contains 0 (the effect could be explained away)."""
        return self.ci_low <= 0.0 <= self.ci_high

    def covers(self, value: float) -> bool:
        """Whether the bounds' CI contains ``value``."""
        return self.ci_low <= value <= self.ci_high


def sensitivity_bound(
    ate: AteEstimate,
    params: PlrSensitivity,
    *,
    cf_y: float,
    cf_d: float,
    rho: float = 1.0,
    scenario: str = "",
) -> SensitivityBound:
    """Bounds on the effect if a hidden confounder had strengths ``(cf_y, cf_d)``.

    Parameters
    ----------
    ate : AteEstimate
        The estimate to bound.
    params : PlrSensitivity
        The run's residual moments (econml's sensitivity elements).
    cf_y, cf_d : float in [0, 1)
    rho : float in [-1, 1]
    scenario : str
        A name for the row.

    Raises
    ------
    ValueError
        On strengths outside [0, 1), ``rho`` outside [-1, 1] or non-positive moments.
    """
    factor = confounding_factor(cf_y, cf_d, rho)
    scale, scale_se = scale_and_se(params)
    bias = factor * scale
    half = Z * (ate.se + factor * scale_se)
    return SensitivityBound(
        estimator=ate.estimator,
        scenario=scenario or f"cf_y={cf_y:g}, cf_d={cf_d:g}",
        cf_y=cf_y,
        cf_d=cf_d,
        rho=rho,
        estimate=ate.estimate,
        bias_bound=bias,
        bound_low=ate.estimate - bias,
        bound_high=ate.estimate + bias,
        ci_low=ate.estimate - bias - half,
        ci_high=ate.estimate + bias + half,
    )


@dataclass(frozen=True)
class Benchmark:
    """Implied confounding strengths of one observed control (dropped and refitted)."""

    control: str
    cf_y: float
    cf_d: float


def benchmark_strengths(control: str, long: PlrSensitivity, short: PlrSensitivity) -> Benchmark:
    """Strengths of ``control`` from the fits with (``long``) and without it (``short``).

    ``cf_y = (sigma2_short - sigma2_long) / sigma2_short`` and
    ``cf_d = 1 - nu2_short / nu2_long``, both clipped to [0, 0.99].
    """
    cf_y = (short.sigma2 - long.sigma2) / short.sigma2
    cf_d = 1.0 - short.nu2 / long.nu2
    return Benchmark(
        control=control,
        cf_y=float(np.clip(cf_y, 0.0, 0.99)),
        cf_d=float(np.clip(cf_d, 0.0, 0.99)),
    )


@dataclass(frozen=True)
class EstimatorSensitivity:
    """Sensitivity of one estimator's ATE: bounds per scenario and robustness values."""

    estimator: str
    bounds: tuple[SensitivityBound, ...]
    rv: float
    rv_ci: float
    rv_econml: float


@dataclass(frozen=True)
class SensitivityResult:
    """The sensitivity analysis of a run.

    Attributes
    ----------
    estimators : tuple of EstimatorSensitivity
    benchmarks : tuple of Benchmark
        Implied strengths of each observed control (empty if not run).
    """

    estimators: tuple[EstimatorSensitivity, ...]
    benchmarks: tuple[Benchmark, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per estimator and scenario (``tables/sensitivity.csv``)."""
        rows = [
            {
                **{k: v for k, v in vars(bound).items()},
                "covers_zero": bound.covers_zero,
                "rv": item.rv,
                "rv_ci": item.rv_ci,
                "rv_econml": item.rv_econml,
            }
            for item in self.estimators
            for bound in item.bounds
        ]
        return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)

    def strongest_benchmark(self) -> Benchmark | None:
        """The control whose implied strengths give the widest bounds."""
        if not self.benchmarks:
            return None
        return max(self.benchmarks, key=lambda b: confounding_factor(b.cf_y, b.cf_d))

    def metrics(self) -> dict[str, float]:
        """``sensitivity.<estimator>.rv`` / ``.rv_ci`` / ``.rv_econml`` and the strongest
        benchmark's strengths."""
        out: dict[str, float] = {}
        for item in self.estimators:
            key = f"sensitivity.{slug(item.estimator)}"
            out[f"{key}.rv"] = item.rv
            out[f"{key}.rv_ci"] = item.rv_ci
            out[f"{key}.rv_econml"] = item.rv_econml
        strongest = self.strongest_benchmark()
        if strongest is not None:
            out["sensitivity.benchmark.cf_y"] = strongest.cf_y
            out["sensitivity.benchmark.cf_d"] = strongest.cf_d
        return out


def estimator_sensitivity(
    ate: AteEstimate,
    params: PlrSensitivity,
    *,
    cf_y: Sequence[float],
    cf_d: Sequence[float],
    rho: float,
    benchmarks: Sequence[Benchmark] = (),
    rv_econml: float = float("nan"),
) -> EstimatorSensitivity:
    """Bounds for every ``(cf_y, cf_d)`` pair and every benchmark, and robustness values."""
    bounds = [
        sensitivity_bound(ate, params, cf_y=cy, cf_d=cd, rho=rho) for cy in cf_y for cd in cf_d
    ]
    bounds += [
        sensitivity_bound(
            ate, params, cf_y=b.cf_y, cf_d=b.cf_d, rho=rho, scenario=f"as strong as {b.control}"
        )
        for b in benchmarks
    ]
    return EstimatorSensitivity(
        estimator=ate.estimator,
        bounds=tuple(bounds),
        rv=robustness_value(ate, params),
        rv_ci=robustness_value(ate, params, ci=True),
        rv_econml=rv_econml,
    )
