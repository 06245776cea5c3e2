"""Bias/variance decomposition at fixed x over replicates."""
import sys, numpy as np, pandas as pd
d = pd.read_parquet(sys.argv[1])
groups = d.groupby("variant") if "variant" in d else [("default", d)]
for name, v in groups:
    g = v.groupby("unit").agg(tau=("tau", "first"), m=("tau_hat", "mean"), sd=("tau_hat", "std"),
                              se=("se", "mean"), rmsse=("se", lambda s: np.sqrt(np.mean(s**2))))
    R = v.rep.nunique()
    v = v.merge(g[["m"]], left_on="unit", right_index=True)
    cov = ((v.tau_hat - v.tau).abs() <= 1.96 * v.se).mean()
    cov_mean = ((v.tau_hat - v.m).abs() <= 1.96 * v.se).mean()
    bias = g.m - g.tau
    # MC noise of the mean over R replicates inflates bias^2 by sd^2/R: subtract it
    b2 = np.mean(bias**2) - np.mean(g.sd**2) / R
    print(f"[{name}] R={R} firms={len(g)} coverage of tau={cov:.3f}; coverage of E[tau_hat|x]={cov_mean:.3f}")
    print(f"   mean SD over reps of tau_hat at fixed x={g.sd.mean():.4f}  rms SD={np.sqrt(np.mean(g.sd**2)):.4f}  mean se={g.se.mean():.4f}  rms se={np.sqrt(np.mean(g.rmsse**2)):.4f}")
    print(f"   mean bias^2 (MC-corrected)={b2:.4f} (rms bias {np.sqrt(max(b2,0)):.4f}); mean var={np.mean(g.sd**2):.4f}; mean se^2={np.mean(g.rmsse**2):.4f}")
    g["dec"] = pd.qcut(g.tau.rank(method="first"), 10, labels=False)
    g["bias"] = bias; g["absb_se"] = bias.abs() / g.se
    t = g.groupby("dec").agg(tau=("tau", "mean"), bias=("bias", "mean"), rms_bias=("bias", lambda s: np.sqrt(np.mean(s**2))),
                             sd=("sd", lambda s: np.sqrt(np.mean(s**2))), se=("se", "mean"), absb_se=("absb_se", "median"))
    print(t.round(3).to_string())
    # coverage as a function of |bias|/se
    v = v.merge(g[["absb_se"]], left_on="unit", right_index=True)
    bb = pd.cut(v.absb_se, [0, 0.5, 1, 1.5, 2, 3, 100])
    c = ((v.tau_hat - v.tau).abs() <= 1.96 * v.se).groupby(bb, observed=True).agg(["mean", "size"])
    c["size"] = c["size"] / len(v)
    print("   coverage by |E[tau_hat]-tau|/se:"); print(c.round(3).T.to_string())
