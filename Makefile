# `make run`  : set up .venv and run the assignment (Part 2 saliency on My-Images/ -> report/saliency/)
# `make test` : set up .venv with the test tools and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: setup setup-dev run saliency test bench clean
setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

run: saliency

saliency: setup
	$(PY) assignment_4b.py

test: setup-dev
	$(PY) -m pytest -q tests

bench: setup
	$(PY) bench/bench_saliency.py

clean:
	rm -rf $(VENV) .pytest_cache
