# Set-up helpers. README's two commands: `make quickstart` (the main job) and `make test` (the tests).
# Both create .venv on first use with a CPU build of torch (a bare `torch` requirement can pull a CUDA build).
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install quickstart test test-fast lint docs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

quickstart: $(VENV)/.installed
	$(BIN)/wenlm quickstart --output_dir wenlm-quickstart

# Offline like a user without internet, one pytest worker per core (pytest-xdist); pytest's exit code 5 (no tests
# collected) fails the target like any other failure.
PYTEST := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n auto

test: $(VENV)/.installed
	$(PYTEST) tests

# Quick iterations: everything but the tests marked slow (training runs, subprocesses).
test-fast: $(VENV)/.installed
	$(PYTEST) -m "not slow" tests

# The same checks as .pre-commit-config.yaml: lint rules, then the formatter's verdict (no file rewritten).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# docs/cli.md is generated from the options' dataclasses; tests/test_cli.py fails while it is out of date.
docs: $(VENV)/.installed
	$(BIN)/python -m wenlm.training.cli --reference > docs/cli.md
