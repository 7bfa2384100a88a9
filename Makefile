# The front door. `make run` and `make test` set everything up themselves on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := libs/common services/preprocess services/train services/predict services/score
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
DATA   ?= data
PORT   ?= 8080

.PHONY: help setup run pipeline serve test test-fast lint format bench images charts chart-docs clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with every package installed editable plus dev tools

$(STAMP): $(PYPROJECTS) requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt \
		-e 'libs/common[dask]' $(addprefix -e ,$(filter services/%,$(PACKAGES)))
	touch $@

run: setup ## preprocess + train on the flights sample, then serve it on 127.0.0.1:8080 (PORT=...)
	DATA=$(DATA) PORT=$(PORT) $(BIN)/python examples/flights/run_pipeline.py

test: setup ## the whole test suite, image builds included (what CI runs)
	$(BIN)/pytest

test-fast: setup ## the inner loop: every test but the podman image builds
	$(BIN)/pytest -m "not images"

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff's formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup ## benchmarks, printed as tables (BENCH_ROWS=1000000,10000000)
	$(BIN)/python -m bench

ENGINE ?= $(shell command -v podman || command -v docker)
images: ## build the four service images (podman or docker; ENGINE=... to choose)
	for svc in preprocess train predict score; do \
		$(ENGINE) build -f services/$$svc/Dockerfile -t regpipe-$$svc:dev . || exit 1; \
	done

charts: setup ## render, lint and validate the Helm charts and skaffold.yaml with the real tools
	$(BIN)/pytest -q tests/test_charts.py tests/test_skaffold.py tests/test_alerts.py

chart-docs: ## write the charts' shared schema part and their READMEs (from the @param comments)
	$(PYTHON) charts/common/schema/sync.py
	cd tools/charts && npm ci --no-audit --no-fund
	for chart in preprocess train score predict; do \
		tools/charts/node_modules/.bin/readme-generator --values charts/$$chart/values.yaml \
			--readme charts/$$chart/README.md || exit 1; \
	done

clean: ## remove generated data and caches (keeps .venv)
	rm -rf $(DATA) bench/out .pytest_cache .ruff_cache
