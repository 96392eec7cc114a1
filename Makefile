# Two commands a new user needs (see README):  `make demo`  and  `make test`.
# Both create their own virtualenv in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; on a GPU machine use e.g. TORCH_SPEC="torch==2.13.0" with your CUDA index.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test test-fast test-lowest lint demo mini-experiment constraints clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (pip's log: $(VENV)/pip.log) ..."
	@$(PY) -m pip install --quiet --upgrade pip > $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(PY) -m pip install --quiet "$(TORCH_SPEC)" >> $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(PY) -m pip install --quiet -e ".[dev,flyte,track]" -c constraints.txt >> $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(PY) -c "import torch, transformers, trl, peft, datasets; print('installed: torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| peft', peft.__version__, '| datasets', datasets.__version__)"
	touch $@

# uv (from PyPI) for the two targets below, in a venv of its own so that neither needs `make setup`.
UV_VENV ?= build/venv-uv
UV := $(UV_VENV)/bin/uv
$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv

# constraints.txt: the exact version of everything the project and its image extras install on the Flyte image's
# platform (Linux x86_64, Python 3.11), torch at TORCH_SPEC. The image (workflows.py) installs exactly these;
# `make setup` and the README's install use them as pip constraints. Current pins are kept (uv reads the file
# it writes); `make constraints UPGRADE=--upgrade` moves them all to the newest releases.
IMAGE_EXTRAS := flyte gpu eval track
UPGRADE ?=
constraints: $(UV)
	echo "$(TORCH_SPEC)" | $(UV) pip compile pyproject.toml $(addprefix --extra ,$(IMAGE_EXTRAS)) --constraint - \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 --custom-compile-command "make constraints" \
	    --quiet $(UPGRADE) -o constraints.txt
	{ printf '%s\n' \
	    '# Exact versions for the Flyte image (workflows.py IMAGE installs exactly these lines) and for local installs:' \
	    '#   pip install -e ".[dev,flyte]" -c constraints.txt' \
	    '# Resolved by uv for Linux x86_64 + Python 3.11 with the extras $(IMAGE_EXTRAS) and $(TORCH_SPEC).' \
	    '# Regenerate with `make constraints` (keeps these pins; UPGRADE=--upgrade moves them); never edit by hand.'; \
	  cat constraints.txt; } > constraints.txt.new && mv constraints.txt.new constraints.txt

# The declared floors: the lowest versions of the direct dependencies that uv's resolver allows
# (--resolution lowest-direct), with the fast tests run on them, in a venv of their own (from PyPI, ~5 min).
# torch is installed first as TORCH_SPEC (the local CPU wheel) and kept: a bare torch floor would pull a
# multi-GB CUDA build. Not part of `make test`/CI: run it when a dependency or its floor changes.
LOWEST_VENV ?= build/venv-lowest
test-lowest: $(UV)
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" | $(UV) pip install --quiet --python $(LOWEST_VENV)/bin/python --resolution lowest-direct \
	    --constraint - -e ".[dev,flyte,eval,track]"
	$(LOWEST_VENV)/bin/python -m pytest -m "not slow" -x -q -p no:cacheprovider

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

# Small Llama pretrained on non-Flyte code (stdlib + installed packages) → LoRA on the corpus → held-out eval.
# Default corpus: the bundled samples. The real repos: make mini-experiment MIRRORS=DIR CORPUS=dataset_builder/corpus.yaml
MIRRORS ?= runs/samples
CORPUS ?= dataset_builder/samples.yaml
mini-experiment: setup
	$(PY) -m samples.make_repos runs/samples
	$(PY) -m dataset_builder build --config $(CORPUS) --mirrors $(MIRRORS) --out runs/mini-corpus --no-progress
	$(PY) -m training.mini_experiment --dataset runs/mini-corpus --out runs/mini-experiment

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
