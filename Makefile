# Quick start:  make train   (sets up .venv on first use, then trains panda_reach with PPO)
#               make test    (sets up .venv on first use, then runs the tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test lint bench system-deps

# System libraries (EGL/GL/OSMesa, libusb, python3-venv): installed when root with apt-get,
# otherwise stop here, before any venv, with the command to run.
system-deps:
	@PYTHON=$(PYTHON) scripts/system-deps

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, so the project's `torch>=` requirement does not pull a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/robot-rl train launch/train/panda_reach.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not gpu"

lint: $(STAMP)
	$(BIN)/ruff check robot_rl sim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/sim_throughput.py
