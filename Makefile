# vaer: `make demo` runs the default experiment; `make test` runs lint, types and the suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000

.PHONY: demo test lint typecheck pytest system-tools golden ui clean bench bench-quick

# uv installs the environments at the versions of constraints.txt (pip took 2-3 minutes for
# the dev environment here, uv 10 s with an empty cache). --compile-bytecode: pip writes the
# .pyc files at install, uv only when asked, and with PYTHONDONTWRITEBYTECODE set (as here)
# nothing would, so every process of the suite would compile mlflow and econml again
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt uv

INSTALL := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt

# the runtime environment (make demo)
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(INSTALL) -e .
	touch $@

# the dev environment (make test): runtime plus pytest, ruff, mypy
$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/vaer run experiments/baseline.yaml

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The golden tables (tests/test_golden_tables.py) compare floats to 1e-9; numpy's SIMD
# paths and OpenBLAS's kernels are pinned to the AVX2 level so that an AVX-512 machine
# sums in the same order as the AVX2 machine that wrote them.
ifeq ($(shell uname -m),x86_64)
SAME_FLOATS := NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" OPENBLAS_CORETYPE=Haswell
endif

# two worker processes, each test module in one of them (module fixtures such as the Ray
# cluster and the MLflow server start once; two Ray clusters at once hang ray.init), the
# slowest modules first (tests/conftest.py, SLOWEST_MODULES)
PYTEST_WORKERS ?= 2

pytest: $(VENV)/.installed-dev
	$(SAME_FLOATS) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=15

golden: $(VENV)/.installed-dev
	$(SAME_FLOATS) $(BIN)/python tests/golden_runs.py

# Chromium and LaTeX from Debian's packages (when missing and root, as in CI) beside the
# install, lint and type check; apt-get inside the suite held a worker for about 100 s
system-tools:
	$(PYTHON) tests/browser_setup.py

test:
	$(MAKE) --no-print-directory -j2 system-tools lint typecheck
	$(MAKE) --no-print-directory pytest

ui: $(VENV)/.installed
	$(BIN)/vaer ui --port $(PORT)

# benchmarks (benchmarks/RESULTS.md and the MLflow experiment `benchmarks`): grf's peer
# environment is built once, into the git-ignored benchmarks/.peers/grf (about 15 minutes)
GRF_PEER := benchmarks/.peers/grf/.ready
BENCH    := PYTHONPATH=src $(CURDIR)/$(BIN)/python

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(INSTALL) -e '.[dev,bench]'
	touch $@

$(GRF_PEER):
	rm -rf benchmarks/.peers/grf
	bash ../shared/tools/grf-peer-venv.sh benchmarks/.peers/grf
	touch $@

bench: $(VENV)/.installed-bench $(GRF_PEER)
	$(BENCH) benchmarks/accuracy.py --seeds 20
	$(BENCH) benchmarks/scaling.py --sizes 10000 50000 200000 1000000 --peer-max-rows 200000
	$(BENCH) benchmarks/ray_sweep.py --variants 8 --n-units 1500

# quick: grf only if its environment is already built (building it takes ~15 minutes)
bench-quick: $(VENV)/.installed-bench
	$(BENCH) benchmarks/accuracy.py --quick
	$(BENCH) benchmarks/scaling.py --quick

# validity of every interval and test vaer prints, on today's defaults (RESULTS.md section
# "Validity on current defaults"; benchmarks/validity.py), in 2 local processes. Cost from the
# measured CPU per run: full 850 runs, about 220 CPU-minutes (an estimated 2 h on 2 idle cores);
# quick 50 runs, 13 CPU-minutes (38 min wall at a load average of 13-16 from other jobs)
.PHONY: validity validity-quick
validity: $(VENV)/.installed
	$(BENCH) benchmarks/validity.py

validity-quick: $(VENV)/.installed
	$(BENCH) benchmarks/validity.py --quick

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache
