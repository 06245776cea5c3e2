"""Peer values for vaer.did.honest: R HonestDiD's Python port ``honestdid`` 0.1.1.

Two steps, two environments (``honestdid`` needs torch and cvxpy, which vaer does not):

1. ``python benchmarks/honest_did_peer.py inputs`` (vaer's venv) writes the cases
   (``beta``, ``Sigma``, pre periods, targets, bounds, grids) to
   ``tests/golden/honest_did_peer.json``: a random covariance and the event study of
   ``simulate_staggered(pretrend_slope=0.1)``.
2. ``python benchmarks/honest_did_peer.py peer`` (a scratch venv with
   ``pip install honestdid==0.1.1``) adds the peer's intervals: ``find_optimal_flci``
   (smoothness, FLCI) and ``computeConditionalCS_DeltaRM`` (relative magnitudes,
   conditional-least-favourable hybrid, on the stored grid).

``tests/test_did_honest.py`` compares vaer's intervals with the stored peer values.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "honest_did_peer.json"


def _inputs() -> None:
    from vaer.did import CellOptions, PanelColumns, att_gt
    from vaer.did.honest import event_study_inputs
    from vaer.did.simulate import simulate_staggered

    rng = np.random.default_rng(3)
    n = 7
    root = rng.normal(size=(n, n)) * 0.02
    sigma = root @ root.T + 0.0005 * np.eye(n)
    beta = np.array([0.03, -0.01, 0.02, 0.01, 0.25, 0.3, 0.2])
    frame, _ = simulate_staggered(trend=0.0, pretrend_slope=0.1, random_state=7)
    cells = att_gt(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
        options=CellOptions(base_period="universal"),
    )
    study = event_study_inputs(cells, min_e=-4, max_e=3)
    cases = []
    for name, b, s, n_pre in (
        ("random", beta, sigma, 4),
        ("simulated", study.beta, study.sigma, int(np.sum(study.event_times < -1))),
    ):
        n_post = len(b) - n_pre
        sd = float(np.sqrt(s[n_pre, n_pre]))
        cases.append(
            {
                "name": name,
                "beta": b.tolist(),
                "sigma": s.tolist(),
                "n_pre": n_pre,
                "targets": [np.eye(n_post)[0].tolist(), np.full(n_post, 1.0 / n_post).tolist()],
                "m": [0.0, 0.1 * sd, 0.5 * sd],
                "mbar": [0.0, 0.5, 1.0],
                "grid_points": 100,
            }
        )
    GOLDEN.write_text(json.dumps({"peer": None, "cases": cases}, indent=1))
    print(f"wrote {GOLDEN}")


def _peer() -> None:
    import honestdid as hd

    data = json.loads(GOLDEN.read_text())
    for case in data["cases"]:
        beta, sigma = np.array(case["beta"]), np.array(case["sigma"])
        n_pre = case["n_pre"]
        n_post = len(beta) - n_pre
        case["smoothness"], case["relative_magnitude"] = [], []
        for l_vec in map(np.array, case["targets"]):
            centre = float(l_vec @ beta[n_pre:])
            half = 1.5 * max(abs(centre), float(np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec)))
            grid = [centre - 2.0 * half, centre + 2.0 * half]
            for m in case["m"]:
                fit = hd.find_optimal_flci(
                    beta, sigma, M=m, numPrePeriods=n_pre, numPostPeriods=n_post, l_vec=l_vec
                )
                low, high = fit["FLCI"]
                case["smoothness"].append({"l": l_vec.tolist(), "m": m, "ci": [low, high]})
            for mbar in case["mbar"]:
                start = time.time()
                entry = {"l": l_vec.tolist(), "mbar": mbar, "grid": grid, "ci": None}
                try:
                    accept = hd.computeConditionalCS_DeltaRM(
                        beta, sigma, n_pre, n_post, l_vec=l_vec, Mbar=mbar,
                        gridPoints=case["grid_points"], grid_lb=grid[0], grid_ub=grid[1],
                    )  # fmt: skip
                except Exception as exc:  # honestdid 0.1.1 fails on some targets
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                else:
                    kept = accept.loc[accept["accept"] > 0, "grid"]
                    entry["ci"] = [float(kept.min()), float(kept.max())] if len(kept) else None
                case["relative_magnitude"].append(entry)
                print(case["name"], mbar, entry, f"{time.time() - start:.0f}s", flush=True)
    data["peer"] = f"honestdid {hd.__version__ if hasattr(hd, '__version__') else '0.1.1'}"
    GOLDEN.write_text(json.dumps(data, indent=1))
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    {"inputs": _inputs, "peer": _peer}[sys.argv[1]]()
