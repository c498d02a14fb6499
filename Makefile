# Readership developer verbs. `make run` and `make test` are the public contract.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := webapp:create_app

.PHONY: run test soak typecheck install install-test install-browser-tools translations bench lint format ci clean extract-messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,test]'
	@touch $@

install: $(VENV)/.installed translations

install-test: $(VENV)/.installed-test translations install-browser-tools

# axe-core (pinned in package.json/package-lock.json) is injected into pages by tests/browser.
# Playwright drives Debian's /usr/bin/chromium; it never downloads a browser.
install-browser-tools: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: browser tests will skip locally (and fail in CI)"; \
	fi

# Catalogues are compiled at install; the .mo files are build output, not committed.
translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d webapp/translations

extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k ngettext:1,2 -w 100 -o webapp/translations/messages.pot .
	$(BIN)/pybabel update -i webapp/translations/messages.pot -d webapp/translations --no-fuzzy-matching -w 100

run: install
	$(BIN)/readership db upgrade
	BASE_URL="$${BASE_URL:-http://$(HOST):$(PORT)}" $(BIN)/readership demo --if-empty
	$(BIN)/python -m devtools.run_local --host $(HOST) --port $(PORT)

test: install-test lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Long property runs (hundreds of generated histories, bigger ones) kept out of `make test`.
soak: install-test
	READERSHIP_SOAK=1 $(BIN)/python -m pytest tests/donations/test_books_model.py tests/digests/test_sending_model.py tests/digests/test_coverage.py tests/test_hostile_inputs.py -p no:randomly $(PYTEST_ARGS)

typecheck: install-test
	$(BIN)/mypy

# Style, formatting and the import contracts (docs/architecture.md); `make test` runs it first.
# `make format` rewrites what `ruff format --check` would refuse.
LINTED := webapp emails jobs tests bench migrations devtools
lint: install-test
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports

format: install-test
	$(BIN)/ruff format $(LINTED)

bench: install-test
	$(BIN)/python -m bench $(BENCH_ARGS)

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) instance .pytest_cache node_modules test-artifacts
