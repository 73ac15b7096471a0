# chunkasr developer commands. `make install` creates .venv; other targets use it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned so pip takes the wheel already on this machine kind instead of downloading.
TORCH_PIN ?= torch==2.14.1 torchaudio==2.11.0

.PHONY: install test lint demo bench parity-fixtures clean

install:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"

test:
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check src scripts tests
	$(BIN)/mypy src

demo:
	$(BIN)/chunkasr transcribe examples/*.wav

bench:
	$(BIN)/python scripts/benchmark.py --cpu-small

parity-fixtures:
	$(BIN)/python scripts/make_parity_fixtures.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
