"""Correlation matrices of the word counts: Pearson, and tetrachoric (0/1 use of each word, latent bivariate normal)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from valuelex_utils.errors import UserError

from .options import CORRS, _one_blas_thread


def _bvn_cdf(h: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P(Z1 <= h, Z2 <= k) for a standard bivariate normal with correlation r, vectorised (Owen 1956, via Owen's T).

    Why not scipy.stats.multivariate_normal.cdf: it takes one correlation per call, and tetrachoric matrices need
    thousands of pairs times a dozen root-finding steps. The Owen's T identity is exact (checked against scipy to
    1e-12 in the tests). h or k exactly 0 is nudged to 1e-12 (the identity divides by them; the error is ~1e-13).
    """
    h = np.where(h == 0, 1e-12, h)
    k = np.where(k == 0, 1e-12, k)
    s = np.sqrt(np.maximum(1.0 - r * r, 1e-300))
    beta = np.where(h * k > 0, 0.0, 0.5)
    return (0.5 * special.ndtr(h) + 0.5 * special.ndtr(k)
            - special.owens_t(h, (k - r * h) / (h * s)) - special.owens_t(k, (h - r * k) / (k * s)) - beta)


def _bvn_pdf(h: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Bivariate normal density: the derivative of `_bvn_cdf` in r (Plackett's identity), for Newton steps."""
    one_r2 = np.maximum(1.0 - r * r, 1e-300)
    return np.exp(-(h * h - 2 * r * h * k + k * k) / (2 * one_r2)) / (2 * np.pi * np.sqrt(one_r2))


def _solve_tetrachoric(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray,
                       correction: float = 0.5) -> np.ndarray:
    """Tetrachoric r for 2x2 tables given as arrays of cell counts a=n11, b=n10, c=n01, d=n00 (vectorised).

    For one 2x2 table the bivariate-normal model (two thresholds and rho) is saturated, so the maximum-likelihood
    estimate reproduces the table exactly: thresholds from the margins and rho solving Phi2(t1, t2, rho) = a / N
    (Olsson 1979's two-step estimator coincides with the joint MLE here). Phi2 increases in rho, so a safeguarded
    Newton iteration (bisection when a step leaves the bracket) finds the unique root. Zero cells make the MLE +-1;
    `correction` is added to every zero cell first (psych::tetrachoric's default 0.5), giving a finite estimate.
    """
    cells = [np.asarray(x, float).copy() for x in (a, b, c, d)]
    if correction > 0:
        for x in cells:
            x[x == 0] = correction
    a, b, c, d = cells
    n = a + b + c + d
    p1 = (a + b) / n  # P(X1 = 1)
    p2 = (a + c) / n
    p11 = a / n
    # P(X1=1, X2=1) = P(Z1 > -t1, Z2 > -t2) = Phi2(t1, t2, rho) with t = Phi^-1(p)
    t1 = special.ndtri(p1)
    t2 = special.ndtri(p2)
    lo = np.full(a.shape, -1.0)
    hi = np.full(a.shape, 1.0)
    # start from the cosine-pi approximation (exact for symmetric tables), which is close for most tables
    rho = np.clip(np.cos(np.pi / (1.0 + np.sqrt(np.maximum(a * d, 1e-300) / np.maximum(b * c, 1e-300)))),
                  -0.999, 0.999)
    active = np.arange(rho.size)
    for _ in range(200):
        r, h, k = rho[active], t1[active], t2[active]
        f = _bvn_cdf(h, k, r) - p11[active]
        lo_a = np.where(f < 0, r, lo[active])
        hi_a = np.where(f > 0, r, hi[active])
        step = r - f / np.maximum(_bvn_pdf(h, k, r), 1e-300)
        # Converged when the residual vanishes or the Newton step is below tolerance. Tested *before* the bracket
        # check: a step that rounds to r itself sits on the bracket end r and would count as "outside", and the
        # bisection midpoint of a one-sided bracket, (r - 1) / 2 or (r + 1) / 2, would be returned instead of r
        # (issue 17: tetrachoric_from_table(4, 5, 3, 348) gave -0.072 instead of 0.855).
        converged = (np.abs(f) < 1e-14) | (np.abs(step - r) < 1e-11) | (hi_a - lo_a < 1e-11)
        bad = (step <= lo_a) | (step >= hi_a) | ~np.isfinite(step)
        new = np.where(bad, 0.5 * (lo_a + hi_a), step)
        new = np.where(converged, np.where(bad, r, step), new)
        lo[active], hi[active], rho[active] = lo_a, hi_a, new
        active = active[~converged]
        if active.size == 0:
            break
    return np.clip(rho, -1.0, 1.0)


def tetrachoric_from_table(n11: float, n10: float, n01: float, n00: float, correction: float = 0.5) -> float:
    """Tetrachoric correlation of one 2x2 table (rows X1 = 1/0, columns X2 = 1/0): the bivariate-normal MLE.

    Exposed for tests and for reading single pairs; `tetrachoric_matrix` does all pairs at once.
    """
    if min(n11, n10, n01, n00) < 0 or (n11 + n10 + n01 + n00) <= 0:
        raise UserError("tetrachoric: cell counts must be >= 0 with a positive total")
    if (n11 + n10 == 0 or n01 + n00 == 0 or n11 + n01 == 0 or n10 + n00 == 0) and correction <= 0:
        raise UserError("tetrachoric: a margin is empty (a variable is constant); undefined without correction")
    return float(_solve_tetrachoric(*(np.array([x], float) for x in (n11, n10, n01, n00)), correction=correction)[0])


def _psd_correlation(r: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, int]:
    """Nearest-by-clipping positive semi-definite correlation matrix: clip eigenvalues below `eps`, rescale to a unit
    diagonal. Pairwise tetrachoric matrices are often indefinite (each pair is estimated alone), and minres, KMO and
    eigenvalue counts all assume a proper correlation matrix. Returns the matrix and how many eigenvalues were
    raised."""
    r = (r + r.T) / 2.0
    vals, vecs = np.linalg.eigh(r)
    n_bad = int((vals < eps).sum())
    if n_bad == 0:
        return r, 0
    fixed = (vecs * np.maximum(vals, eps)) @ vecs.T
    dg = np.sqrt(np.diag(fixed))
    fixed = fixed / np.outer(dg, dg)
    np.fill_diagonal(fixed, 1.0)
    return fixed, n_bad


def _tetrachoric(B: np.ndarray, correction: float = 0.5, make_psd: bool = True) -> tuple[np.ndarray, int]:
    B = np.asarray(B, float)
    n, p = B.shape
    n11 = B.T @ B
    n1 = B.sum(axis=0)
    n10 = n1[:, None] - n11
    n01 = n1[None, :] - n11
    n00 = n - n1[:, None] - n1[None, :] + n11
    iu = np.triu_indices(p, 1)
    r = np.eye(p)
    if iu[0].size:
        vals = _solve_tetrachoric(n11[iu], n10[iu], n01[iu], n00[iu], correction=correction)
        r[iu] = vals
        r[(iu[1], iu[0])] = vals
    if make_psd:
        return _psd_correlation(r)
    return r, 0


@_one_blas_thread
def tetrachoric_matrix(B: np.ndarray | pd.DataFrame, correction: float = 0.5, make_psd: bool = True) -> np.ndarray:
    """Tetrachoric correlation matrix of 0/1 data (n respondents x p words): latent normal correlations per pair.

    Why: a word used by 5% of respondents can have a Pearson (phi) correlation of at most ~0.2 with a word used by
    50%, however strongly the two are linked; Pearson loadings on rare words are therefore small and rare words fall
    under the 0.30 threshold. The tetrachoric correlation estimates the correlation of the continuous propensities
    behind the 0/1 use. Each pair is the exact bivariate-normal MLE of its 2x2 table (zero cells get `correction`);
    the assembled matrix is made positive semi-definite by eigenvalue clipping when needed. Any value > 0 counts as 1.
    """
    X = np.asarray(B, float)
    if X.ndim != 2:
        raise UserError("tetrachoric_matrix: expected a 2-D respondents x words array")
    X = (X > 0).astype(float)
    if np.any(X.std(axis=0) == 0):
        raise UserError("tetrachoric_matrix: a word is used by all or by no respondents (constant column)")
    return _tetrachoric(X, correction=correction, make_psd=make_psd)[0]


def standardised(A: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit variance (n in the denominator): Z'Z / n is the Pearson matrix."""
    return (A - A.mean(axis=0)) / A.std(axis=0)


def correlation_matrix(X: np.ndarray | pd.DataFrame, corr: str = "pearson") -> np.ndarray:
    """Pearson (default) or tetrachoric correlation matrix of a respondents x words matrix without constant columns."""
    A = np.asarray(X, float)
    if corr == "pearson":
        Z = standardised(A)
        return (Z.T @ Z) / A.shape[0]
    if corr == "tetrachoric":
        return tetrachoric_matrix(A)
    raise UserError(f"unknown correlation {corr!r} (choose from {', '.join(CORRS)})")
