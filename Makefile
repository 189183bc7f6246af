# Every target is idempotent and says what it does. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install lint format test mutations demo airflow airflow-status browser bench bench-orgs bench-calculated bench-large-load bench-emulator db down clean lock

help:
	@echo "make demo      run the pipeline end to end on the emulator and a local Postgres"
	@echo "make test      run the whole test suite (sets up venv and Postgres itself)"
	@echo "make lint      ruff check (AIR and docstring rules), format check, mypy over plugins/"
	@echo "make airflow   a local Airflow UI wired to the emulator and the local Postgres"
	@echo "make browser   install chromium + playwright for the browser test of the UI"
	@echo "make bench     the performance benchmark (not part of make test)"
	@echo "make bench-orgs only the many-orgs row of make bench: 50 small orgs through a real scheduler"
	@echo "make bench-calculated only the formula-refresh row of make bench (1,000,000 Contacts)"
	@echo "make bench-large-load only the large-first-load rows of make bench (1,000,000 Contacts, slices, kill + resume)"
	@echo "make mutations remove each protection once: a test must fail without it (0 survivors)"
	@echo "make down      stop everything the targets above started"
	@echo "make clean     down, then remove .venv and .local"

# Development installs everything: the runtime (requirements.txt), the emulator's extra and the
# test and lint tools (requirements-dev.txt includes both), all under constraints.txt.
$(STAMP): requirements.txt requirements-emulator.txt requirements-dev.txt constraints.txt pyproject.toml
	@if [ ! -x $(PY) ]; then echo "==> creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); fi
	@echo "==> installing pinned requirements into $(VENV) (requirements-dev.txt + constraints.txt)"
	@$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@echo "==> installing this project (editable: registers our Airflow connection type)"
	@# setuptools warns about every editable install; keep its chatter in a log unless it fails.
	@$(PIP) install --quiet --disable-pip-version-check --no-deps -e . > $(VENV)/editable-install.log 2>&1 \
	  || { cat $(VENV)/editable-install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)
	@echo "==> $(VENV) is up to date"

lint: $(STAMP)
	@echo "==> ruff check"
	@$(VENV)/bin/ruff check .
	@echo "==> ruff format --check"
	@$(VENV)/bin/ruff format --check .
	@echo "==> mypy plugins/ (pyproject.toml [tool.mypy])"
	@$(VENV)/bin/mypy

format: $(STAMP)
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

db:
	@echo "==> making sure a PostgreSQL server answers"
	@$(PYTHON) tools/localpg.py ensure >/dev/null

test: $(STAMP) db
	@echo "==> running the test suite"
	@# pytest exits 5 when it collected nothing: that must never count as a pass.
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) -m pytest $(PYTEST_ARGS); \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "make test: no tests ran" >&2; exit 1; fi; exit $$rc

# Each mutation runs in a throwaway copy of the tree; MUTATIONS_ARGS="-k lock" picks some by name.
mutations: $(STAMP) db
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) -m tools.mutations $(MUTATIONS_ARGS)

demo: $(STAMP) db
	@echo "==> running the demo: emulator + local Postgres + Airflow"
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) -m tools.local_airflow.demo

# EXECUTOR=celery WORKERS=2: the CeleryExecutor with a private Redis and N workers.
EXECUTOR ?= local
WORKERS ?= 2
airflow: $(STAMP) db
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) -m tools.local_airflow start --executor $(EXECUTOR) --workers $(WORKERS)

airflow-status: $(STAMP)
	@$(PY) -m tools.local_airflow status

# Debian's chromium and the pinned playwright, for the browser test (make test runs it when present).
browser: $(STAMP)
	@bash tools/install_browser.sh $(PY)

# The pipeline's own figures, then the many-orgs row (ORGS_BENCH_ARGS="--orgs 5" for a quick one),
# the calculated-fields row and the large first load (LARGE_LOAD_BENCH_ARGS=--quick for a quick one).
bench: $(STAMP) db
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/pipeline_bench.py $(BENCH_ARGS)
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/orgs_bench.py $(ORGS_BENCH_ARGS)
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/calculated_bench.py $(CALCULATED_BENCH_ARGS)
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/large_load_bench.py $(LARGE_LOAD_BENCH_ARGS)

# The many-orgs row alone: a real Airflow, so 50 orgs take a few minutes on 2 cores.
bench-orgs: $(STAMP) db
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/orgs_bench.py $(ORGS_BENCH_ARGS)

# Only the calculated-fields row: a refresh of formula fields next to a full refresh (1M Contacts).
bench-calculated: $(STAMP) db
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/calculated_bench.py $(CALCULATED_BENCH_ARGS)

# Only the large-first-load rows (issue #18): parallel slices against the sequential floor, a load
# killed at ~80% and resumed; BENCH_ARGS="--quick" for 100,000 Contacts.
bench-large-load: $(STAMP) db
	@WAREHOUSE_ADMIN_URL="$$($(PYTHON) tools/localpg.py ensure)" $(PY) bench/large_load_bench.py $(BENCH_ARGS)

bench-emulator: $(STAMP)
	@$(PY) bench/emulator_bench.py $(BENCH_ARGS)

down:
	@echo "==> stopping local services"
	@if [ -x $(PY) ]; then $(PY) -m tools.local_airflow stop || true; fi
	@$(PYTHON) tools/localredis.py stop
	@$(PYTHON) tools/localpg.py stop

clean: down
	@echo "==> removing $(VENV) and .local"
	@rm -rf $(VENV) .local

# Regenerate constraints.txt from the venv after changing a requirements*.txt and installing it
# (pip install -r requirements-dev.txt): every distribution of the development venv, pinned.
lock:
	@$(PIP) freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	@echo "==> wrote constraints.txt ($$(wc -l < constraints.txt) packages)"
