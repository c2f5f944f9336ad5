"""UMAP with its compiled functions kept on disk, so the word map does not recompile them in every process.

Why: umap-learn compiles its numba functions the first time each process uses them and never caches them (none is
declared `cache=True`), so every step-04 kernel paid 10-15 s of just-in-time compilation for a map that then takes
2-4 s (paper scale, 1,932 words, measured on this project's 2-core machines). `load_umap` switches numba's own disk
cache on for the functions on `clusters.project_2d`'s path, listed in `CACHED_FUNCTIONS`; numba stores them under
NUMBA_CACHE_DIR (the checkout's .cache/numba, set by `valuelex_utils.env` and the Makefile) and recompiles by itself
when umap, numba or the CPU changes. `clusters.warm_word_map` (run by `scripts/setup.sh`) compiles them once, so a user's first run is fast
too.

Only the functions listed are cached, on purpose: umap builds a parallel and a sequential dispatcher from one Python
function (`layouts._optimize_layout_euclidean_single_epoch`), and numba names a cache entry after that function, so
caching both would let one overwrite the other. The seeded map uses the sequential one.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType

#: umap's numba functions that `project_2d` (seeded, precomputed cosine distances, fewer than 4,096 words) compiles
CACHED_FUNCTIONS = (
    "umap.utils:fast_knn_indices",
    "umap.utils:tau_rand_int",
    "umap.utils:tau_rand",
    "umap.umap_:smooth_knn_dist",
    "umap.umap_:compute_membership_strengths",
    "umap.layouts:tau_rand_int",
    "umap.layouts:clip",
    "umap.layouts:rdist",
    "umap.layouts:_nb_optimize_layout_euclidean_single_epoch",
)


def load_umap() -> ModuleType:
    """The umap module, with numba's disk cache on for `CACHED_FUNCTIONS` (once per process)."""
    import umap

    cached_functions()
    return umap


@functools.cache
def cached_functions() -> tuple[str, ...]:
    """Switch numba's disk cache on for `CACHED_FUNCTIONS` (the first call in a process) and return those it could:
    a function that is missing or not a numba dispatcher (another umap version) is skipped, and the map is then only
    slower."""
    done = []
    for ref in CACHED_FUNCTIONS:
        module, name = ref.split(":")
        fn = getattr(importlib.import_module(module), name, None)
        if callable(getattr(fn, "enable_caching", None)):
            fn.enable_caching()
            done.append(ref)
    return tuple(done)
