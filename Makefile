# Two commands do everything, set-up included:  `make run` (a real cnn study) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision releases that ship one build for CPU and CUDA; any release the ranges in
# pyproject.toml admit works, these are the ones installed when none is there yet.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup system-deps run test lint bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# The whole job in TIME seconds (generating the synthetic benchmark on first use included): the
# search, the winner's final run, the submission and the report. On a CPU the preset's quick study runs.
TIME ?= 720
run: setup
	$(PY) -m search run cnn --time $(TIME)

lint: setup
	$(PY) -m ruff check .

system-deps:
	bash tests/system_deps.sh

test: setup lint system-deps
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
