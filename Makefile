# `make run`  : set up .venv, then the whole assignment: download the WikiArt subset, train and compare the
#               AlexNet variants, saliency maps for My-Images/, and the report (report/report.pdf)
# `make test` : set up .venv with the test tools, run the linter (`make lint`: ruff, ruff.toml) and the test suite
# `make test-lowest`: the tests on the lowest release of every requirement the bounds allow, on Python 3.9 (CI)
# `make mutation`: mutation testing (mutmut, slow, not in CI) of the code that computes what the student hands in;
#               docs/mutation.md says what survived and why
# `make gpu-check`: on a machine with an NVIDIA GPU, the suite, the gpu tests and the benchmarks on cuda (docs/speed.md)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOGIN  ?= $(USER)
# the lowest Python the README promises: pyenv's, else one on PATH
PYTHON_LOWEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python3.9) $(shell command -v python3.9))

.PHONY: setup setup-dev run data train saliency report package lint test test-lowest mutation gpu-check bench tensorboard clean
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
	@test -n "$(LOGIN)" || { echo "make package needs your course login: make package LOGIN=jdoe"; exit 2; }
	$(PY) report/make_package.py --login $(LOGIN)

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir runs

lint: setup-dev
	$(PY) -m ruff check .

test: setup-dev lint
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile tests

test-lowest:
	@test -n "$(PYTHON_LOWEST)" || { echo "make test-lowest needs Python 3.9 (set PYTHON_LOWEST=/path/to/python3.9)"; exit 1; }
	$(PYTHON_LOWEST) .ci/lowest.py requirements-dev.txt > .ci/lowest-constraints.txt
	cat .ci/lowest-constraints.txt
	rm -rf .venv-lowest
	PIP_CONSTRAINT=$(CURDIR)/.ci/lowest-constraints.txt $(MAKE) test VENV=.venv-lowest PYTHON=$(PYTHON_LOWEST)

# the functions `make mutation` mutates (mutmut's names: module.x_function*); setup.cfg says which tests run
MUTANTS ?= report.stats.x_wilson_interval* report.stats.x_binomial_pmf* report.stats.x_mcnemar_exact* \
           report.stats.x_above_chance_p* report.part1.x_paired_test* report.part1.x_at_chance* \
           report.runs.x_select_runs* report.runs.x_why_not_compared* report.part1.x_f1_table* \
           report.part2.x_box_comparison* report.part2.x_can_tell* report.part2.x_beats_both* \
           report.stats.x_images_needed* report.part1.x_parameters* report.part1.x_duration* \
           vgg16.x_box_in_crop* vgg16.x_box_measures* vgg16.x_centre_prior* \
           vgg16.x_centre_share* saliency_ground_truth.x_scores* saliency_ground_truth.x_rank_auc* \
           saliency_ground_truth.x_mean_interval* saliency_ground_truth.x_beats* saliency_ground_truth.x_baseline_maps* \
           assignment_4a.x_epoch_seed* assignment_4a.x_batch_order* assignment_4a.x_to_input* assignment_4a.x_crop_by_gather*

mutation: setup-dev
	$(PY) -m pip install "mutmut>=3.3,<4"
	$(VENV)/bin/mutmut run $(foreach m,$(MUTANTS),'$(m)')
	$(VENV)/bin/mutmut results

gpu-check: setup-dev
	$(PY) -m pip install -r requirements-bench.txt
	$(PY) -c "import torch; assert torch.cuda.is_available(), 'make gpu-check needs a CUDA GPU'; print(torch.cuda.get_device_name())"
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile tests
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
	rm -rf $(VENV) .venv-lowest .pytest_cache .ci/hub1 .ci/lowest-constraints.txt mutants
