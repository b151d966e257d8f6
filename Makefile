# Quick start:  make train   (sets up .venv on first use, then runs the main job)
#               make test    (sets up .venv on first use, then runs the tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, so the project's `torch>=` requirement does not pull a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/robot-rl sim-demo --task panda_reach --video runs/demo/panda_reach.mp4

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check robot_rl sim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/sim_throughput.py
