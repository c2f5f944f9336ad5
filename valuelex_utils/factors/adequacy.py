"""Adequacy of a correlation matrix for factor analysis: KMO and Bartlett's test of sphericity."""
from __future__ import annotations

import numpy as np
from scipy import stats

from .linalg import logdet, sym_cond


def _inverse(R: np.ndarray) -> tuple[np.ndarray, bool]:
    """Inverse of a correlation matrix, or its pseudo-inverse when singular (more words than respondents, collinear
    words). Returns (matrix, exact)."""
    if sym_cond(R) < 1e12:
        try:
            return np.linalg.inv(R), True
        except np.linalg.LinAlgError:
            pass
    return np.linalg.pinv(R, hermitian=True), False


def kmo(R: np.ndarray) -> tuple[np.ndarray, float]:
    """Kaiser-Meyer-Olkin measure of sampling adequacy from a correlation matrix: (per word, overall).

    Computed from the correlation matrix (the same formula as factor_analyzer.calculate_kmo, checked in the tests)
    so that it works for tetrachoric matrices too; uses the pseudo-inverse when the matrix is singular.
    """
    R = np.asarray(R, float)
    inv, _ = _inverse(R)
    d = np.sqrt(np.abs(np.diag(inv)))
    d[d == 0] = 1.0
    partial = -inv / np.outer(d, d)
    r2 = R.copy()
    np.fill_diagonal(r2, 0.0)
    np.fill_diagonal(partial, 0.0)
    r2 = r2**2
    q2 = partial**2
    per = r2.sum(axis=0) / (r2.sum(axis=0) + q2.sum(axis=0))
    overall = r2.sum() / (r2.sum() + q2.sum())
    return per, float(overall)


def bartlett_sphericity(R: np.ndarray, n: int) -> tuple[float | None, float | None, int]:
    """Bartlett's test that the correlation matrix is the identity: (chi2, p, df); chi2 and p are None when the matrix
    is singular (the statistic is infinite and the test undefined, e.g. with more words than respondents)."""
    R = np.asarray(R, float)
    p = R.shape[0]
    dof = p * (p - 1) // 2
    sign, log_det = logdet(R)
    factor = n - 1 - (2 * p + 5) / 6.0
    if sign <= 0 or not np.isfinite(log_det) or factor <= 0 or sym_cond(R) > 1e12:
        return None, None, dof
    chi2 = float(-log_det * factor)
    return chi2, float(stats.chi2.sf(chi2, dof)), dof
