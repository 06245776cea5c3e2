import sys, tempfile, pickle
from pathlib import Path
sys.path.insert(0, "benchmarks")
import numpy as np
import validity as V
from vaer.config.loader import validate_config
from vaer.pipeline import run_experiment
from common import source_root
import vaer.estimators.registry as R
orig = R._fit_on_residuals
calls = []
def patched(model, rows, cache, params):
    nu = cache.continuous(params.cv)
    calls.append(len(rows))
    try:
        orig(model, rows, cache, params)
    except Exception as e:
        pickle.dump(dict(y=nu.y_res[rows], t=nu.t_res[rows], x=cache.x[rows], rows=rows, cl=cache.clusters[rows], params=params.model_dump(), xall=cache.x, yall=nu.y_res, tall=nu.t_res, clall=cache.clusters), open(f"scratch/fail_{sys.argv[1]}.pkl", "wb"))
        raise
R.REGISTRY["sparse_linear_dml"] = R.EstimatorKind("sparse_linear_dml", "continuous", R._build_sparse_linear_dml, patched, R._continuous_scores, "crossfit")
seed = int(sys.argv[1])
d = V.DESIGNS["panel40_h1"]
base = V._panel_raw(source_root(), d)
with tempfile.TemporaryDirectory() as f:
    raw = V.build_raw(base, d, seed, Path(f), estimators=("sparse_linear_dml",), stages=())
    cfg = validate_config(raw)
    try:
        run_experiment(cfg); print("OK")
    except Exception as e:
        print("FAIL", repr(e), calls)
