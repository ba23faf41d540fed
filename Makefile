# The workbook's commands. `make test` and `make run` need nothing installed beforehand:
# they create .venv (Python 3.11) and install the project into it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Notebooks and tests run headless: curves go to PNG files, not to a display.
export WORKBOOK_HEADLESS ?= 1

.PHONY: help install lint test unit notebooks run lab bench bench-quick strip check-stripped clean

help:
	@echo "make test    - unit tests + every notebook under nbval, smoke profile (what CI runs)"
	@echo "make run     - execute every notebook end to end (profile auto) into outputs/"
	@echo "make lab     - JupyterLab on notebooks/"
	@echo "make lint    - ruff, and a check that the notebooks are committed without outputs"
	@echo "make unit    - fast unit tests only (not slow);  make notebooks - notebooks only (smoke)"
	@echo "make bench   - benchmarks (training throughput, time to accuracy, generation, notebooks) -> outputs/bench.json"
	@echo "make strip   - remove outputs from the notebooks before committing"
	@echo "MRPC: set MRPC_DIR=/path/to/mrpc, or put it in data/mrpc/, or go online (see README)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check helpers tests bench notebooks
	$(BIN)/python -m helpers notebooks check

test: lint
	WORKBOOK_PROFILE=smoke $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env

unit: $(STAMP)
	WORKBOOK_PROFILE=smoke $(BIN)/python -m pytest tests -m "not slow"

notebooks: $(STAMP)
	WORKBOOK_PROFILE=smoke $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env

run: $(STAMP)
	$(BIN)/python -m helpers notebooks run

lab: $(STAMP)
	WORKBOOK_HEADLESS=0 $(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	mkdir -p outputs && $(BIN)/python -m helpers bench --json outputs/bench.json

bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	mkdir -p outputs && $(BIN)/python -m helpers bench --quick --json outputs/bench-quick.json

strip: $(STAMP)
	$(BIN)/python -m helpers notebooks strip

check-stripped: $(STAMP)
	$(BIN)/python -m helpers notebooks check

clean:
	rm -rf outputs .pytest_cache
