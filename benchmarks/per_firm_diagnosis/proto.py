"""Prototype: binned cluster-honest calibration of the forest's per-firm intervals, on
tuning designs (designs.py, seeds < 1000) with oracle residuals.

Usage: PYTHONPATH=src python benchmarks/per_firm_diagnosis/proto.py DESIGN SEED0 NSEEDS OUT.parquet
DESIGN: nw_d_city (Nie-Wager D, n=4000, d=6, 150 random cities with a N(0, 0.4^2) outcome
shock), nw_b_city, wa_city, table (vaer's synthetic table, designs.synthetic_table).
"""
import sys, time
sys.path.insert(0, "benchmarks")
import numpy as np, pandas as pd
import designs as D
from vaer.config.estimators import CausalForestDMLParams
from vaer.estimators.registry import forest_of
from vaer.estimators.cluster_forest import causal_moments
from vaer.estimators.scores import continuous_dr_scores

name, seed0, nseeds, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
assert seed0 + nseeds <= 1000
frames = []
for seed in range(seed0, seed0 + nseeds):
    t0 = time.time()
    if name.endswith("_city"):
        base = name[:-5]
        if base == "wa":
            dd = D.wager_athey(n=4000, random_state=seed)
        else:
            dd = D.nie_wager(base[-1].upper(), n=4000, random_state=seed)
        rng = np.random.default_rng([seed, 7])
        clusters = rng.integers(0, 150, size=dd.n)
        y = dd.y + rng.normal(scale=0.4, size=150)[clusters]
    else:
        dd = D.synthetic_table(random_state=seed)
        clusters, y = dd.clusters, dd.y
    y_res, t_res = y - dd.m, dd.t - dd.e
    s2 = dd.e * (1 - dd.e) if dd.binary or set(np.unique(dd.t)) <= {0.0, 1.0} else None
    if s2 is None:  # continuous T: oracle E[Tr^2|X] unknown; a constant from the sample
        s2 = np.full(dd.n, np.mean(t_res**2))
    x = np.asarray(dd.x, dtype=np.float64)
    forest = forest_of(CausalForestDMLParams(), seed)
    forest.fit(x, causal_moments(y_res, t_res), clusters)
    th, var = forest.oob_ or forest.oob_predict_and_var(x, clusters)
    se = np.sqrt(var)
    g = continuous_dr_scores(th, y_res, t_res, s2)
    frames.append(pd.DataFrame({"seed": seed, "tau": dd.tau, "tau_hat": th, "se": se, "g": g,
                                "cluster": clusters, "base_used": forest.base_used_,
                                **{f"x{j}": x[:, j] for j in range(x.shape[1])}}))
    z = (th - dd.tau) / se
    print(seed, f"{time.time()-t0:.0f}s cov={(np.abs(z)<=1.96).mean():.3f} base={forest.base_used_}", flush=True)
pd.concat(frames).to_parquet(out)
