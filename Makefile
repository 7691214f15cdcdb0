# qpo: two commands do all the set-up.
#   make run    create .venv, install qpo and its stack, run the daily risk report and the book's nightly runs on real data
#   make test   the same install, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qpo-installed
PORT   ?= 8866

.PHONY: install run test lab mlflow dashboard benchmark clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# the demo portfolios, only into a store that holds no portfolio (qpo db seed leaves any other as it is);
# the bundled prices into the store's market data; the daily report, then the book's valuation and risk
run: install
	$(BIN)/qpo db seed
	$(BIN)/qpo data seed
	$(BIN)/qpo pipeline run daily-report
	$(BIN)/qpo pipeline run valuation
	$(BIN)/qpo pipeline run risk

test: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lab: install
	$(BIN)/qpo lab

mlflow: install
	$(BIN)/qpo ui mlflow

dashboard: install
	$(BIN)/qpo dashboard advisor --port $(PORT)

# every benchmark (benchmarks.SCRIPTS, the one list; see benchmarks/__init__.py), each in its own process,
# writing benchmarks/results/; the bench extra (Riskfolio-Lib) is installed when missing
benchmark: install
	$(BIN)/python -c "import riskfolio" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) runs data_docs qpo.db qpo.db.lock mlflow.db
	find mlruns -mindepth 1 ! -name README.md -exec rm -rf {} +
