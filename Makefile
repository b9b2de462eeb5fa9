# `make run`: set up and materialise every asset on the landing zone (demo data if it is empty).
# `make test`: set up with test extras and run the test suite.
# `make ui`: the Dagster UI on 127.0.0.1:$(PORT) with a project-local DAGSTER_HOME.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run test ui install clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

install: $(VENV)/.installed

run: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m marketing_assets.run

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

ui: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p $(PORT) -w workspace.yaml

clean-data:
	rm -rf data/landing data/warehouse.duckdb data/warehouse.duckdb.wal data/extracts data/reports data/alerts.jsonl $(DAGSTER_HOME)
