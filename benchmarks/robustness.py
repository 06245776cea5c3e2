"""Robustness benchmark: placebo coverage, random common cause and sensitivity bounds.

For ``--seeds`` synthetic tables (``--n-units`` firms in ``--n-clusters`` cities), fits
``linear_dml`` (LightGBM nuisances, 3 folds), then

* the permutation placebo (treatment deviations permuted within city): share of seeds
  its rule flags (t-test of 0 on G - 1 df at 5%; target <= 5%, with the share whose
  normal 95% CI misses 0 beside it);
* the random common cause: share of seeds its rule flags (the refit against the run's
  estimate with the SE of the difference bounded by ``sqrt(se_refit**2 + se_run**2)``, at
  5%; target <= 5%), and the mean shift in SEs;
* with the unobserved confounder at strength ``--gamma`` (ridge nuisances, the right
  first stage for VA here): coverage of the true ATE by the ordinary CI and by the 95%
  sensitivity bounds at the confounder's own strengths, and the robustness value with and
  without the confounder.

Run: ``PYTHONPATH=src python benchmarks/robustness.py`` (about 5-10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log_benchmark, update_results_section
from vaer.config.models import LinearDMLSpec, NuisanceConfig, Roles, SyntheticTableConfig
from vaer.data import build_analysis_data, make_synthetic_table
from vaer.data.synthetic_table import CONTROLS, MODIFIERS
from vaer.estimators import fit_estimators
from vaer.robustness import parallel_map, robustness_value, sensitivity_bound
from vaer.robustness.placebo_treatment import placebo_treatment_plan
from vaer.robustness.random_common_cause import random_common_cause_plan
from vaer.robustness.refit import plr_sensitivity, refit_many

ROLES = Roles(
    unit="firm_id",
    outcome="resilience",
    treatment="va_index",
    cluster="city",
    controls=CONTROLS,
    modifiers=MODIFIERS,
    firm_types=["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
)
SPEC = LinearDMLSpec.model_validate({"kind": "linear_dml", "params": {"cv": 3}})
V0 = 0.5**2 + 0.3 * 0.7 + 1.0  # Var(VA | X, W, U) in the generator (instrument strength 1)


def one_seed(args: tuple[int, int, int, float]) -> dict[str, float]:
    seed, n_units, n_clusters, gamma = args
    lgbm = NuisanceConfig()
    cfg = SyntheticTableConfig(n_units=n_units, n_clusters=n_clusters)
    data = build_analysis_data(make_synthetic_table(cfg, random_state=seed).frame, ROLES)
    full = fit_estimators(data, [SPEC], lgbm, random_state=seed).estimators[0]
    placebo = placebo_treatment_plan(data, repeats=1, random_state=seed + 1)
    rcc = random_common_cause_plan(data, full.ate, random_state=seed + 2)
    refits = refit_many([*placebo.datasets, *rcc.datasets], SPEC, lgbm, random_state=seed)
    (p_row,) = placebo.evaluate(refits[:1])
    (r_row,) = rcc.evaluate(refits[1:])

    out = {
        "placebo_estimate": p_row.estimate,
        "placebo_flagged": float(not p_row.passed),
        "placebo_ci_misses0": float(not p_row.ci_low <= 0.0 <= p_row.ci_high),
        "rcc_flagged": float(not r_row.passed),
        "rcc_shift_in_se": abs(r_row.estimate - full.ate.estimate) / full.ate.se,
    }
    ridge = NuisanceConfig(model="ridge")
    for label, g in (("clean", 0.0), ("hidden", gamma)):
        table = make_synthetic_table(
            cfg.model_copy(update={"unobserved_confounding": g}), random_state=seed
        )
        d = build_analysis_data(table.frame, ROLES)
        fit = fit_estimators(d, [SPEC], ridge, random_state=seed).estimators[0]
        params = plr_sensitivity(fit.model)
        assert params is not None
        truth = float(np.mean(table.truth.tau))
        cf_d = g**2 / (V0 + g**2)
        cf_y = g**2 * V0 / (V0 + g**2) / params.sigma2
        bound = sensitivity_bound(fit.ate, params, cf_y=cf_y, cf_d=cf_d)
        out[f"{label}_ci_covers_truth"] = float(fit.ate.covers(truth))
        out[f"{label}_bounds_cover_truth"] = float(bound.covers(truth))
        out[f"{label}_bias"] = fit.ate.estimate - truth
        out[f"{label}_rv"] = robustness_value(fit.ate, params)
        out[f"{label}_rv_vs_truth"] = robustness_value(fit.ate, params, null=truth)
        out[f"{label}_bias_bound"] = bound.bias_bound
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--n-units", type=int, default=1500)
    parser.add_argument("--n-clusters", type=int, default=40)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    tasks = [(seed, args.n_units, args.n_clusters, args.gamma) for seed in range(args.seeds)]
    rows = parallel_map(one_seed, tasks, args.n_jobs)
    seconds = time.perf_counter() - started
    keys = rows[0].keys()
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    n = args.seeds
    binom_se = np.sqrt(0.95 * 0.05 / n)
    m = mean
    table = [
        (
            "permutation placebo (within city): flagged at 5% (t, G - 1 df)",
            f"{m['placebo_flagged']:.1%} (normal 95% CI misses 0: "
            f"{m['placebo_ci_misses0']:.1%}; mean placebo estimate {m['placebo_estimate']:+.3f})",
            f"<= 5% (+/- {binom_se:.1%} Monte Carlo)",
        ),
        (
            "random common cause: flagged at 5% (SE of the difference bounded)",
            f"{m['rcc_flagged']:.1%} (mean |shift| {m['rcc_shift_in_se']:.2f} SE)",
            "<= 5%",
        ),
        (
            "no hidden confounder: CI covers true ATE",
            f"{m['clean_ci_covers_truth']:.1%} (mean bias {m['clean_bias']:+.3f})",
            "~95%",
        ),
        (
            f"hidden confounder (gamma={args.gamma}): CI covers true ATE",
            f"{m['hidden_ci_covers_truth']:.1%} (mean bias {m['hidden_bias']:+.3f})",
            "low (biased)",
        ),
        (
            "hidden confounder: 95% sensitivity bounds at U's strengths cover true ATE",
            f"{m['hidden_bounds_cover_truth']:.1%} (mean bias bound {m['hidden_bias_bound']:.3f})",
            ">= 95%",
        ),
        (
            "robustness value vs 0, without / with U",
            f"{m['clean_rv']:.3f} / {m['hidden_rv']:.3f}",
            "U pushes the estimate away from 0",
        ),
        (
            "robustness value vs the true ATE, without / with U",
            f"{m['clean_rv_vs_truth']:.3f} / {m['hidden_rv_vs_truth']:.3f}",
            "small / large",
        ),
    ]
    lines = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in table)
    md = (
        "## Robustness: placebo, random common cause, sensitivity bounds "
        "(`benchmarks/robustness.py`)\n\n"
        f"{n} seeds of the synthetic table ({args.n_units} firms, {args.n_clusters} cities), "
        f"`linear_dml` (LightGBM nuisances, 3 cluster-grouped folds); {seconds:.0f} s wall.\n\n"
        "| check | result | target |\n|---|---|---|\n"
        f"{lines}\n\n"
        "Sensitivity rows use ridge nuisances (E[VA | X, W] is linear in the generator), so "
        "U's strengths are known in closed form: cf_d = g^2/(V0+g^2), "
        f"cf_y = g^2 V0/(V0+g^2)/sigma2, V0 = {V0:.2f}.\n"
    )
    update_results_section("robustness", md)
    log_benchmark("robustness", {**mean, "seconds": seconds}, vars(args))
    print(md)


if __name__ == "__main__":
    main()
