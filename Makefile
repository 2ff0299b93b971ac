# EchoCare compendium. The two commands a newcomer needs:
#   make figures   regenerate every figure and table (profile cpu; PROFILE=smoke|cpu|paper)
#   make test      unit tests + every notebook under nbval with the smoke profile
# Both create or reuse the project virtual environment in .venv first.

PYTHON   ?= python3
VENV     ?= .venv
PROFILE  ?= cpu
SEED     ?= 0
# independent notebooks side by side (echocare_lib.run STAGES); 2 suits the 2-core budget machine
JOBS     ?= 2
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.echocare-installed
DEPS     := pyproject.toml requirements/constraints.txt
RUN_ARGS := --profile $(PROFILE) --seed $(SEED) --jobs $(JOBS) $(if $(ONLY),--only $(ONLY)) \
            $(if $(FROM),--from $(FROM)) $(if $(OUT),--out-dir $(OUT)) \
            $(if $(DATA),--data-dir $(DATA)) $(if $(DEVICE),--device $(DEVICE))

.DEFAULT_GOAL := help
.PHONY: help env figures test unit nbval outputs lint-notebooks strip lab bench lock clean pretrain

help:
	@echo "make figures   regenerate every figure and table (PROFILE=$(PROFILE); ONLY=03 FROM=02 OUT=dir DATA=dir JOBS=$(JOBS))"
	@echo "make test      unit tests, then every notebook under nbval (smoke profile)"
	@echo "make env       create or update the virtual environment in $(VENV)"
	@echo "make pretrain  pretrain one variant outside the notebooks (PROFILE, VARIANT=echocare, NPROC=1: torchrun)"
	@echo "make lab       open JupyterLab in the project environment"
	@echo "make bench     run the benchmarks in benchmarks/"
	@echo "make strip     remove outputs from notebooks (keeps cell tags)"
	@echo "make lock      re-pin requirements/constraints.txt from the current environment"

# The environment is rebuilt only when pyproject.toml or the pins change.
# The second pip line installs, without their declared dependencies, two packages of the blind
# image-quality metrics (echocare_lib/downstream/iqa.py): mmagic only for the NIQE parameter file
# it ships (its own deps are mmcv, diffusers, mediapipe...), and pypiqe, whose opencv-python
# would clash with the opencv-python-headless of pyproject.toml. Keep their pins equal to the lock.
$(STAMP): $(DEPS)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (found %s); set PYTHON=python3.11" % sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade-strategy only-if-needed \
	    -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps -c requirements/constraints.txt \
	    mmagic==1.2.0 pypiqe==1.2
	@touch $@

env: $(STAMP)

figures: $(STAMP)
	$(BIN)/python -m echocare_lib.run $(RUN_ARGS)

test: unit nbval outputs

unit: $(STAMP)
	ECHOCARE_PROFILE=smoke $(BIN)/python -m pytest -p no:cacheprovider --ignore=tests/after_nbval tests

# nbval cannot inject Papermill parameters: the profile and output folder come from the
# environment, so the committed reference figures/ are never touched by tests.
nbval: $(STAMP)
	rm -rf $(CURDIR)/build/nbval/figures
	ECHOCARE_PROFILE=smoke ECHOCARE_OUT_DIR=$(CURDIR)/build/nbval/figures \
	    $(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=1200 notebooks

# what the whole smoke run wrote: every paper figure/table from its one notebook, in the index
outputs: $(STAMP)
	ECHOCARE_PROFILE=smoke ECHOCARE_SMOKE_OUT=$(CURDIR)/build/nbval/figures \
	    $(BIN)/python -m pytest -p no:cacheprovider tests/after_nbval

# Pretraining outside the notebooks: the same code, under torchrun with NPROC processes per node
# (GPUs; gloo on CPU). Notebook 02 reuses the checkpoint when its configuration matches.
NPROC   ?= 1
VARIANT ?= echocare
pretrain: $(STAMP)
	$(BIN)/torchrun --standalone --nproc_per_node $(NPROC) -m echocare_lib.pretraining \
	    --profile $(PROFILE) --variant $(VARIANT) --seed $(SEED) $(if $(DEVICE),--device $(DEVICE))

strip: $(STAMP)
	$(BIN)/nbstripout --keep-id notebooks/*.ipynb

lab: $(STAMP)
	ECHOCARE_WIDGETS=live $(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev,bench]"
	@for b in benchmarks/bench_*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: $(STAMP)
	@{ echo "# Full transitive pin set of the project environment (Python 3.11, Linux x86_64),"; \
	   echo "# passed to pip as constraints by the Makefile and environment.yml. Regenerate with"; \
	   echo "# 'make lock' after changing pyproject.toml. Packages for other platforms are simply unused."; \
	   $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^echocare' | sort -f; } > requirements/constraints.txt
	@touch $(STAMP)

clean:
	rm -rf build .pytest_cache
