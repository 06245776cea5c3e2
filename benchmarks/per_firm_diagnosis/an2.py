import sys, numpy as np, pandas as pd
d = pd.concat([pd.read_parquet(p) for p in sys.argv[1:]])
key = "seed" if "seed" in d else "rep"
d["err"] = d.tau_hat - d.tau; d["z"] = d.err / d.se
print(f"cov={(d.z.abs()<=1.96).mean():.3f} var(err)={d.err.var():.4f} mean se^2={np.mean(d.se**2):.4f} ratio sd={np.sqrt(d.err.var()/np.mean(d.se**2)):.2f}")
d["dec"] = d.groupby(key).tau.transform(lambda s: pd.qcut(s.rank(method='first'), 10, labels=False))
g = d.groupby("dec").agg(tau=("tau","mean"), bias=("err","mean"), sd_err=("err","std"), mean_se=("se","mean"), mean_z=("z","mean"), sd_z=("z","std"), cov=("z", lambda z:(z.abs()<=1.96).mean()))
print(g.round(3).to_string())
