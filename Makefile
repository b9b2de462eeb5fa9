# `make run`: set up and materialise every asset on the landing zone (demo data if it is empty);
#   `make run ENGINE=spark` runs the same graph on Spark (installs the spark extra; needs Java 17).
# `make test`: set up with test extras and run the test suite.
# `make ui`: the Dagster UI on 127.0.0.1:$(PORT) with the warehouse's DAGSTER_HOME, and the dashboards next to it.
# `make dashboards`: set up (Superset in .venv-bi, bundle, roles, users) and serve the dashboards on 127.0.0.1:$(BI_PORT).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export BI_PORT ?= 8088
# Dagster history and alerts follow the warehouse (MARKETING_WAREHOUSE, default data/warehouse.duckdb):
# data/warehouse.duckdb -> DAGSTER_HOME data/.dagster/warehouse/, alerts data/warehouse.alerts.jsonl,
# landing record data/warehouse.landing_scan.json. Another warehouse file gets its own history; an explicitly
# set DAGSTER_HOME or MARKETING_ALERTS_FILE wins. Same rule as marketing_assets.run.dagster_home_for and
# marketing_assets.sensors.warehouse_sidecar.
WAREHOUSE_FILE := $(or $(MARKETING_WAREHOUSE),data/warehouse.duckdb)
WAREHOUSE_DIR := $(abspath $(dir $(WAREHOUSE_FILE)))
WAREHOUSE_STEM := $(basename $(notdir $(WAREHOUSE_FILE)))
export DAGSTER_HOME ?= $(WAREHOUSE_DIR)/.dagster/$(WAREHOUSE_STEM)
# ENGINE=spark (or MARKETING_ENGINE=spark): the SQL engine of the run; duckdb by default.
ENGINE ?= $(or $(MARKETING_ENGINE),duckdb)
export MARKETING_ENGINE := $(ENGINE)

.PHONY: run test ui dashboards install clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-spark: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[spark]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-test: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

install: $(VENV)/.installed

run: $(VENV)/.installed $(if $(filter spark,$(ENGINE)),$(VENV)/.installed-spark) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m marketing_assets.run

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The dashboards start only when there are published extracts (after `make run`); the Dagster UI starts anyway.
ui: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	@if $(BIN)/python -m marketing_assets.bi setup; then \
		$(BIN)/python -m marketing_assets.bi serve & bi=$$!; \
		trap 'kill $$bi 2>/dev/null' EXIT INT TERM; \
		$(BIN)/dagster dev -h 127.0.0.1 -p $(PORT) -w workspace.yaml; \
	else \
		echo "dashboards not started (see above); the Dagster UI starts alone"; \
		$(BIN)/dagster dev -h 127.0.0.1 -p $(PORT) -w workspace.yaml; \
	fi

dashboards: $(VENV)/.installed
	$(BIN)/python -m marketing_assets.bi up

# Also removes what older versions kept in .dagster_home/ and data/alerts*.
clean-data:
	rm -rf data/landing data/extracts data/reports $(DAGSTER_HOME) \
		$(WAREHOUSE_DIR)/$(notdir $(WAREHOUSE_FILE)) $(WAREHOUSE_DIR)/$(notdir $(WAREHOUSE_FILE)).wal $(WAREHOUSE_DIR)/$(notdir $(WAREHOUSE_FILE)).lock \
		$(WAREHOUSE_DIR)/$(notdir $(WAREHOUSE_FILE)).tmp \
		$(WAREHOUSE_DIR)/$(WAREHOUSE_STEM).alerts.jsonl $(WAREHOUSE_DIR)/$(WAREHOUSE_STEM).alerts.check_states.json \
		$(WAREHOUSE_DIR)/$(WAREHOUSE_STEM).landing_scan.json \
		$(WAREHOUSE_DIR)/.superset/$(WAREHOUSE_STEM) \
		.dagster_home data/alerts.jsonl data/alerts.check_states.json
