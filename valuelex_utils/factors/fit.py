"""Model fit and the output psych users expect from an EFA (step 3 of ValueLex, beside `efa.fit_factors`).

Which K? Parallel analysis gives one answer; the fit of the factor model at each candidate K gives the trade-off behind
it. This module computes, for a correlation matrix and a fitted model, what R's `psych::fa` reports, with psych's
formulas (psych 2.2.9, `fa.stats`, `VSS`, `factor.scores`, `schmid`/`omega`), so that numbers can be read side by side
with the literature and checked against psych itself (tests/test_factors_psych.py, references in tests/data/psych/):

* `model_fit`: likelihood-ratio chi-square (Bartlett-corrected) and df, RMSEA with its 90% interval, Tucker-Lewis
  index, BIC, RMSR (root mean square of the off-diagonal residuals);
* `item_complexity` (Hofmann), `score_weights` (regression = Thurstone, and Bartlett), `omega` (McDonald's omega total
  and hierarchical, Schmid-Leiman).

Velicer's MAP and VSS (psych's `VSS`), which pick a K, live with the other K rules in `retention`.

All take a correlation matrix, so they work for Pearson and tetrachoric matrices alike. Written here because
factor_analyzer has none of them (it has only loadings, communalities and KMO/Bartlett).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats

from .extraction import _minres  # one implementation of minres
from .linalg import FAST_PATH_MIN_WORDS, logdet, per_matrix, sym_cond

__all__ = [
    "cor_smooth",
    "item_complexity",
    "model_fit",
    "omega",
    "score_weights",
]


@per_matrix(copy=False)
def cor_smooth(R: np.ndarray, eig_tol: float = 1e-12) -> np.ndarray:
    """psych::cor.smooth: a correlation matrix with eigenvalues below `eig_tol` raised to 100 * eig_tol, rescaled to
    trace p and back to a unit diagonal. Unchanged when already positive definite (as psych does). Why: the fit
    statistics need log det and an inverse, undefined for a singular matrix (more words than respondents)."""
    R = np.asarray(R, float)
    vals, vecs = np.linalg.eigh(R)
    if vals.min() >= np.finfo(float).eps:
        return R
    vals = np.where(vals < eig_tol, 100 * eig_tol, vals)
    vals = vals * R.shape[0] / vals.sum()
    S = (vecs * vals) @ vecs.T
    d = np.sqrt(np.diag(S))
    return S / np.outer(d, d)


def _positive_definite_by_construction(uniqueness: np.ndarray, phi: np.ndarray | None) -> bool:
    """Whether the model matrix M = L phi L' + diag(uniqueness) is surely positive definite, so that `cor_smooth`
    would return it unchanged: L phi L' is positive semi-definite when phi is, and adding the diagonal raises every
    eigenvalue by at least its smallest entry (Weyl). The margin (1e-8) is far above eigh's rounding of a correlation
    matrix (~1e-13), so the answer agrees with cor_smooth's own test; it spares one O(p^3) eigh per fitted K."""
    if uniqueness.size == 0 or uniqueness.min() < 1e-8:
        return False
    return phi is None or bool(np.linalg.eigvalsh(np.asarray(phi, float)).min() >= 0.0)


def _discrepancy_low_rank(Rs: np.ndarray, L: np.ndarray, phi: np.ndarray | None, uniqueness: np.ndarray) -> float:
    """F = tr(M^-1 Rs) - log det(M^-1 Rs) - p for M = diag(uniqueness) + L phi L', in O(p^2 K) instead of O(p^3).

    With G G' = L phi L' (G = L phi^1/2), A = Psi^-1 G and C = I + G' A (K x K), Woodbury gives
    tr(M^-1 Rs) = tr(Psi^-1 Rs) - tr(C^-1 A' Rs A) and the determinant lemma log det M = sum log psi + log det C;
    log det Rs is computed once per matrix. NaN when det Rs <= 0, as the direct formula gives. Used above
    `FAST_PATH_MIN_WORDS` words, where the direct solve and determinant cost seconds per fitted K (tested against
    it)."""
    if phi is None:
        G = L
    else:
        w, V = np.linalg.eigh(np.asarray(phi, float))
        G = L @ (V * np.sqrt(np.maximum(w, 0.0)))
    A = G / uniqueness[:, None]
    C = np.eye(G.shape[1]) + G.T @ A
    sign_r, logdet_r = logdet(Rs)
    if sign_r <= 0:
        return float("nan")
    logdet_m = float(np.log(uniqueness).sum() + np.linalg.slogdet(C)[1])
    trace = float((np.diag(Rs) / uniqueness).sum() - np.trace(np.linalg.solve(C, A.T @ (Rs @ A))))
    return trace - (logdet_r - logdet_m) - Rs.shape[0]


def _rmsea_bounds(chisq: float, dof: float, n_obs: int, alpha: float) -> tuple[float | None, float | None]:
    """psych's 1 - alpha interval of RMSEA: noncentrality parameters at which the observed chi-square is the
    alpha/2 and 1 - alpha/2 quantile (uniroot on [0, max(n, chisq) + 2n]), scaled by (n - 1) df."""
    tail = alpha / 2
    top = max(n_obs, chisq) + 2 * n_obs

    def root(target: float) -> float | None:
        f = lambda x: stats.ncx2.cdf(chisq, dof, x) - target if x > 0 else stats.chi2.cdf(chisq, dof) - target
        try:
            return math.sqrt(optimize.brentq(f, 0.0, top, xtol=1e-10) / (n_obs - 1) / dof)
        except ValueError:
            return None

    upper = root(tail) if stats.chi2.cdf(chisq, dof) > tail else 0.0
    lower = root(1 - tail) if stats.chi2.cdf(chisq, dof) > 1 - tail else 0.0
    return lower, upper


def model_fit(R: np.ndarray, loadings: np.ndarray, phi: np.ndarray | None, n_obs: int,
              alpha: float = 0.10) -> dict[str, Any]:
    """Fit of a K-factor model to the correlation matrix R, as psych::fa reports it (fa.stats).

    model = L phi L' with unit diagonal; objective F = tr(M^-1 R) - log det(M^-1 R) - p (the ML discrepancy, whatever
    the extraction method); chi2 = F (n - 1 - (2p + 5)/6 - 2K/3) (Bartlett's correction); df = p(p-1)/2 - pK +
    K(K-1)/2; TLI from the null model's F0 = -log det R; RMSEA = sqrt(max(chi2 / (df n) - 1/(n - 1), 0)) with its
    1 - alpha interval from the noncentral chi-square; BIC = chi2 - df log n; RMSR = root mean square of the
    off-diagonal residuals. chi2, p, RMSEA, TLI and BIC are None when df <= 0 (the model is not identified).
    """
    R = np.asarray(R, float)
    L = np.asarray(loadings, float)
    p, k = L.shape
    model = L @ (np.eye(k) if phi is None else np.asarray(phi, float)) @ L.T
    resid = R - model
    np.fill_diagonal(resid, 0.0)
    rmsr = math.sqrt(float((resid**2).sum()) / (p * (p - 1)))
    dof = p * (p - 1) / 2 - p * k + k * (k - 1) / 2
    uniqueness = np.diag(R) - np.diag(model)
    Rs = cor_smooth(R)
    out: dict[str, Any] = {"n_factors": k, "df": dof, "rmsr": rmsr, "chi2": None, "p": None, "rmsea": None,
                           "rmsea_lower": None, "rmsea_upper": None, "tli": None, "bic": None, "objective": None}
    positive_definite = _positive_definite_by_construction(uniqueness, phi)
    if p > FAST_PATH_MIN_WORDS and positive_definite:
        F = _discrepancy_low_rank(Rs, L, phi, uniqueness)
    else:
        M = model.copy()
        np.fill_diagonal(M, np.diag(R))
        if not positive_definite:
            M = cor_smooth(M)
        try:
            MiR = np.linalg.solve(M, Rs)
        except np.linalg.LinAlgError:
            return out
        sign, log_det_mir = np.linalg.slogdet(MiR)
        F = float(np.trace(MiR) - log_det_mir - p) if sign > 0 else float("nan")
    sign0, logdet0 = logdet(Rs)
    F0 = float(np.trace(Rs) - logdet0 - p) if sign0 > 0 else float("nan")
    out["objective"] = F if math.isfinite(F) else None
    nm = (n_obs - 1) - (2 * p + 5) / 6 - 2 * k / 3
    if not math.isfinite(F):
        return out
    chisq = max(F * nm, 0.0)
    M0 = F0 * 2 / (p * (p - 1))
    if dof > 0:
        Mm = F / dof
        out["chi2"] = chisq
        out["p"] = float(stats.chi2.sf(chisq, dof))
        out["tli"] = float((M0 - Mm) / (M0 - 1 / nm)) if math.isfinite(M0) else None
        out["rmsea"] = math.sqrt(max(chisq / (dof * n_obs) - 1 / (n_obs - 1), 0.0))
        lo, hi = _rmsea_bounds(chisq, dof, n_obs, alpha)
        out["rmsea_lower"] = lo if lo is None or lo <= out["rmsea"] else None
        out["rmsea_upper"] = hi if hi is None or hi >= out["rmsea"] else None
        out["bic"] = chisq - dof * math.log(n_obs)
    return out


def null_fit(R: np.ndarray, n_obs: int, alpha: float = 0.10) -> dict[str, Any]:
    """Fit of the K = 0 model (independent words: R = I), for the row K = 0 of the table of candidates, so that
    BIC and RMSEA can say "no factor". chi2 is Bartlett's sphericity statistic (psych's null.chisq), df = p(p-1)/2;
    RMSEA, its interval and BIC as in `model_fit`; TLI is undefined (it is relative to this model); RMSR is the root
    mean square of the off-diagonal correlations."""
    R = np.asarray(R, float)
    p = R.shape[0]
    Rs = cor_smooth(R)
    sign, log_det = logdet(Rs)
    off = R - np.diag(np.diag(R))
    out: dict[str, Any] = {"n_factors": 0, "df": p * (p - 1) / 2, "rmsr": math.sqrt(float((off**2).sum()) / (p * (p - 1))),
                           "chi2": None, "p": None, "rmsea": None, "rmsea_lower": None, "rmsea_upper": None,
                           "tli": None, "bic": None, "objective": None}
    if sign <= 0:
        return out
    F0 = float(np.trace(Rs) - log_det - p)
    chisq = max(F0 * ((n_obs - 1) - (2 * p + 5) / 6), 0.0)
    dof = out["df"]
    out.update(objective=F0, chi2=chisq, p=float(stats.chi2.sf(chisq, dof)), bic=chisq - dof * math.log(n_obs),
               rmsea=math.sqrt(max(chisq / (dof * n_obs) - 1 / (n_obs - 1), 0.0)))
    out["rmsea_lower"], out["rmsea_upper"] = _rmsea_bounds(chisq, dof, n_obs, alpha)
    return out


def item_complexity(loadings: np.ndarray) -> np.ndarray:
    """Hofmann's complexity per word: (sum a^2)^2 / sum a^4 -- 1 when a word loads on one factor only, K when it loads
    equally on all. Pattern loadings, as psych::fa reports it. NaN for a word with all loadings 0."""
    L = np.asarray(loadings, float)
    num = (L**2).sum(axis=1) ** 2
    den = (L**4).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def score_weights(R: np.ndarray, loadings: np.ndarray, phi: np.ndarray | None, method: str) -> np.ndarray:
    """Factor-score weights W (p x K); scores = standardised data (sd with n - 1, as R's scale) @ W.

    "regression" (Thurstone 1935; psych's default): W = R^-1 S with S = L phi the structure matrix -- the scores
    correlate most with the factors, but are biased toward the mean and correlate even for orthogonal factors.
    "bartlett": W = U^-2 L (L' U^-2 L)^-1 with U^2 = 1 - communality -- unbiased (each factor's score has expectation
    the factor), at the price of more variance. Both as psych::factor.scores; the pseudo-inverse is used when R is
    singular (more words than respondents), where psych switches to one too.
    """
    R = np.asarray(R, float)
    L = np.asarray(loadings, float)
    k = L.shape[1]
    Phi = np.eye(k) if phi is None else np.asarray(phi, float)
    if method == "regression":
        S = L @ Phi
        try:
            if sym_cond(R) > 1e12:
                raise np.linalg.LinAlgError
            return np.linalg.solve(R, S)
        except np.linalg.LinAlgError:
            return np.linalg.pinv(R, hermitian=True) @ S
    if method == "bartlett":
        u2 = np.clip(1.0 - np.einsum("ij,jk,ik->i", L, Phi, L), 1e-6, None)
        A = L / u2[:, None]
        return A @ np.linalg.pinv(L.T @ A)
    raise ValueError(f"unknown factor-score method {method!r} (regression, bartlett)")


def _g_from_phi(phi: np.ndarray) -> np.ndarray:
    """Loadings of the K first-order factors on one general factor, from their correlations phi: a one-factor minres
    fit for K >= 3; for K = 2 the model is not identified and both get sqrt(phi_12) (psych::schmid, option "equal")."""
    k = phi.shape[0]
    if k == 2:  # a negative correlation means the second factor is reversed relative to g
        g = math.sqrt(abs(phi[0, 1]))
        return np.array([g, math.copysign(g, phi[0, 1])])
    g, _ = _minres(phi, 1)
    g = g[:, 0]
    return g if g.sum() >= 0 else -g


def omega(R: np.ndarray, loadings: np.ndarray, phi: np.ndarray | None) -> dict[str, Any]:
    """McDonald's omega from an oblique solution through the Schmid-Leiman transformation (as psych::omega).

    A general factor g is fitted to the factor correlations phi; each word's g loading is its pattern loadings times
    the factors' g loadings, its group-factor loadings are the pattern loadings times sqrt(1 - g_j^2). Words loading
    negatively on g are reversed (as psych does). With Vt the sum of all entries of the (reversed) correlation matrix:
    omega_total = 1 - sum(uniquenesses) / Vt, uniquenesses 1 - communality of the oblique model (reliability of the total score of all words), omega_h = (sum g)^2 / Vt
    (the share of the total score due to g alone). For K < 2 or orthogonal rotations omega_h is not defined (None);
    for K = 2 the g loadings of the two factors are set equal (psych's default, which warns the same).
    """
    R = np.asarray(R, float)
    L = np.asarray(loadings, float)
    k = L.shape[1]
    if k == 0:
        return {"omega_total": None, "omega_h": None, "g_loadings": None}
    Phi = np.eye(k) if phi is None else np.asarray(phi, float)
    h2 = np.einsum("ij,jk,ik->i", L, Phi, L)
    gload = None
    if k >= 2 and phi is not None:
        gf = _g_from_phi(Phi)
        gload = L @ gf
    key = np.sign(gload if gload is not None else L[:, 0])
    key[key == 0] = 1.0
    Rk = R * np.outer(key, key)
    Vt = float(Rk.sum())
    u2 = 1.0 - h2
    omega_t = 1.0 - float(u2.sum()) / Vt
    omega_h = None if gload is None else float(np.abs(gload).sum() ** 2 / Vt)
    # a factor loading >= 0.95 on g is a Heywood case of the second-order fit: g is then not determined (with one
    # dominant factor correlation any split of it fits) and omega_h depends on where the optimiser stops
    g_heywood = bool(gload is not None and k >= 3 and np.max(np.abs(gf)) >= 0.95)
    return {"omega_total": omega_t, "omega_h": omega_h,
            "g_loadings": None if gload is None else (gload * key).tolist(), "g_heywood": g_heywood}
