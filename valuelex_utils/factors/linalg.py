"""Matrix functions of a correlation matrix that several stages of one fit need, computed once per matrix.

Why: with the paper's ~2,000 words every O(p^3) operation on R costs about a second on one core, and a fit asks
for the same ones again and again (the table of K candidates refits K = 1..11 on one R, each needing minres's start,
R's smoothed form and its log determinant; adequacy, minres and the score weights each needed R's condition number,
which numpy computes by a full SVD). `per_matrix` keeps the results for the last few array objects (by identity,
through weak references, so a new or freed matrix is never confused with them); callers never modify R in place.
"""
from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: Above this many words a fit takes the paper-scale paths: minres's top eigenpairs by Lanczos (`extraction`) and the
#: fit statistics by Woodbury (`fit.model_fit`). A full decomposition costs O(p^3) per objective evaluation (0.7 s at
#: 1,700 words on one core; 0.02-0.05 s by Lanczos, which costs O(p^2) per matrix product), and a fit table refits
#: dozens of K. At or below it, the direct computations are cheap and every result stays what it was.
FAST_PATH_MIN_WORDS = 400


def per_matrix(fn: Callable[[np.ndarray], T] | None = None, *, copy: bool = True, size: int = 4) -> Any:
    """Cache `fn(R)` for the last `size` array objects it saw. Array results are returned as copies unless
    `copy=False` (for a result that is passed on as a matrix and must keep its identity, so that functions of it are
    cached too; such a result is never modified). Safe in threads (`options.thread_map`): the list is read and
    replaced under a lock; two threads asking for the same new matrix at once may both compute it."""
    def decorate(f: Callable[[np.ndarray], T]) -> Callable[[np.ndarray], T]:
        seen: list[tuple[weakref.ref, Any]] = []
        lock = threading.Lock()

        def lookup(R: np.ndarray) -> tuple[bool, Any]:
            with lock:
                for ref, value in seen:
                    if ref() is R:
                        return True, value
            return False, None

        @functools.wraps(f)
        def wrapper(R: np.ndarray, *args: Any, **kwargs: Any) -> T:
            if args or kwargs:  # other options than the defaults: computed, not cached
                return f(R, *args, **kwargs)
            found, value = lookup(R)
            if not found:
                value = f(R)
                with lock:
                    seen[:] = [(r, v) for r, v in seen if r() is not None][-(size - 1):] + [(weakref.ref(R), value)]
            return value.copy() if copy and isinstance(value, np.ndarray) else value

        return wrapper

    return decorate(fn) if fn is not None else decorate


_GRAM: dict[int, tuple[weakref.ref, np.ndarray]] = {}  # id(R) -> (R, C), while R lives
_GRAM_LOCK = threading.RLock()  # re-entrant: a freed matrix's callback may run while this thread holds it


def remember_gram_factor(R: np.ndarray, C: np.ndarray) -> None:
    """Record that R = C'C with C of n < p rows (standardised data / sqrt(n)): R then has rank < n, and what a fit
    needs of it (its eigenvalues, the diagonal of a ridged inverse) comes from n x n matrices instead of p x p ones.
    Why: a resample of the paper's study is ~420 respondents x ~2,000 words; each p x p decomposition took about a
    second, an n x n one a tenth of that (and at 50 respondents a thousandth). Kept while R lives (not for the last
    few matrices, as `per_matrix`: with fits side by side a shorter memory would make a fit's path, and so its last
    bits, depend on what the other threads did)."""
    key = id(R)

    def forget(ref: weakref.ref, key: int = key) -> None:
        with _GRAM_LOCK:
            if key in _GRAM and _GRAM[key][0] is ref:
                del _GRAM[key]

    with _GRAM_LOCK:
        _GRAM[key] = (weakref.ref(R, forget), C)


def gram_factor(R: np.ndarray) -> np.ndarray | None:
    """The C of `remember_gram_factor(R, C)`, or None."""
    with _GRAM_LOCK:
        entry = _GRAM.get(id(R))
    return entry[1] if entry is not None and entry[0]() is R else None


def submatrix(R: np.ndarray, keep: list[int]) -> np.ndarray:
    """R[keep, keep] (the words left once twins are merged), with its Gram factor when R has one."""
    Rk = R[np.ix_(keep, keep)]
    C = gram_factor(R)
    if C is not None:
        remember_gram_factor(Rk, C[:, keep])
    return Rk


@per_matrix
def eigenvalues(R: np.ndarray) -> np.ndarray:
    """`np.linalg.eigvalsh(R)` (ascending), once per matrix: the K rules and the condition number both need them.

    With a Gram factor (`remember_gram_factor`), the non-zero ones are those of C C' (n x n) and the other p - n are
    0 exactly (eigvalsh(R) gives them as rounding noise of about 1e-15): equal to 1e-10, not to the last bit."""
    C = gram_factor(R)
    if C is None:
        return np.linalg.eigvalsh(R)
    return np.sort(np.concatenate([np.zeros(R.shape[0] - C.shape[0]), np.linalg.eigvalsh(C @ C.T)]))


@per_matrix
def squared_norm(R: np.ndarray) -> float:
    """sum(R ** 2), once per matrix (each VSS entry of the K table divides by it)."""
    return float(np.sum(R**2))


@per_matrix
def sym_cond(R: np.ndarray) -> float:
    """The 2-norm condition number of a symmetric matrix, |eigenvalue| max over min: what `np.linalg.cond` gives (its
    singular values are these absolute eigenvalues) from `eigvalsh`, several times cheaper than numpy's SVD."""
    a = np.abs(eigenvalues(R))
    with np.errstate(divide="ignore"):
        return float(a.max() / a.min()) if a.size else 0.0


@per_matrix
def logdet(R: np.ndarray) -> tuple[float, float]:
    """(sign, log |det|) of R, as `np.linalg.slogdet`."""
    sign, value = np.linalg.slogdet(R)
    return float(sign), float(value)
