"""Work spread over the cores this process may use: how many there are, and a map over processes for pure-Python
work (threads help only where the work releases the GIL, as the factor fits' LAPACK does: `factors.options`)."""
from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def process_map(fn: Callable[[T], U], items: Sequence[T], min_items: int = 5000, jobs: int | None = None) -> list[U]:
    """`[fn(x) for x in items]`, over one fresh process per available core when there are at least `min_items`
    items; results in the order of `items`.

    Why fresh ("spawn") processes: a notebook kernel runs threads (ZeroMQ, torch), and forking a process with threads
    can deadlock the child; a spawned interpreter costs ~1 s to start and import, so short lists stay in this
    process, as does a `fn` a fresh process cannot import (a lambda, or a function defined in a notebook or script:
    its module is `__main__`). `fn` must be pure: what it records elsewhere is lost.
    """
    jobs = min(jobs or available_cores(), max(len(items), 1))
    if jobs <= 1 or len(items) < min_items or not _picklable(fn):
        return [fn(x) for x in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = math.ceil(len(items) / (4 * jobs))  # a few chunks per process: one slow chunk does not hold the rest
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, items, chunksize=chunk))


def _picklable(fn: Callable) -> bool:
    """Whether a spawned process can get `fn`: pickled by reference, from a module it can import."""
    if getattr(fn, "__module__", None) == "__main__":
        return False
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True
