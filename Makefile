# a3cs — set-up and entry points. `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch lies on this machine's disk; never let pip pull a CUDA build.
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple)
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv install run test test-fast test-long bench clean help

help:
	@echo "make run        create .venv, install, run the default co-search example"
	@echo "make test       create .venv, install, run every test (~5 min on 2 cores)"
	@echo "make test-fast  the tests without those marked slow"
	@echo "make test-long  the benchmarks with their targets (= make bench)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PIP) install -q --upgrade "pip>=23" "setuptools>=61,<81" wheel
	$(PIP) install -q $(FIND_LINKS) torch==2.13.0
	$(PIP) install -q $(FIND_LINKS) -e ".[dev]"
	@# setuptools leaves a build-time egg-info in the tree; it would shadow the installed metadata
	@# (entry points) for anything run from the repository root.
	rm -rf a3cs.egg-info
	touch $(STAMP)

venv install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/a3cs run-example

# Every test, the real nnictl experiment and kill/--resume runs included (~5 min on 2 cores).
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(PYTEST_ARGS)

# Quick loop while developing: skips the tests marked slow.
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow" -q $(PYTEST_ARGS)

# The benchmarks with their targets (parity table, mapper vs Timeloop, throughput ratios); ~15 min.
test-long bench: $(STAMP)
	$(PIP) install -q $(FIND_LINKS) -e ".[bench]"  # Stable-Baselines3, the RL throughput baseline
	rm -rf a3cs.egg-info
	$(PY) benchmarks/model_parity.py
	$(PY) benchmarks/mapper_speed.py
	$(PY) benchmarks/surrogate_speed.py
	$(PY) benchmarks/rl_throughput.py --json
	$(PY) benchmarks/supernet_cost.py --updates 2 --threads 1

clean:
	rm -rf $(VENV) build *.egg-info
