# disease_pipeline — the two commands of the README, and their parts.
#   make train      install, fetch the registry data, simulate, kedro run --pipeline=train
#   make test       install, lint (ruff, format, import contracts), Chromium, the whole suite
#   make test-fast  install, lint, every test but whole pipelines, real servers and the browser
#   make airflow    Apache Airflow in its own venv, for the retraining loop's DAG test
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_PHENOPACKETS ?= ../shared/data/phenopackets
export KEDRO_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export DO_NOT_TRACK := true
# OpenMP threads (XGBoost, PyTorch) sleep while waiting instead of spinning: on the busy
# 2-core machine spinning threads made training fits 8-18x slower (docs/training_speed.md);
# the package sets the same default for runs outside make
export OMP_WAIT_POLICY ?= PASSIVE
# the edit-loop tier: pytest markers registered in pyproject.toml
FAST_TESTS := not slow and not server and not browser
# the fast tier runs on two pytest-xdist workers, a test file at a time (FAST_ARGS= for
# one process); tests/conftest.py keeps the modules that share an expensive session
# fixture in one worker, and under xdist every module using data/test in one worker.
# The whole suite runs on one pytest-xdist worker per core (TEST_ARGS= for one process);
# the same hook keeps every module that writes data/test in one worker.
TEST_ARGS ?= -n auto
FAST_ARGS ?= -n 2 --dist loadfile
# test order (pytest-randomly): `random` shuffles the tests and reseeds random/numpy per
# test, printing the seed (rerun one with PYTEST_ARGS="-p randomly --randomly-seed=N");
# `file` is the files' own order. The fast tier is random by default, the whole suite
# (CI) file order unless TEST_ORDER=random
test-fast: TEST_ORDER ?= random
test: TEST_ORDER ?= file
ORDER_ARGS = $(if $(filter random,$(TEST_ORDER)),,-p no:randomly)
# Apache Airflow's own virtual environment (its pins clash with the project's): the
# retraining loop's DAG test (tests marked `airflow`) runs `airflow dags test` from it
export AIRFLOW_VENV ?= .venv-airflow
# extra pytest arguments for either tier
PYTEST_ARGS ?=
# apt-get needs root: sudo when make runs as another user
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install data simulate train test test-fast lint browser java prometheus airflow viz

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

# Registry cases for ingestion: the full phenopacket-store copy when it is beside
# the repo, otherwise the small sample shipped for the tests.
data: install
	mkdir -p data/01_raw/phenopackets
	if [ -d "$(SHARED_PHENOPACKETS)" ]; then \
		cp -r "$(SHARED_PHENOPACKETS)"/. data/01_raw/phenopackets/; \
	else \
		cp -r tests/data/phenopackets/. data/01_raw/phenopackets/; \
	fi

simulate: install
	$(BIN)/kedro run --pipeline=simulate

# two nodes at a time, one per core (disease_pipeline/runners.py, docs/training_speed.md)
train: data simulate
	$(BIN)/kedro run --pipeline=train --runner=disease_pipeline.runners.CoreThreadRunner

# ruff, the format check and the import contracts of pyproject.toml (docs/architecture.md)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Debian's chromium for the clinician-page test (tests marked `browser`)
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

# Debian's Java 17 runtime for the Spark screening test (tests marked `spark`)
java:
	@if ! command -v java >/dev/null 2>&1; then \
		echo "installing Debian's Java runtime for the Spark tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	fi

# Debian's prometheus (promtool) and alertmanager for the alert-rule tests and the
# Prometheus/Alertmanager integration tests (tests/deploy, docs/monitoring.md)
prometheus:
	@if ! command -v promtool >/dev/null 2>&1 || \
		! command -v prometheus-alertmanager >/dev/null 2>&1; then \
		echo "installing Debian's prometheus and alertmanager for the alert tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			prometheus prometheus-alertmanager >/dev/null; \
	fi

# Apache Airflow 3 pinned by deploy/airflow/requirements.txt (pip freeze of a working
# install: Airflow's constraint files are not reachable from here)
airflow: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: deploy/airflow/requirements.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r deploy/airflow/requirements.txt
	touch $@

test: lint browser java prometheus airflow
	$(BIN)/python -m pytest $(TEST_ARGS) $(ORDER_ARGS) $(PYTEST_ARGS)

test-fast: lint prometheus
	$(BIN)/python -m pytest -m "$(FAST_TESTS)" $(FAST_ARGS) $(ORDER_ARGS) $(PYTEST_ARGS)

viz: install
	$(BIN)/kedro viz run
