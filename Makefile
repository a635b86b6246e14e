# Two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: demo test test-fast bench bench-quality clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps re-run the install only when setup.py changes. pip compiles the bytecode at install
# (40 s of CPU): skipping it cost far more, as where PYTHONDONTWRITEBYTECODE is set every new
# process (kernels, workers, the CLI) compiled torch again: 7.6 s to import it instead of 3.0.
PIP := $(PY) -m pip install --quiet

$(VENV)/.installed: setup.py | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: setup.py | $(PY)
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/automl-nb demo

# Browser tests drive Debian's chromium through Playwright (which cannot download its own here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium

# Two test processes with a core each (tests/conftest.py); the long tests are spread by work stealing.
PYTEST := HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 --dist worksteal

# The venv and chromium install side by side (-j2): on a fresh machine that saves apt's half minute.
test:
	$(MAKE) -j2 $(VENV)/.installed-dev $(CHROMIUM)
	$(PYTEST)

# The inner loop: everything but whole jobs, notebooks and the browser (under 3 minutes).
test-fast: $(VENV)/.installed-dev
	$(PYTEST) -m "not slow and not browser and not notebook"

bench: $(VENV)/.installed
	$(PY) bench/train_throughput.py
	$(PY) bench/sweep_overhead.py
	$(PY) bench/early_termination.py
	$(PY) bench/data_throughput.py
	$(PY) bench/explain_speed.py

# Real datasets shipped in scikit-learn / scikit-image: defaults vs AutoMode vs a hand-written loop
# (5 datasets x 3 arms x 5 minutes; results in bench/quality/results/, table in docs/benchmarks.md).
$(VENV)/.installed-bench: setup.py | $(PY)
	$(PIP) -e '.[bench]'
	touch $@ $(VENV)/.installed

bench-quality: $(VENV)/.installed-bench
	$(PY) bench/quality/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache
