# shopstream — `make demo` runs the whole thing, `make test` proves it. `make help` lists all.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE ?= $(HOME)/.cache/shopstream
VENV  ?= $(CACHE)/venv
BIN   := $(VENV)/bin
export SHOPSTREAM_CACHE_DIR := $(CACHE)
export SHOPSTREAM_VENV := $(VENV)

.PHONY: help install demo test unit integration lint format bench bench-stream bench-check soak chaos up down status clean screenshots

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## Install everything missing (system packages, venv, Kafka and Spark jars, FerretDB); cached
	@scripts/bootstrap.sh
	@$(BIN)/shopstream install

demo: ## Start the stack, seed it and stream simulated orders through it (Ctrl-C stops)
	@echo "==> dashboard: http://$${SHOPSTREAM_HOST:-127.0.0.1}:$${SHOPSTREAM_DASHBOARD_PORT:-8501} (live once the stack is up)"
	@$(MAKE) --no-print-directory install
	$(BIN)/shopstream demo

# The suite's browser test needs chromium; `install` adds it for these targets.
test integration: export SHOPSTREAM_TEST_BROWSER := 1

# --no-skips: here everything is installed on purpose, so a test that would skip fails.
test: install lint ## Lint, then the whole suite (unit + integration against real servers)
	$(BIN)/pytest --no-skips

unit: install ## Unit tests only (no servers)
	$(BIN)/pytest --no-skips tests/unit

integration: install ## Integration tests only
	$(BIN)/pytest --no-skips tests/integration

screenshots: ## Screenshot every dashboard page of a running stack (make demo) into docs/screenshots
	$(BIN)/python -m tests.utils.browser "$$($(BIN)/python -c 'from shopstream.config import Settings; print(Settings().dashboard_url)')" docs/screenshots

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install ## Ingestion benchmark; writes bench/results/ingest.json (see docs/benchmarks.md)
	$(BIN)/shopstream bench ingest

bench-stream: install ## Streaming latency benchmark (~20 min); writes bench/results/stream.json
	$(BIN)/shopstream bench stream

bench-check: install ## Streaming targets (issue 18) as a regression guard: exit 1 on a miss (~18 min)
	$(BIN)/shopstream bench stream --rates 200,1000 --ladder 3000 --check

soak: install ## The streaming job for 30 min at 200 orders/s: flat? writes bench/results/soak.json
	$(BIN)/shopstream bench soak

chaos: install ## Fault scenarios under load, each reconciled (~20 min); bench/results/chaos.json
	$(BIN)/shopstream chaos

up: install ## Start the local stack
	$(BIN)/shopstream up

down: ## Stop the local stack (data kept)
	$(BIN)/shopstream down

status: ## Show the stack's services
	$(BIN)/shopstream status

clean: down ## Stop the stack and delete its data (.shopstream/)
	rm -rf .shopstream
