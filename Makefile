# jaxbert entry points. `make pretrain` and `make test` are the two set-up commands:
# each creates .venv and installs the pinned requirements on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JAXBERT := $(VENV)/bin/jaxbert
STAMP := $(VENV)/.installed
RUN := runs/cpu_smoke
TASK ?= sst2
INIT ?= $(RUN)
# The tiny `make pretrain` model wants a higher fine-tuning lr than BERT-base's 2e-5…5e-5.
FT_ARGS ?= $(if $(filter $(RUN),$(INIT)),--config.optimizer.learning_rate=1e-4)
CONFIG ?= configs/pretrain/phase1_seq128.py:base,adamw
PYTEST_FLAGS ?= --durations=15
# Two pytest-xdist workers: most of the suite is single-threaded XLA compilation.
# loadscope: each module runs on one worker, so a module-scoped fixture (the bad-input
# driver, a trained tokenizer) is built once, not once per worker. (`loadgroup` would do it
# per marked module, but pytest-xdist 3.8 cannot rename pytest 9's node ids: it splits too.)
TEST_WORKERS ?= 2

.PHONY: install install-gpu install-tpu install-tpu-compile test test-slow lint format pretrain pretrain-wiki pretrain-gpu pretrain-tpu tpu-check finetune bench report clean

install: $(STAMP)

# Re-installs only when a requirements file or pyproject.toml changes.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

test: install
	$(PY) -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist loadscope $(PYTEST_FLAGS)

test-slow: install
	$(PY) -m pytest -m slow -q $(PYTEST_FLAGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Tokenizer and shards are rebuilt only when their inputs change; pretraining resumes
# from the newest checkpoint in $(RUN)/checkpoints.
pretrain: install
	$(JAXBERT) tokenizer train --corpus corpus/wiki_sample --out $(RUN)/tokenizer --vocab-size 8000
	$(JAXBERT) data prepare --corpus corpus/wiki_sample --tokenizer $(RUN)/tokenizer --out $(RUN)/prepared
	$(JAXBERT) pretrain --config configs/pretrain/cpu_smoke.py \
	  --config.data.prepared_dir=$(RUN)/prepared --config.tokenizer=$(RUN)/tokenizer \
	  --config.output_dir=$(RUN) $(ARGS)

# The CPU recipe on the offline Wikipedia extract (configs/pretrain/cpu_wiki.py): ≤ 2 h on
# 2 cores, resumable (rerun to continue). The tokenizer trains on 300k sentences.
WIKI_CORPUS ?= ../shared/data/wikipedia
WIKI_RUN := runs/cpu_wiki

pretrain-wiki: install
	@test -d $(WIKI_CORPUS) || { echo "make pretrain-wiki: $(WIKI_CORPUS) not found (the offline Wikipedia extract; set WIKI_CORPUS=DIR)" >&2; exit 1; }
	$(JAXBERT) tokenizer train --corpus $(WIKI_CORPUS) --out $(WIKI_RUN)/tokenizer --vocab-size 8000 --max-sentences 300000
	$(JAXBERT) data prepare --corpus $(WIKI_CORPUS) --tokenizer $(WIKI_RUN)/tokenizer --out $(WIKI_RUN)/prepared
	$(JAXBERT) pretrain --config configs/pretrain/cpu_wiki.py $(ARGS)

# Fine-tune INIT (default: the `make pretrain` checkpoint, with its tokenizer) on TASK: any
# GLUE task (sst2, cola, mrpc, stsb, rte, qnli, wnli, …), conll2003 or squad.
# A finished runs/finetune/$(TASK) is refused, not replaced: OVERWRITE=1 replaces it.
finetune: install
	$(JAXBERT) finetune --task $(TASK) --config.init=$(INIT) \
	  --config.output_dir=runs/finetune/$(TASK) $(if $(OVERWRITE),--config.overwrite=true) \
	  $(FT_ARGS) $(ARGS)

# The base phase-1 recipe (bf16) on one GPU node / a Cloud TPU VM (all workers run the same
# command; see launch/). Each fails fast where the accelerator is missing.
install-gpu: install
	$(PY) -m pip install --quiet -r requirements-gpu.txt

install-tpu: install
	$(PY) -m pip install --quiet -r requirements-tpu.txt

# libtpu on any host: `jaxbert plan --target SLICE` compiles for a TPU slice without one.
install-tpu-compile: install
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-tpu-compile.txt

pretrain-gpu: install
	@$(PY) -c "import jax; jax.devices('gpu')" >/dev/null 2>&1 || { echo "make pretrain-gpu: JAX sees no CUDA GPU here; run 'make install-gpu' on a machine with one" >&2; exit 1; }
	$(JAXBERT) pretrain --config $(CONFIG) $(ARGS)

pretrain-tpu: install
	@$(PY) -c "import jax; jax.devices('tpu')" >/dev/null 2>&1 || { echo "make pretrain-tpu: no TPU on this machine; run it on a Cloud TPU VM (see launch/tpu/) after 'make install-tpu'" >&2; exit 1; }
	$(TPU_CHECK_CMD)
	$(JAXBERT) pretrain --config $(CONFIG) $(ARGS)

# Before any step runs: the TPU compiler compiles the train step for this VM's slice on
# the host CPU (never holding the chips) and refuses, in one line, a config that does not
# fit. TPU_CHECK=0 skips it; TPU_TARGET=v5e-16 checks a named slice instead (CPU hosts too).
TPU_CHECK ?= 1
TPU_TARGET ?= current
TPU_CHECK_CMD = $(if $(filter 1,$(TPU_CHECK)),JAX_PLATFORMS=cpu $(JAXBERT) plan --target $(TPU_TARGET) --config $(CONFIG) $(ARGS))
tpu-check: install
	$(TPU_CHECK_CMD)

# Benchmarks. transformers (the Hugging Face Flax peer) needs older tokenizers and
# huggingface-hub than the runtime pins, so it lives in its own venv, installed after them.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_SIZES ?= tiny,mini,small,medium
BENCH_ARGS ?=

$(BENCH_STAMP): requirements.txt benchmarks/requirements.txt pyproject.toml
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

bench: install $(BENCH_STAMP)
	$(PY) benchmarks/input_pipeline.py
	$(PY) benchmarks/compile_time.py
	$(BENCH_VENV)/bin/python benchmarks/train_throughput.py --sizes $(BENCH_SIZES) \
	  --rounds 3 --steps 5 --out benchmarks/results/train_throughput.json $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python benchmarks/train_throughput.py --sizes base --rounds 5 --steps 4 \
	  --no-nodrop --out benchmarks/results/train_throughput_base.json $(BENCH_ARGS)

# The results tables of README.md and docs/, rendered from benchmarks/results/*.json by the
# modules in benchmarks/tables/ (tests/test_docs.py fails when a committed page differs).
report: install
	$(PY) benchmarks/report.py

clean:
	rm -rf runs .pytest_cache
