"""Fixed-x replicates of a tuning design (Nie-Wager D, seed S < 1000, n=4000, 150 random
cities with a N(0, 0.4^2) outcome shock): covariates fixed, T, noise and shocks redrawn;
forest on oracle residuals. Variants: default; leaf1 (min_samples_leaf 1, max_samples 0.5).
Usage: PYTHONPATH=src python benchmarks/per_firm_diagnosis/fixedx_nw.py S R OUT.parquet"""
import sys, time
sys.path.insert(0, "benchmarks")
import numpy as np, pandas as pd
import designs as D
from vaer.config.estimators import CausalForestDMLParams
from vaer.estimators.registry import forest_of
from vaer.estimators.cluster_forest import causal_moments
S, R, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
assert S < 1000
dd = D.nie_wager("D", n=4000, random_state=S)
b = dd.m - (dd.e - 0.5) * dd.tau
clusters = np.random.default_rng([S, 7]).integers(0, 150, size=dd.n)
variants = {"default": CausalForestDMLParams(),
            "leaf1": CausalForestDMLParams(min_samples_leaf=1, max_samples=0.5)}
frames = []
for r in range(R):
    rng = np.random.default_rng([S, 200 + r])
    t = (rng.random(dd.n) < dd.e).astype(float)
    y = b + (t - 0.5) * dd.tau + rng.normal(size=dd.n) + rng.normal(scale=0.4, size=150)[clusters]
    for name, p in variants.items():
        t0 = time.time()
        fo = forest_of(p, r)
        fo.fit(dd.x, causal_moments(y - dd.m, t - dd.e), clusters)
        th, var = fo.oob_ or fo.oob_predict_and_var(dd.x, clusters)
        frames.append(pd.DataFrame({"rep": r, "variant": name, "unit": np.arange(dd.n), "tau": dd.tau,
                                    "tau_hat": th, "se": np.sqrt(var), "city": clusters}))
        print(r, name, f"{time.time()-t0:.0f}s", flush=True)
pd.concat(frames).to_parquet(out)
