# Two commands do all setup: `make demo` and `make test`.
# Each (re)creates .venv only when the requirement files changed (content hash stamp).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(REQ_HASH)

.PHONY: venv demo up test lint bench browser clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(PY) -m ogiri_local.demo

# EXECUTOR=celery: CeleryExecutor, Redis broker, PostgreSQL, two workers (ogiri_local/celery_stack.py).
EXECUTOR ?= local
up: $(STAMP)
	$(PY) -m ogiri_local.up --executor $(EXECUTOR)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Debian's chromium + chromium-driver for the browser tests (no-op when installed).
browser:
	@bash scripts/install_browser.sh

test: $(STAMP) lint browser
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
