"""Monte Carlo of vaer.did on the simulated staggered panel with known ATT(g, t).

Design: ``vaer.did.simulate.simulate_staggered`` (3 cohorts 2014/2015/2016 + never
treated, 10 years, city-year shocks sd 0.5, idiosyncratic sd 1, covariate-specific
trends so that only conditional parallel trends hold, dynamic effects) with
``n_units`` firms in ``n_clusters`` cities, seeds ``0..n_seeds-1``; method "dr" with
covariates x1, x2 and never-treated controls; 999 Mammen multiplier draws per seed.

Reports: pointwise 95% coverage of the city-clustered CIs of every ATT(g, t) (pooled
over cells, and the worst cell), of the event-time ATTs and of the simple ATT; the
coverage of the uniform (sup-t) band of the dynamic path (all event times at once);
the rejection rate of the pre-trend F test at 5% (its size: parallel trends hold); the
mean bias / mean SE of the post cells; and the same for an unbalanced panel (random
entry/exit); and the power of the pre-trend test when the estimator ignores the
covariates (unconditional parallel trends fail).

Usage: ``PYTHONPATH=src python benchmarks/did_coverage.py [n_seeds] [n_units] [n_clusters]``
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy.stats import norm

from vaer.did import PanelColumns, aggregate, att_gt, pretrend_test
from vaer.did.simulate import simulate_staggered


def one_seed(seed: int, n_units: int, n_clusters: int, unbalanced: bool) -> dict[str, object]:
    frame, truth = simulate_staggered(n_units, n_clusters, unbalanced=unbalanced, random_state=seed)
    result = att_gt(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
        covariates=["x1", "x2"],
        method="dr",
    )
    z = norm.ppf(0.975)
    true_gt = truth.att_gt(result.group, result.time)
    cover_gt = np.abs(result.att - true_gt) <= z * result.se
    dyn = aggregate(result, "dynamic", n_boot=999, random_state=seed)
    true_e = np.array([truth.dynamic(int(e)) for e in dyn.keys])
    cover_e = np.abs(dyn.estimate - true_e) <= z * dyn.se
    band = bool(np.all(np.abs(dyn.estimate - true_e) <= dyn.crit_value * dyn.se))
    simple = aggregate(result, "simple")
    cover_simple = abs(simple.overall_estimate - truth.simple()) <= z * simple.overall_se
    pre = pretrend_test(dyn)
    return {
        "cells": list(zip(result.group, result.time, strict=True)),
        "cover_gt": cover_gt,
        "err_gt": result.att - true_gt,
        "se_gt": result.se,
        "post": result.post,
        "cover_e": cover_e,
        "band": band,
        "cover_simple": cover_simple,
        "reject_pre": pre.p_value < 0.05,
        "reject_pre_chi2": pre.p_chi2 < 0.05,
        "crit": dyn.crit_value,
    }


def run(n_seeds: int, n_units: int, n_clusters: int, unbalanced: bool) -> None:
    start = time.perf_counter()
    rows = [one_seed(s, n_units, n_clusters, unbalanced) for s in range(n_seeds)]
    took = time.perf_counter() - start
    same = [r for r in rows if r["cells"] == rows[0]["cells"]]
    cover_gt = np.array([r["cover_gt"] for r in same])
    err = np.array([r["err_gt"] for r in same])
    se = np.array([r["se_gt"] for r in same])
    post = np.asarray(same[0]["post"])
    label = "unbalanced" if unbalanced else "balanced"
    print(f"\n== {label}: {n_seeds} seeds, {n_units} firms, {n_clusters} cities ({took:.0f} s)")
    print(f"  ATT(g,t) coverage pooled over {cover_gt.shape[1]} cells: {cover_gt.mean():.4f}")
    per_cell = cover_gt.mean(axis=0)
    print(f"  ATT(g,t) coverage per cell: min {per_cell.min():.3f} max {per_cell.max():.3f}")
    mc_se = err.std(axis=0, ddof=1) / np.sqrt(len(err))
    t_bias = err.mean(axis=0) / mc_se
    print(
        f"  post cells: mean |bias| {np.abs(err.mean(axis=0))[post].mean():.4f}, "
        f"max |bias|/MC-se {np.abs(t_bias[post]).max():.2f}, "
        f"mean SE / sd(est) {(se.mean(axis=0) / err.std(axis=0, ddof=1))[post].mean():.3f}"
    )
    cover_e = np.concatenate([r["cover_e"] for r in rows])
    print(f"  event-time coverage (pooled): {cover_e.mean():.4f}")
    print(f"  dynamic uniform band coverage: {np.mean([r['band'] for r in rows]):.4f}")
    print(f"  mean sup-t critical value: {np.mean([r['crit'] for r in rows]):.3f}")
    print(f"  simple ATT coverage: {np.mean([r['cover_simple'] for r in rows]):.4f}")
    print(
        f"  pre-trend test size at 5%: F {np.mean([r['reject_pre'] for r in rows]):.4f}, "
        f"chi2 {np.mean([r['reject_pre_chi2'] for r in rows]):.4f}"
    )


def pretrend_power(n_seeds: int, n_units: int, n_clusters: int) -> None:
    """Rejection rate of the 5% pre-trend F test when parallel trends are broken.

    Same design, but the estimator ignores the covariates, so the covariate-specific
    trend (``trend=0.3``, and a stronger 1.0) makes unconditional parallel trends fail.
    """
    for trend in (0.3, 1.0):
        rejections = []
        for seed in range(n_seeds):
            frame, _ = simulate_staggered(n_units, n_clusters, trend=trend, random_state=seed)
            result = att_gt(
                frame,
                PanelColumns(
                    unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"
                ),
            )
            rejections.append(pretrend_test(result).p_value < 0.05)
        print(
            f"  pre-trend test power at 5% (no covariates, trend {trend}): "
            f"{np.mean(rejections):.4f} over {n_seeds} seeds"
        )


def main() -> None:
    n_seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    n_units = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    n_clusters = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    run(n_seeds, n_units, n_clusters, unbalanced=False)
    run(n_seeds, n_units, n_clusters, unbalanced=True)
    pretrend_power(n_seeds, n_units, n_clusters)


if __name__ == "__main__":
    main()
