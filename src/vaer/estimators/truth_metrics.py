"""Accuracy of a run's estimates against known truth (synthetic data only)."""

from __future__ import annotations

import numpy as np

from vaer.data.truth import Truth
from vaer.estimators.results import EstimationResult


def truth_metrics(estimation: EstimationResult, truth: Truth) -> dict[str, float]:
    """Per estimator: ATE bias, whether the 95% CI covers the true ATE, CATE RMSE and its
    ratio to sd(true tau), and the correlation of ``tau_hat`` with the truth.

    Returns
    -------
    dict
        Keys ``<estimator>.<metric>`` plus ``true_ate`` and ``true_tau_sd``.
    """
    tau = truth.tau_for(estimation.units)
    true_ate = float(np.mean(tau))
    sd = float(np.std(tau))
    metrics: dict[str, float] = {"true_ate": true_ate, "true_tau_sd": sd}
    for result in estimation.estimators:
        rmse = float(np.sqrt(np.mean((result.tau_hat - tau) ** 2)))
        prefix = result.label
        metrics[f"{prefix}.ate_bias"] = result.ate.estimate - true_ate
        metrics[f"{prefix}.ate_covered"] = float(result.ate.covers(true_ate))
        metrics[f"{prefix}.cate_rmse"] = rmse
        metrics[f"{prefix}.cate_rmse_ratio"] = rmse / sd if sd > 0 else float("nan")
        if sd > 0 and np.std(result.tau_hat) > 0:
            metrics[f"{prefix}.cate_corr"] = float(np.corrcoef(result.tau_hat, tau)[0, 1])
    return metrics
