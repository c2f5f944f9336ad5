# Two commands on a fresh machine: `make run` (whole pipeline, default params) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PARAMS ?= params/default.yaml
RUN_DIR ?=
STAMP := $(VENV)/.setup-stamp

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib

.PHONY: setup run test test-fast bench bench-scale clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	@touch $@

run: setup
	$(VENV)/bin/valuelex run --params $(PARAMS) $(if $(RUN_DIR),--run-dir $(RUN_DIR),)

# tests/ first (test_pipeline runs the smoke study into outputs/smoke), then nbval executes every notebook with its
# parameters cell's smoke defaults, answering from that run's cache.
test: setup
	$(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env tests notebooks

test-fast: setup
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests

# Benchmarks write JSON under outputs/bench/ (ratios measured side by side in one run, never timed assertions).
bench: setup
	@mkdir -p outputs/bench
	@set -e; for b in $(filter-out benchmarks/bench_scale.py,$(wildcard benchmarks/bench_*.py)); do echo "== $$b"; $(PY) $$b; done

# Paper scale (minutes; not in `make test`): steps 02-04 on planted studies of 50/525/2,000 respondents, steps 01 and
# 05 against a simulated fleet of 32 model aliases; writes outputs/bench/scale.json.
bench-scale: setup
	@mkdir -p outputs/bench
	$(PY) benchmarks/bench_scale.py

clean-outputs:
	rm -rf outputs/*/ && touch outputs/.gitkeep
