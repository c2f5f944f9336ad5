"""Unrotated factor loadings for a fixed K: minres (own, analytic gradient), ml (factor_analyzer), principal.

factor_analyzer is imported inside `_import_factor_analyzer` on purpose: it pulls in scikit-learn, and the shim
patches it once for scikit-learn >= 1.8.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import optimize

from .linalg import FAST_PATH_MIN_WORDS, gram_factor, per_matrix, squared_norm, sym_cond


def _import_factor_analyzer():
    """Import factor_analyzer, patching its `check_array(force_all_finite=...)` call for scikit-learn >= 1.8.

    factor_analyzer 0.5.1 (the newest release) passes `force_all_finite`, which scikit-learn 1.8 removed, so
    `FactorAnalyzer.fit` raises TypeError there. The project pins scikit-learn < 1.8; this shim (rename the keyword to
    `ensure_all_finite`) costs nothing and keeps the module working if the pin is ever lifted.
    """
    import factor_analyzer.factor_analyzer as fa_mod
    from sklearn.utils import check_array as _sk_check_array

    if not getattr(fa_mod, "_valuelex_shimmed", False):
        def check_array(*args, **kwargs):
            if "force_all_finite" in kwargs:
                kwargs["ensure_all_finite"] = kwargs.pop("force_all_finite")
            return _sk_check_array(*args, **kwargs)

        fa_mod.check_array = check_array
        fa_mod._valuelex_shimmed = True
    return fa_mod


@per_matrix
def _smc_start(R: np.ndarray) -> np.ndarray:
    """Starting uniquenesses 1 - SMC, computed on a slightly ridged matrix so that a singular R (n <= p, duplicate
    words) still gives a start instead of factor_analyzer's LinAlgError."""
    p = R.shape[0]
    ridge = 0.0 if sym_cond(R) < 1e10 else 1e-3
    C = gram_factor(R)
    if C is not None and ridge:
        # R = C'C with n < p rows: diag((C'C + ridge I)^-1) by Woodbury, (I - C'(CC' + ridge I)^-1 C) / ridge, in
        # O(n^2 p) instead of a p x p inverse
        M = np.linalg.solve(C @ C.T + ridge * np.eye(C.shape[0]), C)
        diag_inv = (1 + ridge) * (1.0 - np.einsum("ij,ij->j", C, M)) / ridge
    else:
        diag_inv = np.diag(np.linalg.inv((R + ridge * np.eye(p)) / (1 + ridge)))
    smc = 1.0 - 1.0 / diag_inv
    return np.clip(1.0 - smc, 0.005, 1.0)


def _top_eigenpairs(Rs: Any, k: int, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (descending) of the symmetric `Rs` and their eigenvectors (p x k).

    Full `eigh` up to `FAST_PATH_MIN_WORDS` words (or when k is a large share of p); above, ARPACK's implicitly
    restarted Lanczos (`eigsh`, which="LA", tol=0: to machine precision) from `start` (the previous evaluation's top
    vectors summed, which minres passes so that successive calls start close to the answer; a fixed vector otherwise,
    since ARPACK's own random start would make results depend on earlier calls). `Rs` may also be a scipy
    `LinearOperator` (minres's product through the Gram factor); it takes the Lanczos path."""
    p = Rs.shape[0]
    if isinstance(Rs, np.ndarray) and (p <= FAST_PATH_MIN_WORDS or 4 * k >= p):
        vals, vecs = np.linalg.eigh(Rs)
        return vals[::-1][:k], vecs[:, ::-1][:, :k]
    from scipy.sparse.linalg import eigsh

    v0 = start if start is not None and np.any(start) else np.ones(p)
    vals, vecs = eigsh(Rs, k=k, which="LA", tol=0, v0=v0)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def _gram_operator(C: np.ndarray, diagonal: np.ndarray) -> Any:
    """R with `diagonal` on its diagonal, for R = C'C of rank n < p, as a product: two passes over the n x p factor
    instead of one over the p x p matrix. Why: Lanczos is a chain of matrix-vector products, and at the paper's scale
    (~420 respondents x ~2,000 words in a resample) C is a quarter of R's size, which roughly halves minres's
    eigen-solves."""
    from scipy.sparse.linalg import LinearOperator

    p = C.shape[1]
    d = np.asarray(diagonal, float) - np.einsum("ij,ij->j", C, C)  # replaces C'C's own diagonal

    def product(x: np.ndarray) -> np.ndarray:
        return C.T @ (C @ x) + (d[:, None] * x if x.ndim == 2 else d * x)

    return LinearOperator((p, p), matvec=product, matmat=product, dtype=float)


def _minres(R: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """Unrotated minres loadings: minimise sum((R* - L L')^2) over uniquenesses psi in [0.005, 1], R* = R with
    diagonal 1 - psi and L the top-k eigenpairs of R* (the objective of factor_analyzer's `_fit_uls_objective`).

    factor_analyzer minimises it with finite differences (p + 1 eigendecompositions per step: 15 s for 100 words);
    the gradient is analytic, d f / d psi_j = -2 (R* - L L')_jj, so this takes a few hundredths of a second. The
    tests check that both reach the same loadings. Returns (loadings p x k, converged).

    Above `FAST_PATH_MIN_WORDS` words (`_minres_wide`) the objective is computed from the eigenpairs alone, without
    forming the p x p residual, and through R's Gram factor when it has one.
    """
    p = R.shape[0]
    if p > FAST_PATH_MIN_WORDS:
        return _minres_wide(R, k)
    start: list[np.ndarray | None] = [None]

    def fun(psi):
        Rs = R.copy()
        np.fill_diagonal(Rs, 1.0 - psi)
        vals, vecs = _top_eigenpairs(Rs, k, start[0])
        start[0] = vecs.sum(axis=1)
        vals = np.maximum(vals, np.finfo(float).eps * 100)
        L = vecs * np.sqrt(vals)
        E = Rs - L @ L.T
        return float(np.sum(E**2)), -2.0 * np.diag(E)

    res = optimize.minimize(fun, _smc_start(R), jac=True, method="L-BFGS-B", bounds=[(0.005, 1.0)] * p,
                            options={"maxiter": 2000})
    Rs = R.copy()
    np.fill_diagonal(Rs, 1.0 - res.x)
    vals, vecs = _top_eigenpairs(Rs, k, start[0])
    return vecs * np.sqrt(np.maximum(vals, 0.0)), bool(res.success)


def _minres_wide(R: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """`_minres` at the paper's scale: the same objective and gradient, computed in O(p k) from R*'s top eigenpairs.

    With R* V = V lam and L = V sqrt(lam') (lam' = lam floored at a tiny positive value), ||R* - L L'||^2 =
    ||R*||^2 - 2 sum(lam' lam) + sum(lam'^2) and diag(R* - L L') = (1 - psi) - rowsums(L^2): no p x p residual (four
    passes over a 30 MB matrix per evaluation at 2,000 words). R*'s products go through R's Gram factor when it has
    one (`_gram_operator`), else through one working copy whose diagonal each evaluation overwrites. The loadings
    equal `_minres`'s direct computation to rounding (tested)."""
    p = R.shape[0]
    C = gram_factor(R)
    work = R.copy() if C is None else None
    off_diagonal = squared_norm(R) - float(np.sum(np.diag(R) ** 2))
    start: list[np.ndarray | None] = [None]

    def reduced(psi: np.ndarray) -> Any:
        if C is not None:
            return _gram_operator(C, 1.0 - psi)
        np.fill_diagonal(work, 1.0 - psi)
        return work

    def fun(psi):
        vals, vecs = _top_eigenpairs(reduced(psi), k, start[0])
        start[0] = vecs.sum(axis=1)
        floored = np.maximum(vals, np.finfo(float).eps * 100)
        L = vecs * np.sqrt(floored)
        f = off_diagonal + np.sum((1.0 - psi) ** 2) - 2.0 * np.dot(floored, vals) + np.sum(floored**2)
        return float(f), -2.0 * ((1.0 - psi) - np.einsum("ij,ij->i", L, L))

    res = optimize.minimize(fun, _smc_start(R), jac=True, method="L-BFGS-B", bounds=[(0.005, 1.0)] * p,
                            options={"maxiter": 2000})
    vals, vecs = _top_eigenpairs(reduced(res.x), k, start[0])
    return vecs * np.sqrt(np.maximum(vals, 0.0)), bool(res.success)


def _extract(R: np.ndarray, k: int, method: str) -> tuple[np.ndarray, list[str]]:
    """Unrotated loadings with fallbacks, so a near-singular matrix gives a recorded note rather than a crash."""
    notes: list[str] = []
    if method == "principal":  # principal components (psych::principal, factor_analyzer's "principal"): no uniqueness
        vals, vecs = np.linalg.eigh(R)
        return vecs[:, ::-1][:, :k] * np.sqrt(np.maximum(vals[::-1][:k], 0.0)), notes
    if method == "minres":
        L, ok = _minres(R, k)
        if not ok:
            notes.append("minres optimiser did not report convergence; loadings are from its last iterate")
        if np.all(np.isfinite(L)):
            return L, notes
        notes.append("minres failed on the raw correlation matrix; refitted on a smoothed matrix (R + 0.01 I) / 1.01")
        Rs = (R + 0.01 * np.eye(R.shape[0])) / 1.01
        L, _ = _minres(Rs, k)
        if np.all(np.isfinite(L)):
            return L, notes
    else:  # "ml" through factor_analyzer itself (finite-difference gradient: slow beyond ~50 words)
        fa_mod = _import_factor_analyzer()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                Rs = R
                if sym_cond(R) > 1e10:
                    Rs = (R + 0.01 * np.eye(R.shape[0])) / 1.01
                    notes.append("ml needs an invertible correlation matrix; used (R + 0.01 I) / 1.01")
                fa = fa_mod.FactorAnalyzer(n_factors=k, rotation=None, method="ml", is_corr_matrix=True,
                                           use_smc=True).fit(Rs)
            for w in caught:
                if "converge" in str(w.message).lower():
                    notes.append(f"factor_analyzer ml: {w.message}")
            L = np.asarray(fa.loadings_, float)
            if np.all(np.isfinite(L)):
                return L, notes
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            notes.append(f"ml failed ({type(exc).__name__}: {exc}); fell back to minres")
            L, _ = _minres((R + 0.01 * np.eye(R.shape[0])) / 1.01, k)
            if np.all(np.isfinite(L)):
                return L, notes
    notes.append("factor extraction failed; fell back to principal-component loadings")
    vals, vecs = np.linalg.eigh(R)
    return vecs[:, ::-1][:, :k] * np.sqrt(np.maximum(vals[::-1][:k], 0.0)), notes
