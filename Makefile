# disease_pipeline — the two commands of the README, and their parts.
#   make train   install, fetch the registry data, simulate, kedro run --pipeline=train
#   make test    install, lint, format check, test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_PHENOPACKETS ?= ../shared/data/phenopackets
export KEDRO_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export DO_NOT_TRACK := true

.PHONY: install data simulate train test lint viz

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

train: data simulate
	$(BIN)/kedro run --pipeline=train

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

viz: install
	$(BIN)/kedro viz run
