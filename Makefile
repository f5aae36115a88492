# `make run`  : set up .venv, then the whole assignment: download the WikiArt subset, train and compare the
#               AlexNet variants, saliency maps for My-Images/, and the report (report/report.pdf)
# `make test` : set up .venv with the test tools and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LOGIN  ?= $(USER)

.PHONY: setup setup-dev run data train saliency report package test bench tensorboard clean
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

run: data train saliency report

data: setup
	$(PY) download_wikiart.py

train: setup
	$(PY) assignment_4a.py --compare

saliency: setup
	$(PY) assignment_4b.py

report: setup
	$(PY) report/make_report.py $(if $(NAME),--name "$(NAME)") $(if $(ID),--student-id "$(ID)")

package: setup
	$(PY) report/make_package.py --login $(LOGIN)

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir runs

test: setup-dev
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m pip install -r requirements-bench.txt
	$(PY) bench/bench_saliency.py
	$(PY) bench/bench_finetune.py
	$(PY) bench/bench_cache_memory.py
	$(PY) bench/bench_download.py

clean:
	rm -rf $(VENV) .pytest_cache
