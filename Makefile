# The workbook's commands. `make test` and `make run` need nothing installed beforehand:
# they create .venv (Python 3.11) and install the project into it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Notebooks and tests run headless: curves go to PNG files, not to a display.
export WORKBOOK_HEADLESS ?= 1

.PHONY: help install reinstall reinstall-llama doctor lint test unit notebooks run lab bench bench-quick strip check-stripped clean

help:
	@echo "make test    - unit tests + every notebook under nbval, smoke profile (what CI runs)"
	@echo "make run     - execute every notebook end to end (profile auto) into outputs/"
	@echo "make lab     - JupyterLab on notebooks/"
	@echo "make lint    - ruff, and a check that the notebooks are committed without outputs"
	@echo "make unit    - fast unit tests only (not slow);  make notebooks - notebooks only (smoke)"
	@echo "make bench   - benchmarks (training throughput, time to accuracy, generation, notebooks) -> outputs/bench.json"
	@echo "make strip   - remove outputs from the notebooks before committing"
	@echo "make doctor  - CPU, builds, versions, data and models, with a generation and a training-step check"
	@echo "MRPC: set MRPC_DIR=/path/to/mrpc, or put it in data/mrpc/, or go online (see README)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama-cpp-python first, from a wheel built with portable flags and kept under a key of version and flags
# (helpers/llama_build.py): pip's own cache would hand back a -march=native wheel built on another CPU.
# Then the project, then the self-check: a few tokens and one training step, each in a child process.
$(STAMP): pyproject.toml helpers/llama_build.py | $(BIN)/python
	$(BIN)/python -m helpers.llama_build install
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m helpers doctor --self-check
	touch $(STAMP)

install: $(STAMP)

# Rebuild llama-cpp-python's portable wheel and reinstall it (after a generation check failed).
reinstall-llama: | $(BIN)/python
	$(BIN)/python -m helpers.llama_build install --force
	$(BIN)/python -m helpers doctor --self-check

# A fresh .venv (the wheel kept for llama-cpp-python is reused).
reinstall:
	rm -rf $(VENV)
	$(MAKE) install

doctor: $(STAMP)
	$(BIN)/python -m helpers doctor

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
	mkdir -p outputs && $(BIN)/python -m helpers bench --json outputs/bench.json

bench-quick: $(STAMP)
	mkdir -p outputs && $(BIN)/python -m helpers bench --quick --json outputs/bench-quick.json

strip: $(STAMP)
	$(BIN)/python -m helpers notebooks strip

check-stripped: $(STAMP)
	$(BIN)/python -m helpers notebooks check

clean:
	rm -rf outputs .pytest_cache
