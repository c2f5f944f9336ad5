"""Options of the factor analysis (step 3): the allowed values, their checks, the one-BLAS-thread guard and the
thread pool that runs independent fits side by side."""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from valuelex_utils.errors import UserError
from valuelex_utils.parallel import available_cores

METHODS = ("minres", "ml", "principal")
ROTATIONS = ("oblimin", "varimax", "promax", "none")
OBLIQUE = ("oblimin", "promax")
K_RULES = ("parallel", "deflated", "kaiser")
TRANSFORMS = ("log1p", "none")
CORRS = ("pearson", "tetrachoric")
_NOTES_ATTR = "valuelex_notes"
#: `fit_factors` keywords for the resampling loops only, not options a user sets (no CLI flag or params key): step 03
#: writes everything they skip (factors.json's KMO, fit statistics, scores)
RESAMPLING_ONLY = frozenset({"diagnostics"})
#: what a resampling loop's fits skip (they compare K and assignments only): loading intervals, the diagnostics (KMO,
#: fit statistics, scores) and, when K is fixed, parallel analysis; the loops also skip the table of K candidates
#: (max_k = 0), which `bootstrap_stability` lets its caller set
RESAMPLE_FIT = MappingProxyType({"n_boot": 0, "parallel_when_fixed": False, "diagnostics": False})
T = TypeVar("T")
U = TypeVar("U")
_POOL = threading.local()  # .worker is True in a thread_map worker


def _one_blas_thread(func):
    """Run `func` with one BLAS thread. Most fits are of a few hundred words, where the work is thousands of small
    products and eigendecompositions and multi-threaded OpenBLAS spins waiting for its threads (on a busy 2-core
    machine the test file took 196 s instead of 11 s); at the paper's scale (~2,000 words) the cores go to fits side
    by side instead (`thread_map`). Nested calls are cheap."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


def thread_map(fn: Callable[[T], U], items: Iterable[T], jobs: int | None = None) -> list[U]:
    """`[fn(x) for x in items]`, `jobs` at a time (default: one per available core), in threads, with one BLAS thread
    each; results in the order of `items`, and the first exception raised is raised here.

    Why threads, not processes: the work of a fit is in LAPACK and BLAS, which release the GIL, so two fits run side
    by side on two cores (1.6x at paper scale, measured) without pickling matrices or starting interpreters, and the
    per-matrix caches stay shared. Every fit is deterministic, so the results are those of the plain loop. Called
    from inside a worker it runs the plain loop: one level of threads, never cores x cores."""
    items = list(items)
    jobs = min(len(items), jobs or available_cores())
    if jobs <= 1 or getattr(_POOL, "worker", False):  # inside a worker already (a resample's parallel analysis)
        return [fn(x) for x in items]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(jobs, initializer=_mark_worker) as pool:
        return list(pool.map(fn, items))


def _mark_worker() -> None:
    _POOL.worker = True


def _check_options(method: str, rotation: str | None, k_rule: str, corr: str, threshold: float,
                   min_words: int, transform: str = "log1p") -> str:
    rotation = "none" if rotation is None else str(rotation).lower()
    if method not in METHODS:
        raise UserError(f"unknown factor method {method!r} (choose from {', '.join(METHODS)})")
    if rotation not in ROTATIONS:
        raise UserError(f"unknown rotation {rotation!r} (choose from {', '.join(ROTATIONS)})")
    if k_rule not in K_RULES:
        raise UserError(f"unknown rule for the number of factors {k_rule!r} (choose from {', '.join(K_RULES)})")
    if corr not in CORRS:
        raise UserError(f"unknown correlation {corr!r} (choose from {', '.join(CORRS)})")
    if not 0 <= threshold < 1:
        raise UserError(f"loading threshold must be in [0, 1), got {threshold}")
    if transform not in TRANSFORMS:
        raise UserError(f"unknown transform {transform!r} (choose from {', '.join(TRANSFORMS)})")
    if isinstance(min_words, bool) or not isinstance(min_words, (int, np.integer)) or min_words < 1:
        raise UserError(f"min_words must be an integer >= 1, got {min_words!r}")
    return rotation


def _check_numbers(n_factors: Any, n_boot: Any, max_k: Any, pa_iter: Any, percentile: Any) -> None:
    """The integer and range checks of `fit_factors`' numeric options (one line each, as `UserError`)."""
    for name, v, lo in (("n_boot", n_boot, 0), ("max_k", max_k, 0), ("pa_iter", pa_iter, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo):
            raise UserError(f"{name} must be an integer >= {lo}, got {v!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
        raise UserError(f"percentile must be a number in (0, 100), got {percentile!r}")
    if n_factors is not None and (isinstance(n_factors, bool) or not isinstance(n_factors, (int, np.integer))
                                  or n_factors < 0):
        raise UserError(f"n_factors must be a non-negative integer, got {n_factors!r}")
