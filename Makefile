# Two commands on a fresh clone:  make demo   |   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tgir-installed

.PHONY: demo test setup system-deps clean

# torch first, pinned, so pip takes the local CPU wheel instead of a multi-GB CUDA build
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/tgir demo

# Debian packages the tests use: chromium + chromedriver (page test), the emoji font and
# Unicode / CLDR data (emoji dataset), openclipart SVGs and cairo (clipart dataset).
# Installed when missing and apt-get can run; otherwise the tests that need them skip.
DEBS := chromium chromium-driver fonts-noto-color-emoji unicode-data unicode-cldr-core \
        openclipart-svg libcairo2
system-deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $$missing >/dev/null; \
	  else echo "missing Debian packages (tests that need them skip): $$missing"; fi; \
	fi

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) tgir-demo .pytest_cache
