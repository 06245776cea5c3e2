"""Fit grf's causal forest (skgrf) on arrays from an .npz file; run by the grf peer env.

Usage (by :func:`peers.run_grf`, with the peer environment's Python)::

    .peers/grf/bin/python grf_worker.py IN.npz OUT.npz

``IN.npz`` holds ``x`` (n, p), ``y`` (n,), ``t`` (n,), ``cluster`` (n,; all -1 for
none) and ``seed``; ``OUT.npz`` gets ``tau`` (n,), grf's per-unit effects at the
training rows (skgrf's ``predict``: honest trees, not out-of-bag), and ``seconds``, the
wall time of fit and predict. grf's defaults otherwise (2000 honest trees, out-of-bag
regression-forest nuisances), one thread. Imports nothing from vaer: the peer
environment has older numpy and scikit-learn.
"""

import sys
import time

import numpy as np


def main(inputs, outputs):
    from skgrf.ensemble import GRFForestCausalRegressor

    data = np.load(inputs)
    x, y, t, seed = data["x"], data["y"], data["t"], int(data["seed"])
    started = time.perf_counter()
    cluster = data["cluster"]
    forest = GRFForestCausalRegressor(n_jobs=1, seed=seed)
    forest.fit(x, y, t, cluster=None if cluster.min() < 0 else cluster)
    tau = forest.predict(x)
    seconds = time.perf_counter() - started
    np.savez(outputs, tau=np.asarray(tau, dtype=np.float64).ravel(), seconds=seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
