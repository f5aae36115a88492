# `make run`  : set up .venv, then the whole assignment: download the WikiArt subset, train and compare the
#               AlexNet variants, saliency maps for My-Images/, and the report (report/report.pdf)
# `make test` : set up .venv with the test tools and run the test suite
# `make test-lowest`: the tests on the lowest release of every requirement the bounds allow, on Python 3.9 (CI)
# `make gpu-check`: on a machine with an NVIDIA GPU, the suite, the gpu tests and the benchmarks on cuda (docs/speed.md)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOGIN  ?= $(USER)
# the lowest Python the README promises: pyenv's, else one on PATH
PYTHON_LOWEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python3.9) $(shell command -v python3.9))

.PHONY: setup setup-dev run data train saliency report package test test-lowest gpu-check bench tensorboard clean
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
	$(PY) -m pytest -q -n auto --maxprocesses 4 tests

test-lowest:
	@test -n "$(PYTHON_LOWEST)" || { echo "make test-lowest needs Python 3.9 (set PYTHON_LOWEST=/path/to/python3.9)"; exit 1; }
	$(PYTHON_LOWEST) .ci/lowest.py requirements-dev.txt > .ci/lowest-constraints.txt
	cat .ci/lowest-constraints.txt
	rm -rf .venv-lowest
	PIP_CONSTRAINT=$(CURDIR)/.ci/lowest-constraints.txt $(MAKE) test VENV=.venv-lowest PYTHON=$(PYTHON_LOWEST)

gpu-check: setup-dev
	$(PY) -m pip install -r requirements-bench.txt
	$(PY) -c "import torch; assert torch.cuda.is_available(), 'make gpu-check needs a CUDA GPU'; print(torch.cuda.get_device_name())"
	$(PY) -m pytest -q -n auto --maxprocesses 4 tests
	$(PY) -m pytest -q -m gpu -rA tests
	for p in fp32 bf16; do $(PY) bench/bench_saliency.py --device cuda --precision $$p || exit 1; \
	                        $(PY) bench/bench_finetune.py --device cuda --precision $$p || exit 1; done

bench: setup
	$(PY) -m pip install -r requirements-bench.txt
	$(PY) bench/bench_saliency.py
	$(PY) bench/bench_finetune.py
	$(PY) bench/bench_cache_memory.py
	$(PY) bench/bench_download.py

clean:
	rm -rf $(VENV) .venv-lowest .pytest_cache .ci/hub1 .ci/lowest-constraints.txt
