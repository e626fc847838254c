# Everything a fresh machine needs: `make run` and `make test` install what they use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
INPUT  ?=
WAREHOUSE ?= warehouse
DEMO_DIR  ?= data/demo
DEMO_RECORDS ?= 2000
SEED   ?= 42

.PHONY: install install-dev bytecode run test test-fast coverage fuzz bench demo clean help serve prefect-server chromium rsync

help:
	@echo "make install   create $(VENV) and install newsetl with the DuckDB shell, s3:// and --dask"
	@echo "make run       load the demo records (or INPUT=folder) into ./warehouse and print the top providers"
	@echo "make test      install dev dependencies and run the whole test suite on every core (about 11 minutes)"
	@echo "make test-fast the tests not marked slow, for the edit-test loop (under 2 minutes)"
	@echo "make coverage  the whole suite under coverage.py, subprocesses included (htmlcov/index.html)"
	@echo "make fuzz      the property tests and the replay of real history with a long budget (hours)"
	@echo "make bench     benchmarks against the naive way, the core's distance to the limit, the scale-out, S3 reads, the scale sections and start-up (see bench/)"
	@echo "make prefect-server   start a local Prefect server (then export PREFECT_API_URL=http://127.0.0.1:4200/api)"
	@echo "make serve     serve news-etl on the demo data every 30 minutes (needs PREFECT_API_URL)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# the extras too: s3:// storage (s3fs) and --dask (prefect-dask, distributed)
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[shell,s3,dask]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[shell,s3,dask,dev]'
	touch $@

install: $(VENV)/.installed bytecode

install-dev: $(VENV)/.installed-dev bytecode

# newsetl's own bytecode, up to date: where PYTHONDONTWRITEBYTECODE is set (as in many containers)
# Python never writes it, and every newsetl process compiled what it imported (0.1-0.15 s a start;
# pip compiles the dependencies, not an editable install's src/). Files already current are skipped.
bytecode: | $(BIN)/python
	@$(BIN)/python -m compileall -q src

$(DEMO_DIR)/.generated: | $(VENV)/.installed
	$(BIN)/newsetl demo $(DEMO_DIR) --records $(DEMO_RECORDS) --seed $(SEED)
	touch $@

ifeq ($(strip $(INPUT)),)
run: install $(DEMO_DIR)/.generated
	$(BIN)/newsetl run $(DEMO_DIR) --warehouse $(WAREHOUSE) --top 10
else
run: install
	$(BIN)/newsetl run $(INPUT) --warehouse $(WAREHOUSE) --top 10
endif

# pytest-xdist: each module whole on one worker (its module fixtures built once; tests/conftest.py
# hands out the longest modules first). TESTS_WORKERS=0 runs serially.
TESTS_WORKERS ?= auto
PYTEST_PARALLEL = -n $(TESTS_WORKERS) --maxprocesses=4 --dist loadfile --no-loadscope-reorder
PYTEST_ARGS ?=

# PYTHONDONTWRITEBYTECODE emptied for the suite: pytest then keeps its rewritten test modules'
# bytecode, which each worker would otherwise make again (collection 5.5 s -> 2.2 s a worker)
test: install-dev chromium rsync
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-fast: install-dev
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# the whole suite, serially, with every newsetl subprocess measured too ([tool.coverage] in pyproject.toml)
coverage: install-dev chromium rsync
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -q $(PYTEST_PARALLEL)
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report --skip-covered --sort=cover
	$(BIN)/python -m coverage html -q

fuzz: install-dev
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_properties.py tests/test_incremental.py::test_replay_of_real_history

BENCH_SCALE_SIZES ?= 10000 100000  # add 1000000 for the million-record cold run (18 GB of records)
bench: install-dev
	$(BIN)/python bench/run.py
	$(BIN)/python bench/core.py
	$(BIN)/python bench/scaleout.py
	$(BIN)/python bench/s3read.py
	$(BIN)/python bench/scale.py --sizes $(BENCH_SCALE_SIZES)
	$(BIN)/python bench/checks.py --sizes $(BENCH_SCALE_SIZES)
	$(BIN)/python bench/startup.py

# Debian's chromium for the headless-browser test of the HTML report; skipped, with a note, where it cannot be installed
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: no apt-get here: the headless-browser test of the HTML report will be skipped"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then \
	    echo "note: /usr/bin/chromium is missing and installing it needs root (apt-get install chromium): the browser test will be skipped"; \
	  else \
	    echo "installing chromium for the HTML report test (apt-get, a minute or two)"; \
	    ( $$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ) \
	      || echo "note: installing chromium failed: the browser test will be skipped"; \
	  fi; \
	fi

# the test of a warehouse moved with `rsync -a` (tests/test_moved_warehouse.py) skips without it
rsync:
	@command -v rsync >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  { command -v apt-get >/dev/null 2>&1 && echo "installing rsync for a test (apt-get)" \
	    && $$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null; } \
	  || echo "note: rsync is missing and could not be installed (apt-get install rsync): its test will be skipped"; }

prefect-server: install
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/prefect server start

serve: install $(DEMO_DIR)/.generated
	$(BIN)/newsetl serve $(DEMO_DIR) --warehouse $(WAREHOUSE) --cron "*/30 * * * *"

clean:
	rm -rf $(VENV) data build *.egg-info src/*.egg-info
