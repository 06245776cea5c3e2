"""Evaluate per-firm interval remedies on saved prototype runs (benchmarks/per_firm_diagnosis/proto.py output)."""
import sys, numpy as np, pandas as pd
from vaer.estimators.inference import cluster_robust_mean

d = pd.concat([pd.read_parquet(p) for p in sys.argv[1:]])
def cov(th, se, tau): return float((np.abs(th - tau) <= 1.96 * se).mean())
rows = []
for seed, s in d.groupby("seed"):
    tau, th, se, g, cl = (s[c].to_numpy() for c in ("tau", "tau_hat", "se", "g", "cluster"))
    r = {"seed": seed, "default": cov(th, se, tau)}
    z = (th - tau) / se
    r["slope"] = np.polyfit(tau - tau.mean(), th - tau, 1)[0]
    for nb in (5, 10, 20):
        bins = pd.qcut(th, nb, labels=False, duplicates="drop")
        corr, se_b, flag = th.copy(), np.zeros_like(th), []
        for k in np.unique(bins):
            m = bins == k
            est = cluster_robust_mean(th[m] - g[m], cl[m])  # mean bias of tau_hat in bin k
            corr[m] = th[m] - est.estimate
            se_b[m] = est.se
            flag.append(abs(est.estimate) / est.se)
        se_c = np.sqrt(se**2 + se_b**2)
        r[f"binned{nb}"] = cov(corr, se_c, tau)
        r[f"maxz{nb}"] = max(flag)
        r[f"width_ratio{nb}"] = float(np.mean(se_c) / np.mean(se))
    # global linear recalibration (BLP of the DR scores on tau_hat, Chernozhukov et al.)
    xc = th - th.mean()
    X = np.column_stack([np.ones_like(xc), xc])
    beta = np.linalg.lstsq(X, g, rcond=None)[0]
    lin = beta[0] + beta[1] * xc
    r["blp_slope"] = beta[1]
    r["blp_recal"] = cov(lin, beta[1] * se, tau)
    rows.append(r)
out = pd.DataFrame(rows)
pd.set_option("display.width", 220)
print(out.round(3).to_string(index=False))
print("mean:"); print(out.mean().round(3).to_string())
