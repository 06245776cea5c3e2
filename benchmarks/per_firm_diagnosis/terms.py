import sys, numpy as np, pandas as pd
sys.path.insert(0, "benchmarks")
from heldout_designs import effect_terms, MODIFIERS
d = pd.concat([pd.read_parquet(p) for p in sys.argv[1:]]).reset_index(drop=True)
T = effect_terms(d)
used = [c for c in T if T[c].std() > 0]
Tc = T[used] - T[used].groupby(d.seed).transform("mean")
err = d.tau_hat - d.tau
errc = err - err.groupby(d.seed).transform("mean")
X = Tc.to_numpy()
coef, *_ = np.linalg.lstsq(X, errc.to_numpy(), rcond=None)
print("err (seed-centred) regressed on the true effect terms f_j (centred): -1 = flattened, 0 = recovered")
for c, b in zip(used, coef): print(f"  {c:18s} {b:+.3f}  sd(f_j)={T[c].std():.3f}")
fit = X @ coef
res = errc - fit
print(f"var(err)={err.var():.4f}  level(seed) var={err.groupby(d.seed).transform('mean').var():.4f}  explained by terms={fit.var():.4f}  residual var={res.var():.4f}  mean se^2={np.mean(d.se**2):.4f}")
z_res = res / d.se
print("coverage if the term-explained bias and the seed level were removed:", (z_res.abs() <= 1.96).mean().round(3), "sd z", z_res.std().round(3))
# coverage by supplier_div tail
for name, q in (("supplier_div", [-9, -2, -1, 1, 2, 9]), ("digital_skills", [-9, -1.3, 0, 1.3, 9]), ("logistics_access", [-1.5, -0.75, 0, 0.75, 1.5]), ("demand_info", [-9, 0.8, 9])):
    b = pd.cut(d[name], q)
    cov = ((err.abs() <= 1.96 * d.se)).groupby(b, observed=True).mean()
    bias = err.groupby(b, observed=True).mean()
    n = err.groupby(b, observed=True).size()
    print(name, " | ".join(f"{k}: n={n[k]} bias={bias[k]:+.3f} cov={cov[k]:.2f}" for k in cov.index))
for name in ("ownership", "trade_regime", "tech_level"):
    g = d.groupby(name)
    print(name, " | ".join(f"{k}: bias={(err[idx]).mean():+.3f} cov={(err[idx].abs() <= 1.96*d.se[idx]).mean():.2f}" for k, idx in g.groups.items()))
# city-level: error correlation within city
d["errc"] = errc
cm = d.groupby(["seed", "city"]).errc.agg(["mean", "size"])
big = cm[cm["size"] >= 20]
print("within-city mean err: sd over cities with >=20 firms", big["mean"].std().round(4), "vs sd(err)/sqrt(size) avg", (errc.std() / np.sqrt(big["size"])).mean().round(4))
