# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
PEERS  := .venv-peers
OUT    ?= reports/demo

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-compile: modules are byte-compiled when first imported, not all of them up front
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

## demo: install, run the BTC L2 pipeline (and the other examples) on bundled real data, then a
## short paper session: the pipeline trades a recorded Binance feed replayed on 127.0.0.1
demo: $(VENV)/.installed
	$(BIN)/tradestack backtest examples/pipeline_btc_l2.yaml --out $(OUT)/pipeline_btc_l2
	$(BIN)/tradestack backtest examples/pipeline_equities_daily.yaml --out $(OUT)/pipeline_equities_daily
	$(BIN)/tradestack backtest examples/l2_market_making.yaml --out $(OUT)/l2_market_making
	$(BIN)/tradestack replay examples/data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz --catalog $(OUT)/catalog --require-clean
	$(BIN)/tradestack paper examples/paper_pipeline_binance_spot.yaml --out $(OUT)/paper_pipeline_binance_spot

## test: install dev extras, then lint, type check, layer contracts and the whole test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# hftbacktest pins numpy < 2.3, so the parity peer gets its own environment
$(PEERS)/.installed: benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/pip install --quiet -r benchmarks/requirements-peers.txt
	touch $@

unit: $(STAMP) $(PEERS)/.installed
	$(BIN)/pytest

## bench: benchmarks against peer libraries (not part of CI; needs the bench extra)
bench: $(STAMP) $(PEERS)/.installed
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/bench_backtest.py
	$(BIN)/python benchmarks/bench_l2.py

clean:
	rm -rf $(VENV) $(PEERS) reports .pytest_cache .mypy_cache .ruff_cache
