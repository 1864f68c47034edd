# crowdalpha — developer entry points. Only Python 3.11+ is needed; everything else is installed here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-slow demo lint bench clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crowdalpha needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	command -v chromium >/dev/null || (apt-get install -y chromium || sudo apt-get install -y chromium)
	touch $(STAMP)

test: $(STAMP)  ## lint and run the test suite without the slow tests (two processes; a file stays in one)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

test-slow: $(STAMP)  ## run the slow tests (full seasons, crash-safety runs, big benchmarks' smoke tests); CI runs them too
	$(BIN)/pytest -n 2 --dist loadfile -m slow

demo: $(STAMP)  ## run the demo tournament on the embedded defaults
	$(BIN)/crowdalpha demo

lint: $(STAMP)  ## ruff only
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)  ## run every benchmark (each prints one JSON line)
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b; done

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
