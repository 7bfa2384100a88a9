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

.PHONY: help setup lock run pipeline serve test test-fast lint format bench images charts chart-docs clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv from uv.lock: every package editable plus the dev tools

# uv itself is pinned by the lock (dev group); the lock's hashes are checked by pip.
UV_VERSION = $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"/\1/p}' uv.lock)
$(STAMP): $(PYPROJECTS) pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'uv==$(UV_VERSION)'
	$(BIN)/uv export --quiet --frozen --all-packages --all-groups --no-emit-workspace \
		--output-file $(VENV)/requirements.lock.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r $(VENV)/requirements.lock.txt
	$(BIN)/python -m pip install --quiet --no-deps $(addprefix -e ,$(PACKAGES))
	touch $@

lock: ## re-resolve uv.lock after a pyproject changed (uv lock --upgrade-package X to move one)
	$(BIN)/uv lock

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
images: ## build the four service images from the one Dockerfile (podman or docker; ENGINE=...)
	for svc in preprocess train predict score; do \
		$(ENGINE) build --build-arg SERVICE=$$svc --target $$svc \
			--build-arg REVISION=$$(git rev-parse HEAD) -t regpipe-$$svc:dev . || exit 1; \
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
