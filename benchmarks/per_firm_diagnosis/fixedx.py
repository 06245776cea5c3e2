"""Fixed-x replicates of table150_h1 (diagnosis only): covariates, pilot and truth of seed
S; city shocks, VA noise and outcome noise redrawn per replicate (rng [S, 100 + r]).
Usage: PYTHONPATH=src python benchmarks/per_firm_diagnosis/fixedx.py S R OUT.parquet"""
import sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
import numpy as np, pandas as pd
import validity as V
from heldout_designs import HeldoutParams, make_heldout_table, write_heldout, VA_CITY_SD, VA_FIRM_SD
from vaer.config.loader import validate_config
from vaer.pipeline import run_experiment
from common import source_root
S, R, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = make_heldout_table(HeldoutParams(n_firms=4000, n_cities=150, heterogeneity=1.0), random_state=S)
f0 = held.frame
city = f0["city"].str[1:].astype(int).to_numpy()
units = f0["firm_id"].to_numpy()
tau = held.truth.tau_for(units)
dev, prod, infra = (f0[c].to_numpy() for c in ("city_gdp", "productivity", "city_infra"))
baseline = 0.6 * np.tanh(dev) + 0.4 * np.logaddexp(0.0, prod) + 0.25 * infra**2 + 0.015 * f0["firm_age"].to_numpy()
scale = 0.5 * (1.0 + 0.3 * (f0["size_band"] == "small").to_numpy())
frames = []
for r in range(R):
    t0 = time.time()
    rng = np.random.default_rng([S, 100 + r])
    va = held.va_mean + f0["pilot"].to_numpy() + rng.normal(scale=VA_CITY_SD, size=150)[city] + VA_FIRM_SD * rng.normal(size=len(f0))
    res = baseline + tau * va + rng.normal(scale=0.4, size=150)[city] + scale * rng.normal(size=len(f0))
    frame = f0.copy(); frame["va_index"] = va; frame["resilience"] = res
    h = held.__class__(frame=frame, truth=held.truth, params=held.params, va_mean=held.va_mean)
    with tempfile.TemporaryDirectory() as f:
        f = Path(f)
        base = V._table_raw(source_root(), write_heldout(h, f / "h.parquet"))
        raw = V.build_raw(base, V.DESIGNS["table150_h1"], S + r, f / "o", estimators=("causal_forest_dml",), stages=())
        rr = run_experiment(validate_config(raw))
        est = rr.estimation; e = est.estimators[0]
        u = np.asarray(est.units)
        idx = pd.Index(units).get_indexer(u)
        frames.append(pd.DataFrame({"rep": r, "unit": u, "tau": tau[idx], "tau_hat": e.tau_hat, "se": e.tau_se,
                                    "city": f0["city"].to_numpy()[idx], "base_used": e.model.base_used_}))
    print(r, f"{time.time()-t0:.0f}s", flush=True)
pd.concat(frames).to_parquet(out)
