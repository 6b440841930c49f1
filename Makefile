# Two commands on a fresh clone:  make demo   |   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tgir-installed

.PHONY: demo test setup browser clean

# torch first, pinned, so pip takes the local CPU wheel instead of a multi-GB CUDA build
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/tgir demo --no-serve

# Debian's chromium + chromedriver for the end-to-end page test (installed when missing and
# apt-get can run; otherwise that one test skips and says why)
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null; \
	  else echo "chromium not installed and not root: the browser test will skip"; fi; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) tgir-demo .pytest_cache
