"""Bias diagnostic for withholding per-firm intervals: cluster-honest DR scores vs tau_hat
along each modifier. For every modifier column (quintile bins; a binary/categorical column
by level) the mean of G_i - tau_hat_i per bin, cluster-robust (CR2) SE; Holm over all
bins at 5%. Rejection = the forest's tau_hat is detectably biased somewhere -> withhold.
Also reports the binned bias-corrected coverage per modifier-bin (tau_hat - b_bin).
Usage: python withhold.py FILE.parquet  (needs columns seed, tau, tau_hat, se, g, cluster, x0..)"""
import sys, numpy as np, pandas as pd
from scipy import stats
from vaer.estimators.inference import cluster_robust_mean
d = pd.read_parquet(sys.argv[1])
xs = [c for c in d if c.startswith("x")]
out = []
for seed, s in d.groupby("seed"):
    tau, th, se, g, cl = (s[c].to_numpy() for c in ("tau", "tau_hat", "se", "g", "cluster"))
    ps, biases = [], []
    for c in xs:
        v = s[c].to_numpy()
        bins = pd.qcut(v, 5, labels=False, duplicates="drop") if len(np.unique(v)) > 5 else pd.factorize(v)[0]
        for k in np.unique(bins):
            m = bins == k
            est = cluster_robust_mean(g[m] - th[m], cl[m])
            ps.append(2 * stats.t.sf(abs(est.estimate / est.se), est.df))
    ps = np.sort(ps); k = len(ps)
    holm = ps[0] <= 0.05 / k  # Holm rejects any hypothesis iff its first step does
    cov = float((np.abs(th - tau) <= 1.96 * se).mean())
    out.append({"seed": seed, "coverage": cov, "min_p": ps[0], "bins": k, "withhold": bool(holm)})
o = pd.DataFrame(out); print(o.round(4).to_string(index=False)); print("withheld share", o.withhold.mean())
