# `make demo` and `make test` work on a fresh machine with Python >= 3.10 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORE_STAMP := $(VENV)/.installed-core
# The CPU wheel of torch, so that no multi-GB CUDA build is pulled on a machine without a GPU.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test bench clean-demo ui

# Two stamps: the runtime (what `make demo` and `make ui` need) and, on top of it, the test tools and Hydra
# launchers (`make setup`, `make test`). A fresh `make demo` installs only the first; a later `make test` adds the rest.
$(CORE_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .
	@# open-clip-torch is used only for its CLIP BPE vocabulary file (and open_clip's RN50 code):
	@# installed without its torchvision dependency, which does not import beside the CPU torch wheel.
	$(BIN)/pip install -q --no-deps "open-clip-torch==3.3.0"
	@touch $@

$(STAMP): $(CORE_STAMP)
	$(BIN)/pip install -q -e ".[test,launchers]"
	@touch $@

setup: $(STAMP)

## The embedded default end to end: synthetic world, tiny CLIP, train, evaluate, log to MLflow.
demo: $(CORE_STAMP)
	$(BIN)/python -m reid.train experiment=demo

## Lint (ruff, configured in pyproject.toml), then the whole test suite (pytest's "no tests collected" exit code 5
## fails the target, as any non-zero code). TEST_WORKERS pytest-xdist processes, each test file on one of them
## (--dist loadfile: a file's session fixtures, such as the fault tests' reference job, are made once).
TEST_WORKERS ?= 2
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

## Open the MLflow UI on the project's local store (http://127.0.0.1:5000).
ui: $(CORE_STAMP)
	$(BIN)/mlflow ui
