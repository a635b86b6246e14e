# Two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps re-run the install only when setup.py changes.
$(VENV)/.installed: setup.py | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: setup.py | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/automl-nb demo

test: $(VENV)/.installed-dev
	HF_HUB_OFFLINE=1 $(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/train_throughput.py
	$(PY) bench/sweep_overhead.py
	$(PY) bench/early_termination.py

clean:
	rm -rf $(VENV) runs .pytest_cache
