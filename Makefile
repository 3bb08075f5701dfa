# Two commands do all the set-up on a fresh machine:
#   make demo   venv + install + `sweeps run mad_vs_dropout` on the quick profile (synthetic faces, CPU)
#   make test   venv + install + the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast table clean

$(BIN)/sweeps: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/sweeps

demo: install
	$(BIN)/sweeps run mad_vs_dropout --profile quick
	$(BIN)/sweeps table mad_vs_dropout --format markdown

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) ray_results mlruns mlartifacts mlflow.db .pytest_cache figures
