import sys, tempfile, time, traceback
from pathlib import Path
sys.path.insert(0, "benchmarks")
import validity as V
from vaer.config.loader import validate_config
from vaer.pipeline import run_experiment
from common import source_root
seed = int(sys.argv[1]); kinds = tuple(sys.argv[2:]) or V.CONTINUOUS_EXTRA
d = V.DESIGNS["panel40_h1"]
base = V._panel_raw(source_root(), d)
with tempfile.TemporaryDirectory() as f:
    raw = V.build_raw(base, d, seed, Path(f), estimators=kinds, stages=())
    cfg = validate_config(raw)
    t = time.time()
    try:
        run_experiment(cfg); print("OK", time.time() - t)
    except Exception:
        traceback.print_exc()
