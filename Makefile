# The README's commands. Each creates .venv if missing and installs torch==2.13.0 first (a CPU build
# here; override TORCH_SPEC elsewhere), then seqmarl with its dev extras.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
BIN := $(VENV)/bin

.PHONY: install verify test test-fast bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,mpe,vmas,mujoco,smax,ray,report,wandb,mlflow]"
	touch $@

install: $(VENV)/.installed

verify: install
	$(BIN)/seqmarl verify

test: install
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)
	$(BIN)/python -m pytest examples/ --seqmarl -n auto -q

test-fast: install
	$(BIN)/python -m pytest -n auto -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/theory_bench.py
	$(BIN)/python benchmarks/env_bench.py
	$(BIN)/python benchmarks/train_bench.py

# Mutation testing (slow; not part of `make test`): MUTATE_ARGS="theory --sample 300" for a sampled score.
MUTATE_ARGS ?=
mutate: install
	$(BIN)/python -m pip install --quiet "mutmut==3.8.1"
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
