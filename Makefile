# Two entry points (see README "Quick start"): `make demo` and `make test`.
# Both create .venv on first use and are safe to run again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean browser docs

browser:
	bash scripts/install-chromium.sh
	bash scripts/install-node-sdks.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/patron demo

test: $(STAMP)
	bash scripts/install-chromium.sh
	bash scripts/install-node-sdks.sh
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# The API reference from the docstrings (mkdocs + mkdocstrings), into site/; builds offline.
$(VENV)/.docs-installed: pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[all,docs]'
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/mkdocs build

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache patron.duckdb demo.duckdb patron-report.html test-artifacts site
