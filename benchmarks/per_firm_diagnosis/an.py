import sys, numpy as np, pandas as pd
d = pd.concat([pd.read_parquet(p) for p in sys.argv[1:]])
pd.set_option("display.width", 200)
def summ(d, th="tau_hat", se="se", label=""):
    e = d[th] - d.tau; z = e / d[se]
    cov = (z.abs() <= 1.96).mean()
    print(f"{label:10s} cov={cov:.3f} mean z={z.mean():+.3f} sd z={z.std():.3f} rmse={np.sqrt((e**2).mean()):.4f} mean se={d[se].mean():.4f} sd(err)={e.std():.4f} rms se={np.sqrt((d[se]**2).mean()):.4f}")
print("seeds", d.seed.nunique(), "firms", len(d))
summ(d, label="default")
for v in ("nobase", "base"):
    if f"tau_hat_{v}" in d: summ(d, f"tau_hat_{v}", f"se_{v}", v)
d["err"] = d.tau_hat - d.tau; d["z"] = d.err / d.se
d["dec"] = d.groupby("seed").tau.transform(lambda s: pd.qcut(s, 10, labels=False))
g = d.groupby("dec").agg(tau=("tau", "mean"), tau_hat=("tau_hat", "mean"), bias=("err", "mean"), sd_err=("err", "std"),
                         mean_se=("se", "mean"), mean_z=("z", "mean"), sd_z=("z", "std"),
                         cov=("z", lambda z: (z.abs() <= 1.96).mean()))
print("by decile of true tau (within seed)"); print(g.round(3).to_string())
d["ratio"] = d.err.abs() / d.se
print("share with |err|/se>1.96:", (d.ratio > 1.96).mean().round(3))
lvl = d.groupby("seed").err.mean(); print("per-seed mean err (level shift):", lvl.round(3).to_dict())
d["err_c"] = d.err - d.groupby("seed").err.transform("mean")
print("cov if level removed:", ((d.err_c / d.se).abs() <= 1.96).mean().round(3))
x = d.tau - d.groupby("seed").tau.transform("mean")
b = np.polyfit(x, d.err, 1); print("err = a + b*(tau - mean tau): b=", b[0].round(3), "(-1: flat, 0: unbiased)")
