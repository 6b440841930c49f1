# Two commands on a fresh clone:  make demo   |   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tgir-installed

.PHONY: demo test setup clean

# torch first, pinned, so pip takes the local CPU wheel instead of a multi-GB CUDA build
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/tgir demo --no-serve

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) tgir-demo .pytest_cache
