"""Diagnosis of per-firm interval coverage of causal_forest_dml on a design.

Usage: PYTHONPATH=src python benchmarks/per_firm_diagnosis/diag_b.py DESIGN SEED0 NSEEDS OUT.parquet [variants]
DESIGN: table150_h1 (held-out; reporting, diagnosis only) or vaer_table (tuning: vaer's
synthetic table generator, seeds < 1000).
"""
import sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
import numpy as np, pandas as pd
import validity as V
from heldout_designs import HeldoutParams, make_heldout_table, write_heldout, MODIFIERS
from vaer.config.loader import validate_config
from vaer.pipeline import run_experiment
from vaer.estimators.registry import forest_of
from vaer.estimators.cluster_forest import causal_moments
from common import source_root

design, seed0, nseeds, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
variants = sys.argv[5].split(",") if len(sys.argv) > 5 else []
frames = []
for seed in range(seed0, seed0 + nseeds):
    t0 = time.time()
    with tempfile.TemporaryDirectory() as f:
        f = Path(f)
        d = V.DESIGNS["table150_h1"]
        held = make_heldout_table(HeldoutParams(n_firms=4000, n_cities=150, heterogeneity=1.0), random_state=seed)
        base = V._table_raw(source_root(), write_heldout(held, f / "h.parquet"))
        raw = V.build_raw(base, d, seed, f / "o", estimators=("causal_forest_dml",), stages=())
        res = run_experiment(validate_config(raw))
        cate = pd.read_csv(next(res.out_dir.rglob("cate.csv")))
        est = res.estimation
        r = est.estimators[0]
        model = r.model
        units = np.asarray(est.units)
        tau = held.truth.tau_for(units)
        fr = held.frame.set_index("firm_id").loc[units]
        df = pd.DataFrame({"seed": seed, "unit": units, "tau": tau, "tau_hat": r.tau_hat, "se": r.tau_se,
                           "city": fr["city"].to_numpy(), "base_used": model.base_used_})
        for m in MODIFIERS:
            df[m] = fr[m].to_numpy()
        c = cate[cate.estimator == cate.estimator.iloc[0]].set_index("unit").loc[units]
        assert np.allclose(c["tau_hat"], df["tau_hat"]), "cate.csv differs"
        df["ci_low"], df["ci_high"], df["interval"] = c["ci_low"].to_numpy(), c["ci_high"].to_numpy(), c["interval"].to_numpy()
        cache = est.cache
        nu = cache.continuous(r.params.cv)
        mom = causal_moments(nu.y_res, nu.t_res)
        for v in variants:
            p = r.params
            if v == "nobase":
                fo = forest_of(p.model_copy(update={"linear_base": False}), 0)  # seed as fit
            elif v == "base":
                fo = forest_of(p.model_copy(update={"linear_base": True}), 0)
            elif v == "leaf20":
                fo = forest_of(p.model_copy(update={"min_samples_leaf": 20}), 0)
            elif v == "trees1600":
                fo = forest_of(p.model_copy(update={"n_estimators": 1600}), 0)
            else:
                raise ValueError(v)
            fo.random_state = model.random_state
            fo.fit(cache.x, mom, cache.clusters)
            th, var = fo.oob_ or fo.oob_predict_and_var(cache.x, cache.clusters)
            df[f"tau_hat_{v}"], df[f"se_{v}"] = th, np.sqrt(var)
        df["losses"] = str(model.oob_losses_)
        frames.append(df)
        cov = ((df.ci_low <= df.tau) & (df.tau <= df.ci_high)).mean()
        print(seed, f"{time.time()-t0:.0f}s cov={cov:.3f} base={model.base_used_} {model.oob_losses_}", flush=True)
pd.concat(frames).to_parquet(out)
