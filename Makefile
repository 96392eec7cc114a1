# Two commands a new user needs (see README):  `make demo`  and  `make test`.
# Both create their own virtualenv in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; on a GPU machine use e.g. TORCH_SPEC="torch==2.13.0" with your CUDA index.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test test-fast lint demo mini-experiment clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (pip's log: $(VENV)/pip.log) ..."
	@$(PY) -m pip install --quiet --upgrade pip > $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(PY) -m pip install --quiet "$(TORCH_SPEC)" >> $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(PY) -m pip install --quiet -e ".[dev,flyte]" >> $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(PY) -c "import torch, transformers, trl, peft, datasets; print('installed: torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| peft', peft.__version__, '| datasets', datasets.__version__)"
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint
	$(PY) -m pytest -n 2 --durations=15

test-fast: setup
	$(PY) -m pytest -n 2 -m "not slow"

# The whole job, offline, on the bundled sample repos with the tiny recipe (≤ 3 min on 2 CPU cores).
demo: setup
	$(PY) job.py --embedded --out hub --work runs/demo

# Stdlib-pretrained small Llama → LoRA on the corpus → held-out eval (≤ 20 min on 2 CPU cores).
# Default corpus: the bundled samples. The real repos: make mini-experiment MIRRORS=DIR CORPUS=dataset_builder/corpus.yaml
MIRRORS ?= runs/samples
CORPUS ?= dataset_builder/samples.yaml
mini-experiment: setup
	$(PY) -m samples.make_repos runs/samples
	$(PY) -m dataset_builder build --config $(CORPUS) --mirrors $(MIRRORS) --out runs/mini-corpus --no-progress
	$(PY) -m training.mini_experiment --dataset runs/mini-corpus --out runs/mini-experiment

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
