# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/tonebot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q -e '.[fast]' || echo "pymorphy3[fast] did not install; the pure-Python analyser is used"
	touch $(BIN)/tonebot

install: $(BIN)/tonebot

run: install
	$(BIN)/tonebot demo

chat: install
	$(BIN)/tonebot chat

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

# The import graph between the packages, for the layers contract in pyproject.toml.
structure: install
	$(BIN)/python -m bench.structure

.PHONY: install run chat test lint structure
