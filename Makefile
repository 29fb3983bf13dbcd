# The two commands a new machine needs:
#   make run    create .venv, install the gateway, start it on the embedded default (Whisper tiny.en, CPU, int8)
#   make test   install system and test dependencies, then lint, type-check and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
ARGS ?=

.PHONY: run test venv test-deps system lint pytest bench bench-quick bench-eval soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

run: venv
	$(BIN)/python -m gateway --host $(HOST) --port $(PORT) $(ARGS)

system:
	bash scripts/setup-system.sh

test-deps: system $(VENV)/.installed-test

lint: test-deps
	$(BIN)/ruff check gateway bench tests clients
	$(BIN)/mypy

pytest: test-deps
	$(BIN)/python -m pytest -q -rs

test: lint pytest

bench: test-deps
	$(BIN)/python -m bench run $(ARGS)

bench-quick: test-deps
	$(BIN)/python -m bench run --target gateway --limit 1 --no-offline $(ARGS)

bench-eval: test-deps
	$(BIN)/python -m bench run --target gateway --target whisperlive --data ../shared/eval-public/manifest.jsonl \
	    --ids jfk,fleurs_en_000,fleurs_en_003,tw_h04_s04,tw_h11_s01,osr_list01_8k --ramp 1,2 --keep-going $(ARGS)

# 1000 connections for 60 s with faults (python -m bench soak --help); the disk-full fault needs root.
soak: test-deps
	$(BIN)/python -m bench soak $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache artifacts
