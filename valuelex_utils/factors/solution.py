"""The factor solution for a fixed K (extract, rotate, canonicalise, assign words) and its bootstrap intervals."""
from __future__ import annotations

import numpy as np
from scipy import optimize

from .correlations import _tetrachoric, correlation_matrix
from .extraction import _extract
from .linalg import submatrix
from .rotation import _canonical, _rotate


def _duplicate_words(R: np.ndarray, tol: float = 1e-8) -> dict[int, tuple[int, float]]:
    """Words perfectly (|r| = 1) correlated with an earlier word: {index: (twin index, sign)}. They make R singular
    and carry no extra information; they are fitted through their twin and get its loadings (times the sign).

    The candidate pairs are found in one array operation (a Python loop over the p^2 / 2 pairs took seconds at the
    paper's 2,000 words), then visited in the order the loop visited them: each word's twin is its first earlier
    word that is not itself a twin."""
    dup: dict[int, tuple[int, float]] = {}
    near = np.abs(np.abs(np.triu(R, 1)) - 1.0) < tol
    for j, i in zip(*np.nonzero(near)):  # row-major: by j, then i, as the loop visited them
        j, i = int(j), int(i)
        if j not in dup and i not in dup:
            dup[i] = (j, float(np.sign(R[j, i])))
    return dup


def _solve(R: np.ndarray, k: int, method: str, rotation: str, dup: dict[int, tuple[int, float]],
           threshold: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[str]]:
    """Extract, rotate, canonicalise and assign for a fixed K; returns (loadings p x k, phi, assignment, notes)."""
    p = R.shape[0]
    if k == 0:
        return np.zeros((p, 0)), None, np.full(p, -1), []
    keep = [j for j in range(p) if j not in dup]
    # R itself when no word is a twin: the same object, so what was computed of it (eigenvalues, minres's start) is
    # reused (a copy cost one more eigendecomposition per fit: at paper scale a fifth of each resample)
    L0, notes = _extract(submatrix(R, keep) if dup else R, k, method)
    Lr, phi = _rotate(L0, rotation if k >= 2 else "none")
    Lr, phi = _canonical(Lr, phi)
    L = np.zeros((p, k))
    L[keep] = Lr
    for i, (j, sign) in dup.items():
        L[i] = sign * L[j]
    absL = np.abs(L)
    best = absL.argmax(axis=1)
    assign = np.where(absL[np.arange(p), best] >= threshold, best, -1)
    return L, phi, assign, notes


def _align(Lb: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Columns of a bootstrap solution matched to the full-data factors by Tucker congruence (Hungarian assignment
    on |congruence|) and sign-flipped to agree: factor order and sign are arbitrary in every refit."""
    num = Lb.T @ L
    den = np.sqrt(np.outer((Lb**2).sum(axis=0), (L**2).sum(axis=0)))
    cong = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    rows, cols = optimize.linear_sum_assignment(-np.abs(cong))
    out = np.zeros_like(L)
    for r, c in zip(rows, cols):
        out[:, c] = Lb[:, r] * (1.0 if cong[r, c] >= 0 else -1.0)
    return out


def _bootstrap_loadings(Xa: np.ndarray, corr: str, k: int, method: str, rotation: str, L: np.ndarray,
                        n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Percentile 95% intervals of the pattern loadings: `n_boot` resamples of respondents refitted with the same K,
    method and rotation, each aligned to the full-data factors (`_align`). Resamples in which a word is constant are
    skipped (returned count). Why percentile intervals: loadings are bounded and skewed near +-1, so mean +- 2 SE
    misleads there (psych's fa(n.iter=) reports both)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17]))
    n = Xa.shape[0]
    draws, skipped = [], 0
    for _ in range(n_boot):
        S = Xa[rng.integers(0, n, n)]
        if np.any(S.std(axis=0) == 0):
            skipped += 1
            continue
        Rb = _tetrachoric(S)[0] if corr == "tetrachoric" else correlation_matrix(S, "pearson")
        Lb, _, _, _ = _solve(Rb, k, method, rotation, _duplicate_words(Rb), 0.0)
        draws.append(_align(Lb, L))
    if not draws:
        return np.full_like(L, np.nan), np.full_like(L, np.nan), skipped
    arr = np.stack(draws)
    return np.percentile(arr, 2.5, axis=0), np.percentile(arr, 97.5, axis=0), skipped
