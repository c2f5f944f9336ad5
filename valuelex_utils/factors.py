"""Step 3 of ValueLex: exploratory factor analysis of the respondent x word count matrix.

The paper reduces the elicited value words to a few dimensions with EFA (Alg. 1, Eq. 2; Fabrigar & Wegener 2011). This
module is that step, written so that it gives the same answer on every run and does not fall over on real word data,
which is sparse (most respondents never say most words), has many words unrelated to any dimension, and is often
wider than it is tall:

* adequacy first: KMO (overall and per word) and Bartlett's test of sphericity;
* the number of factors K by Horn's parallel analysis (default; 95th percentile of eigenvalues of column-permuted
  data, seeded), because Kaiser's eigenvalue > 1 rule counts sampling noise as factors when there are many unrelated
  words (the largest eigenvalue of a pure-noise correlation matrix is about (1 + sqrt(p/n))^2, far above 1);
  a deflated variant (Dobriban & Owen 2019) and Kaiser are options;
* a factor must keep at least 3 words with |loading| >= 0.30 on one pole, otherwise K is lowered and the model refitted:
  with many noise words Horn's test alone passes noise factors (measured in the tests and `parallel_analysis`);
* Pearson correlations of log(1 + count) by default (raw counts on request): raw counts are heavy-tailed and a single
  respondent who repeats a word 30 times creates correlations -- and parallel-analysis "factors" -- on his own;
* minres extraction (the objective of psych/factor_analyzer, with an analytic gradient so that 100+ words fit in well
  under a second instead of 15 s), oblique oblimin rotation by default (value dimensions are expected to correlate),
  varimax or promax on request, factor correlations (phi);
* each word goes to the factor with its highest |loading| when that is >= 0.30, otherwise to none (-1);
* deterministic output: every factor is flipped so its largest-|loading| word is positive, factors are ordered by
  explained variance, every random draw is seeded.

`corr="tetrachoric"` treats the matrix as 0/1 use of each word (count > 0) and estimates the latent bivariate-normal
correlation per pair, which undoes the attenuation that rare words suffer under Pearson (phi) correlations. Parallel
analysis and tetrachoric correlations are not in factor_analyzer and live here.

Measured on planted data (`valuelex_utils.planted`, one seed per setting, defaults, 100 permutations). "Recoverable"
means that a fit told the true K gets the groups right (ARI >= 0.9, < 20% of signal words unassigned); the rest are
too small, too sparse or too noisy for any K rule (e.g. 100 respondents, 4 words per factor, 90 noise words).
  grid A (used to choose the design; 120 settings, K 2..6, n 100-600, 20-120 words, Poisson and Bernoulli):
    K exact 70% of all settings, 91% of the 86 recoverable ones (8% one too many, 1% too few);
    ARI on assigned signal words: mean 0.98 and >= 0.9 in 97% of the recoverable settings.
  grid B (fixed before its results were seen; 100 settings, 3-12 words per factor, loadings 0.45-0.92, prevalence
    3-50%, Poisson means 0.2-6 with several over-dispersions, factor correlations up to 0.4):
    K exact 54% of all, 88% of the 52 recoverable ones; ARI mean 0.97, >= 0.9 in 94% of the recoverable ones.
  For comparison on grid B (recoverable settings; K exact): raw counts (transform="none") 82%, k_rule="deflated" 83%,
  no min_words pruning 69% (over-extraction).

What psych::fa reports beside the loadings -- fit per candidate K (chi-square, RMSEA with 90% CI, TLI, BIC, RMSR),
Velicer's MAP, VSS, uniquenesses, item complexity, regression and Bartlett factor scores, omega -- is computed in
`factor_fit` with psych's formulas and checked against psych itself (tests/test_factors_psych.py).

Factor indices in outputs are 0-based, in order of explained variance; -1 means unassigned.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from valuelex_utils.errors import UserError

__all__ = [
    "FactorResult",
    "load_matrix",
    "correlation_matrix",
    "parallel_analysis",
    "kaiser_k",
    "tetrachoric_from_table",
    "tetrachoric_matrix",
    "kmo",
    "bartlett_sphericity",
    "fit_factors",
    "write_factor_outputs",
    "scree_figure",
    "loadings_heatmap",
    "bootstrap_stability",
    "run_factors_cli",
]

METHODS = ("minres", "ml", "principal")
ROTATIONS = ("oblimin", "varimax", "promax", "none")
OBLIQUE = ("oblimin", "promax")
K_RULES = ("parallel", "deflated", "kaiser")
TRANSFORMS = ("log1p", "none")
CORRS = ("pearson", "tetrachoric")
_NOTES_ATTR = "valuelex_notes"


def _one_blas_thread(func):
    """Run `func` with one BLAS thread. The matrices here are small (at most a few hundred rows and columns) and the
    work is thousands of small products and eigendecompositions; multi-threaded OpenBLAS spins waiting for its threads,
    and on a busy 2-core machine the test file took 196 s instead of 11 s. Nested calls are cheap."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------------------------------------
# factor_analyzer compatibility shim
# --------------------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------------------
# Loading and validating the matrix
# --------------------------------------------------------------------------------------------------------------------
def load_matrix(path: str | os.PathLike) -> pd.DataFrame:
    """Read a respondent x word count matrix (CSV: first column `respondent`, one column per word).

    Bad input raises `UserError` with one line that names the problem (missing file, not UTF-8, duplicate or empty
    word names, non-numeric, missing, infinite or negative counts, fewer than 3 respondents or 3 words). Words that
    every respondent used equally often (zero variance, e.g. never used) carry no co-occurrence information and make
    the correlation matrix undefined, so they are dropped; the drop is recorded in ``df.attrs["valuelex_notes"]`` and
    surfaces in `FactorResult.notes`.
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"matrix file not found: {p}")
    if not p.is_file():
        raise UserError(f"matrix path is not a file: {p}")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not UTF-8 text (byte {exc.start}); save the matrix as UTF-8 CSV") from None
    if not text.strip():
        raise UserError(f"{p}: empty file")
    try:
        header = next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration) as exc:
        raise UserError(f"{p}: not a readable CSV ({exc})") from None
    header = [h.strip() for h in header]
    words = header[1:]
    if len(header) < 2:
        raise UserError(f"{p}: needs a first column `respondent` and one column per word; found {len(header)} column")
    if any(w == "" for w in words):
        raise UserError(f"{p}: a word column has an empty name")
    dup = sorted({w for w in words if words.count(w) > 1})
    if dup:
        raise UserError(f"{p}: duplicate word columns: {', '.join(dup[:5])}")
    try:
        df = pd.read_csv(io.StringIO(text), index_col=0, dtype={header[0]: str} if header[0] else None)
    except (pd.errors.ParserError, ValueError) as exc:
        raise UserError(f"{p}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    df.index = df.index.astype(str)
    df.index.name = "respondent"
    notes: list[str] = []
    if header[0].lower() != "respondent":
        notes.append(f"first column {header[0]!r} used as the respondent id (expected 'respondent')")
    df = _validate_counts(df, source=str(p))
    notes += df.attrs.get(_NOTES_ATTR, [])
    if df.index.duplicated().any():
        notes.append(f"{int(df.index.duplicated().sum())} duplicate respondent ids (rows kept)")
    df.attrs[_NOTES_ATTR] = notes
    return df


def _validate_counts(df: pd.DataFrame, source: str = "matrix", allow_negative: bool = False) -> pd.DataFrame:
    """Check counts (numeric, finite, >= 0, >= 3 x 3) and drop zero-variance words with a note; used by every entry
    point so a DataFrame handed over by a notebook gets the same checks as a CSV."""
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"{source}: expected a pandas DataFrame (respondents x words)")
    notes = list(df.attrs.get(_NOTES_ATTR, []))
    bad_cols = []
    num = {}
    for c in df.columns:
        col = pd.to_numeric(df[c], errors="coerce")
        if col.isna().any():
            bad_cols.append((c, df[c][col.isna()].iloc[0]))
        num[str(c)] = col.astype(float)
    if bad_cols:
        c, v = bad_cols[0]
        what = "a missing value" if pd.isna(v) else f"non-numeric value {v!r}"
        raise UserError(f"{source}: word column {c!r} has {what}; counts must be numbers >= 0")
    out = pd.DataFrame(num, index=df.index)
    vals = out.to_numpy()
    if not np.isfinite(vals).all():
        c = out.columns[np.where(~np.isfinite(vals))[1][0]]
        raise UserError(f"{source}: word column {c!r} has an infinite value; counts must be finite")
    if not allow_negative and (vals < 0).any():
        r, cidx = np.argwhere(vals < 0)[0]
        raise UserError(f"{source}: negative count {vals[r, cidx]:g} in word column {out.columns[cidx]!r} "
                        f"(respondent {out.index[r]!r}); counts must be >= 0")
    if out.shape[0] < 3:
        raise UserError(f"{source}: {out.shape[0]} respondents; factor analysis needs at least 3")
    std = out.std(axis=0, ddof=0).to_numpy()
    const = [c for c, s in zip(out.columns, std) if not s > 0]
    if const:
        out = out.drop(columns=const)
        shown = ", ".join(const[:10]) + (" ..." if len(const) > 10 else "")
        notes.append(f"dropped {len(const)} zero-variance word(s) (every respondent the same count): {shown}")
    if out.shape[1] < 3:
        raise UserError(f"{source}: {out.shape[1]} word(s) with varying counts; factor analysis needs at least 3")
    out.index.name = df.index.name or "respondent"
    out.attrs[_NOTES_ATTR] = notes
    return out


# --------------------------------------------------------------------------------------------------------------------
# Correlations: Pearson and tetrachoric
# --------------------------------------------------------------------------------------------------------------------
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


def correlation_matrix(X: np.ndarray | pd.DataFrame, corr: str = "pearson") -> np.ndarray:
    """Pearson (default) or tetrachoric correlation matrix of a respondents x words matrix without constant columns."""
    A = np.asarray(X, float)
    if corr == "pearson":
        Z = (A - A.mean(axis=0)) / A.std(axis=0)
        return (Z.T @ Z) / A.shape[0]
    if corr == "tetrachoric":
        return tetrachoric_matrix(A)
    raise UserError(f"unknown correlation {corr!r} (choose from {', '.join(CORRS)})")


# --------------------------------------------------------------------------------------------------------------------
# Number of factors
# --------------------------------------------------------------------------------------------------------------------
def _top_eig_gram(P: np.ndarray) -> float:
    """Largest eigenvalue of P'P / n, through the smaller of the two Gram matrices."""
    n, p = P.shape
    G = (P.T @ P) if p <= n else (P @ P.T)
    return float(np.linalg.eigvalsh(G)[-1] / n)


@_one_blas_thread
def parallel_analysis(
    X: np.ndarray | pd.DataFrame,
    n_iter: int = 100,
    percentile: float = 95,
    seed: int = 0,
    corr: str = "pearson",
    deflate: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Horn's parallel analysis: K = how many leading eigenvalues beat those of data with no common factors.

    Null data: every word's column permuted independently across respondents (seeded). This keeps each word's exact
    marginal distribution -- its sparsity, its zeros, its outliers -- and destroys only the co-occurrence; a
    normal-random null (Horn's original) would understate what skewed, sparse columns produce by chance.

    Eigenvalues are those of the full correlation matrix (principal-component eigenvalues, unit diagonal), for the
    data and the null alike: the common default (Horn 1965; psych's `fa.parallel` "pc"; 95th percentile as in
    Glorfeld 1995). Common-factor eigenvalues need the inverse of the correlation matrix (for squared multiple
    correlations), which is singular whenever there are more words than respondents -- a normal shape for this data.

    `deflate=True` adds the deflated test of Dobriban & Owen (2019): the k-th eigenvalue must also beat the
    `percentile` of the largest eigenvalue of column-permuted *residual* data, after the first k-1 components are
    removed. Why: Horn compares the k-th observed eigenvalue with the k-th eigenvalue of pure noise, but once k-1 real
    factors are out, the k-th observed eigenvalue is the *largest* of the remaining noise, so with many unrelated
    words plain Horn retains noise factors (normal data, 3 strong factors, 60 noise words, 600 respondents: Horn
    exact in 67% of seeds, deflated in 100%). The price is power: weak real factors whose eigenvalue sits at the edge
    of the noise bulk are lost. On the planted count data of the tests, Horn followed by `fit_factors`' min_words
    pruning recovers K more often than the deflated test, so Horn is the default there and this is an option
    (k_rule="deflated"). Requiring both tests (the maximum of the two thresholds) keeps Horn's guard against the
    deflated test's failure mode (once a noise component is removed, the residual thresholds drop and it runs on).
    Tetrachoric data deflate the correlation matrix instead (no data matrix exists): the null is the permuted-data
    tetrachoric matrix rescaled to the residual variances.

    Returns:
        observed (p,), threshold (p,) = the threshold each rank was (or, past the stopping rank, would be) compared
        with, and k = the number of leading observed eigenvalues above their thresholds (stops at the first that is
        not).
    """
    observed, _, threshold, _, k = _parallel(X, n_iter, percentile, seed, corr, deflate)
    return observed, threshold, k


def _parallel(X, n_iter: int, percentile: float, seed: int, corr: str, deflate: bool):
    """Parallel analysis; returns (observed, horn_threshold, threshold, k_horn, k)."""
    A = np.asarray(X, float)
    if A.ndim != 2 or A.shape[0] < 3 or A.shape[1] < 2:
        raise UserError("parallel_analysis: expected a respondents x words matrix with >= 3 rows and >= 2 columns")
    if corr not in CORRS:
        raise UserError(f"unknown correlation {corr!r} (choose from {', '.join(CORRS)})")
    if not 0 < percentile < 100:
        raise UserError("parallel_analysis: percentile must be in (0, 100)")
    if n_iter < 1:
        raise UserError("parallel_analysis: n_iter must be >= 1")
    rng = np.random.default_rng(seed)
    n, p = A.shape
    null_mats: list[np.ndarray] = []
    if corr == "pearson":
        sd = A.std(axis=0)
        if np.any(sd == 0):
            raise UserError("parallel_analysis: constant word column(s); drop them first (load_matrix does)")
        Z = (A - A.mean(axis=0)) / sd
        R = Z.T @ Z / n
        null = np.zeros((n_iter, p))
        for i in range(n_iter):
            P = rng.permuted(Z, axis=0)
            # with fewer respondents than words (the paper's 525 x ~2,000), P'P / n has rank < n: its non-zero
            # eigenvalues are those of the n x n Gram matrix P P' / n and the rest are 0, exactly; an n x n
            # decomposition instead of a p x p one (seconds instead of minutes for 100 permutations)
            null[i, :min(n, p)] = (np.linalg.eigvalsh(P @ P.T / n)[::-1][:p] if n < p
                                   else np.linalg.eigvalsh(P.T @ P / n)[::-1])
    else:
        B = (A > 0).astype(float)
        if np.any(B.std(axis=0) == 0):
            raise UserError("parallel_analysis: a word is used by all or by no respondents (constant 0/1 column)")
        R = _tetrachoric(B)[0]
        null = np.empty((n_iter, p))
        for i in range(n_iter):
            N = _tetrachoric(rng.permuted(B, axis=0))[0]
            null_mats.append(N)
            null[i] = np.linalg.eigvalsh(N)[::-1]
    vals, vecs = np.linalg.eigh(R)
    observed, vecs = vals[::-1], vecs[:, ::-1]
    horn = np.percentile(null, percentile, axis=0)
    above = observed > horn
    k_horn = int(above.size if above.all() else np.argmin(above))
    threshold = horn.copy()
    if not deflate:
        return observed, horn, threshold, k_horn, k_horn

    if corr == "pearson":
        U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    k = 0
    while k < p - 1:
        if corr == "pearson":
            resid = Z - (U[:, :k] * s[:k]) @ Vt[:k] if k else Z
            tops = [_top_eig_gram(rng.permuted(resid, axis=0)) for _ in range(n_iter)]
        else:
            d = np.clip(1.0 - (vecs[:, :k] ** 2 * observed[:k]).sum(axis=1), 1e-12, None)
            scale = np.sqrt(np.outer(d, d))
            tops = [float(np.linalg.eigvalsh(N * scale)[-1]) for N in null_mats]
        threshold[k] = max(threshold[k], float(np.percentile(tops, percentile)))
        if observed[k] > threshold[k]:
            k += 1
        else:
            break
    return observed, horn, threshold, k_horn, k


def kaiser_k(eigenvalues: np.ndarray) -> int:
    """Kaiser's rule: the number of correlation-matrix eigenvalues above 1. Kept as an option for comparison with the
    literature; with many unrelated words it counts noise as factors (see `parallel_analysis`)."""
    return int(np.sum(np.asarray(eigenvalues) > 1.0))


# --------------------------------------------------------------------------------------------------------------------
# Adequacy: KMO and Bartlett
# --------------------------------------------------------------------------------------------------------------------
def _inverse(R: np.ndarray) -> tuple[np.ndarray, bool]:
    """Inverse of a correlation matrix, or its pseudo-inverse when singular (more words than respondents, collinear
    words). Returns (matrix, exact)."""
    if np.linalg.cond(R) < 1e12:
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
    sign, logdet = np.linalg.slogdet(R)
    factor = n - 1 - (2 * p + 5) / 6.0
    if sign <= 0 or not np.isfinite(logdet) or factor <= 0 or np.linalg.cond(R) > 1e12:
        return None, None, dof
    chi2 = float(-logdet * factor)
    return chi2, float(stats.chi2.sf(chi2, dof)), dof


# --------------------------------------------------------------------------------------------------------------------
# Extraction and rotation
# --------------------------------------------------------------------------------------------------------------------
def _smc_start(R: np.ndarray) -> np.ndarray:
    """Starting uniquenesses 1 - SMC, computed on a slightly ridged matrix so that a singular R (n <= p, duplicate
    words) still gives a start instead of factor_analyzer's LinAlgError."""
    p = R.shape[0]
    ridge = 0.0 if np.linalg.cond(R) < 1e10 else 1e-3
    inv = np.linalg.inv((R + ridge * np.eye(p)) / (1 + ridge))
    smc = 1.0 - 1.0 / np.diag(inv)
    return np.clip(1.0 - smc, 0.005, 1.0)


def _minres(R: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """Unrotated minres loadings: minimise sum((R* - L L')^2) over uniquenesses psi in [0.005, 1], R* = R with
    diagonal 1 - psi and L the top-k eigenpairs of R* (the objective of factor_analyzer's `_fit_uls_objective`).

    factor_analyzer minimises it with finite differences (p + 1 eigendecompositions per step: 15 s for 100 words);
    the gradient is analytic, d f / d psi_j = -2 (R* - L L')_jj, so this takes a few hundredths of a second. The
    tests check that both reach the same loadings. Returns (loadings p x k, converged).
    """
    p = R.shape[0]

    def fun(psi):
        Rs = R.copy()
        np.fill_diagonal(Rs, 1.0 - psi)
        vals, vecs = np.linalg.eigh(Rs)
        vals = np.maximum(vals[::-1][:k], np.finfo(float).eps * 100)
        vecs = vecs[:, ::-1][:, :k]
        L = vecs * np.sqrt(vals)
        E = Rs - L @ L.T
        return float(np.sum(E**2)), -2.0 * np.diag(E)

    res = optimize.minimize(fun, _smc_start(R), jac=True, method="L-BFGS-B", bounds=[(0.005, 1.0)] * p,
                            options={"maxiter": 2000})
    Rs = R.copy()
    np.fill_diagonal(Rs, 1.0 - res.x)
    vals, vecs = np.linalg.eigh(Rs)
    vals = vals[::-1][:k]
    vecs = vecs[:, ::-1][:, :k]
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
                if np.linalg.cond(R) > 1e10:
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


def _rotate(L: np.ndarray, rotation: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate with factor_analyzer's Rotator (GPA oblimin, varimax, promax); phi for oblique rotations."""
    if L.shape[1] < 2 or rotation == "none":
        return L, None
    from factor_analyzer.rotator import Rotator

    rot = Rotator(method=rotation)
    Lr = np.asarray(rot.fit_transform(L), float)
    phi = None if rot.phi_ is None else np.asarray(rot.phi_, float)
    return Lr, phi


def _canonical(L: np.ndarray, phi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Deterministic sign and order: each factor's largest-|loading| word positive; factors by explained variance
    (sum of squared pattern loadings), largest first; phi permuted and re-signed to match."""
    if L.shape[1] == 0:
        return L, phi
    idx = np.argmax(np.abs(L), axis=0)
    signs = np.sign(L[idx, np.arange(L.shape[1])])
    signs[signs == 0] = 1.0
    L = L * signs
    if phi is not None:
        phi = phi * np.outer(signs, signs)
    ss = (L**2).sum(axis=0)
    order = np.argsort(-ss, kind="stable")
    L = L[:, order]
    if phi is not None:
        phi = phi[np.ix_(order, order)]
        phi = (phi + phi.T) / 2.0
        np.fill_diagonal(phi, 1.0)
    return L, phi


def _duplicate_words(R: np.ndarray, tol: float = 1e-8) -> dict[int, tuple[int, float]]:
    """Words perfectly (|r| = 1) correlated with an earlier word: {index: (twin index, sign)}. They make R singular
    and carry no extra information; they are fitted through their twin and get its loadings (times the sign)."""
    dup: dict[int, tuple[int, float]] = {}
    p = R.shape[0]
    for j in range(p):
        if j in dup:
            continue
        for i in range(j + 1, p):
            if i not in dup and abs(abs(R[j, i]) - 1.0) < tol:
                dup[i] = (j, float(np.sign(R[j, i])))
    return dup


# --------------------------------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class FactorResult:
    """Everything `fit_factors` found, with words as the index of every per-word table.

    Factor columns are named factor_0..factor_{K-1} in order of explained variance; `assignment` maps each word to
    its factor index or -1 (highest |loading| below `threshold`). `phi` is the factor correlation matrix of an oblique
    rotation (None for orthogonal rotations and K < 2). `eigenvalues` are the correlation-matrix eigenvalues used by
    the K rules; `pa_threshold` the parallel-analysis curve (None when not computed).
    """

    n_factors: int
    k_rule: str
    method: str
    rotation: str
    corr: str
    threshold: float
    n_respondents: int
    words: list[str]
    eigenvalues: np.ndarray
    pa_threshold: np.ndarray | None
    pa_percentile: float
    pa_iter: int
    k_parallel: int
    k_deflated: int | None
    k_kaiser: int
    k_before_pruning: int
    min_words: int
    transform: str
    loadings: pd.DataFrame
    phi: pd.DataFrame | None
    assignment: dict[str, int]
    communalities: pd.Series
    variance: pd.DataFrame
    kmo_overall: float
    kmo_per_word: pd.Series
    bartlett_chi2: float | None
    bartlett_p: float | None
    bartlett_df: int
    seed: int
    notes: list[str] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)
    k_table: pd.DataFrame | None = None
    k_votes: dict[str, int | None] = field(default_factory=dict)
    complexity: pd.Series | None = None
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    omega: dict[str, Any] = field(default_factory=dict)
    loading_ci: dict[str, pd.DataFrame] | None = None
    n_boot: int = 0

    @property
    def uniquenesses(self) -> pd.Series:
        """1 - communality per word: the variance a word does not share with the factors (psych's u2)."""
        return (1.0 - self.communalities).rename("uniqueness")

    @property
    def structure(self) -> pd.DataFrame:
        """Structure matrix (word-factor correlations) = pattern loadings x phi; equals the loadings if orthogonal."""
        if self.phi is None:
            return self.loadings.copy()
        return pd.DataFrame(self.loadings.to_numpy() @ self.phi.to_numpy(), index=self.loadings.index,
                            columns=self.loadings.columns)

    def groups(self) -> dict[int, list[str]]:
        """Words per factor (and -1), each list by descending |loading| on its factor."""
        out: dict[int, list[str]] = {}
        for k in sorted(set(self.assignment.values())):
            ws = [w for w, a in self.assignment.items() if a == k]
            if k >= 0:
                ws.sort(key=lambda w: -abs(self.loadings.loc[w, f"factor_{k}"]))
            out[k] = ws
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """The content of factors.json: the promised keys first, then diagnostics."""
        def num(x):
            if x is None:
                return None
            x = float(x)
            return x if math.isfinite(x) else None

        return {
            "n_factors": int(self.n_factors),
            "method": self.method,
            "eigenvalues": [num(v) for v in self.eigenvalues],
            "assignment": {w: int(a) for w, a in self.assignment.items()},
            "rotation": self.rotation,
            "k_rule": self.k_rule,
            "correlation": self.corr,
            "transform": self.transform,
            "loading_threshold": self.threshold,
            "pa_threshold": None if self.pa_threshold is None else [num(v) for v in self.pa_threshold],
            "pa_percentile": self.pa_percentile,
            "pa_iter": self.pa_iter,
            "k_parallel": self.k_parallel,
            "k_deflated": self.k_deflated,
            "k_kaiser": self.k_kaiser,
            "k_before_pruning": self.k_before_pruning,
            "min_words": self.min_words,
            "kmo": {"overall": num(self.kmo_overall), "per_word": {w: num(v) for w, v in self.kmo_per_word.items()}},
            "bartlett": {"chi2": num(self.bartlett_chi2), "p": num(self.bartlett_p), "df": int(self.bartlett_df)},
            "factor_correlations": None if self.phi is None else [[num(v) for v in row] for row in self.phi.to_numpy()],
            "variance": {c: [num(v) for v in self.variance[c]] for c in self.variance.columns},
            "communalities": {w: num(v) for w, v in self.communalities.items()},
            "groups": {str(k): ws for k, ws in self.groups().items()},
            "n_respondents": int(self.n_respondents),
            "n_words": len(self.words),
            "seed": int(self.seed),
            "uniquenesses": {w: num(v) for w, v in self.uniquenesses.items()},
            "complexity": None if self.complexity is None else {w: num(v) for w, v in self.complexity.items()},
            "fit": {k: (v if isinstance(v, int) else num(v)) for k, v in self.fit.items()},
            "k_candidates": None if self.k_table is None else [
                {"K": int(k), **{c: num(v) for c, v in row.items()}} for k, row in self.k_table.iterrows()],
            "k_by_rule": dict(self.k_votes),
            "omega": {k: (v if isinstance(v, bool) else [num(x) for x in v] if isinstance(v, list) else num(v))
                      for k, v in self.omega.items()},
            "loading_ci": None if self.loading_ci is None else {
                "n_boot": self.n_boot, "level": 0.95,
                **{side: {w: [num(v) for v in row] for w, row in df.iterrows()} for side, df in self.loading_ci.items()}},
            "notes": list(self.notes),
        }


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


def _solve(R: np.ndarray, k: int, method: str, rotation: str, dup: dict[int, tuple[int, float]],
           threshold: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[str]]:
    """Extract, rotate, canonicalise and assign for a fixed K; returns (loadings p x k, phi, assignment, notes)."""
    p = R.shape[0]
    if k == 0:
        return np.zeros((p, 0)), None, np.full(p, -1), []
    keep = [j for j in range(p) if j not in dup]
    L0, notes = _extract(R[np.ix_(keep, keep)], k, method)
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


def _pole_sizes(L: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Per factor: assigned words on its larger pole (max of #positive, #negative loadings among its words)."""
    k = L.shape[1]
    if k == 0:
        return np.zeros(0, int)
    out = np.zeros(k, int)
    for j in range(k):
        mine = assign == j
        pos = int(np.sum(mine & (L[:, j] > 0)))
        out[j] = max(pos, int(mine.sum()) - pos)
    return out


def _k_candidates(R: np.ndarray, n: int, max_k: int, method: str) -> pd.DataFrame:
    """One row per candidate K = 1..max_k: psych's fit indices of the K-factor model (`factor_fit.model_fit`, on the
    unrotated loadings: the fit does not depend on the rotation), Velicer's MAP and VSS of complexity 1 and 2
    (varimax loadings, as psych::VSS). Row K = 0 is the independence model: its chi-square is Bartlett's, its MAP
    the one with no component removed (Velicer's baseline), so that BIC, RMSEA and MAP can say "no factor"."""
    from . import factor_fit as FF

    mp = FF.velicer_map(R, max_k)
    null = FF.null_fit(R, n)
    rows = [{**{c: null[c] for c in ("chi2", "df", "p", "rmsea", "rmsea_lower", "rmsea_upper", "bic", "rmsr")},
             "map": mp[0]}]
    for k in range(1, max_k + 1):
        L0, _ = _extract(R, k, method)
        fit = FF.model_fit(R, L0, None, n)
        Lv, _ = _rotate(L0, "varimax")
        rows.append({"chi2": fit["chi2"], "df": fit["df"], "p": fit["p"], "rmsea": fit["rmsea"],
                     "rmsea_lower": fit["rmsea_lower"], "rmsea_upper": fit["rmsea_upper"], "tli": fit["tli"],
                     "bic": fit["bic"], "rmsr": fit["rmsr"], "map": mp[k], "vss1": FF.vss_fit(R, Lv, 1),
                     "vss2": FF.vss_fit(R, Lv, 2)})
    cols = ["chi2", "df", "p", "rmsea", "rmsea_lower", "rmsea_upper", "tli", "bic", "rmsr", "map", "vss1", "vss2"]
    table = pd.DataFrame(rows, columns=cols, dtype=float)
    table.index.name = "K"
    return table


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


@_one_blas_thread
def fit_factors(
    df: pd.DataFrame,
    n_factors: int | None = None,
    method: str = "minres",
    rotation: str | None = "oblimin",
    k_rule: str = "parallel",
    corr: str = "pearson",
    threshold: float = 0.30,
    seed: int = 0,
    pa_iter: int = 100,
    percentile: float = 95,
    min_words: int = 3,
    transform: str = "log1p",
    n_boot: int = 0,
    max_k: int | None = None,
) -> FactorResult:
    """Exploratory factor analysis of a respondents x words matrix, from adequacy checks to word assignments.

    Args:
        df: respondents as rows, words as columns (as from `load_matrix`; numeric checks repeated here).
        n_factors: fix K; None chooses it with `k_rule`.
        method: "minres" (default; works on singular matrices), "ml" (factor_analyzer's maximum likelihood) or
            "principal" (principal-component loadings, as psych::principal: every word's whole variance, no
            uniqueness; loadings are larger than common-factor loadings, so the threshold bites less).
        rotation: "oblimin" (default, oblique), "promax" (oblique), "varimax" (orthogonal) or None/"none".
        k_rule: "parallel" (Horn's parallel analysis, 95th percentile of column-permuted data), "deflated" (Horn plus
            the deflated test of `parallel_analysis`; stricter) or "kaiser" (eigenvalue > 1).
        corr: "pearson" or "tetrachoric" (0/1 use of each word, count > 0).
        transform: "log1p" (default): Pearson correlations of log(1 + count); "none": of raw counts. Why: word
            counts are heavy-tailed (one respondent repeating a word 30 times dominates a raw Pearson correlation),
            and that outlier-driven co-variation is not what column permutation simulates, so parallel analysis
            keeps outlier "factors". log1p leaves 0/1 data unchanged (a rescaling) and damps the tails. On the
            planted Poisson settings of the tests: K exact 87% -> 95% (see the module notes). No effect on
            tetrachoric correlations.
        threshold: minimum |loading| for a word to be assigned to its best factor.
        seed: seeds the parallel analysis (the only random step).
        pa_iter, percentile: parallel-analysis permutations and percentile.
        min_words: a factor chosen by a rule must end up with at least this many assigned words, otherwise K is
            lowered by one and the model refitted (notes record it). Words are counted per pole (positive and negative
            loadings separately; the larger pole counts), so a bipolar factor needs three words on one side. Why: with
            many unrelated words Horn's test passes noise factors (see `parallel_analysis`), and on sparse counts the
            residual noise is not exchangeable, so any permutation null occasionally does; such factors gather a few
            noise words just above the threshold, often with mixed signs. Three salient words per factor is the usual
            EFA minimum for a factor to be interpretable (Velicer & Fava 1998; Costello & Osborne 2005). Not applied
            when `n_factors` is given; 1 disables it.
        n_boot: bootstrap resamples for 95% intervals of the loadings (`loading_ci`); 0 (default) skips them.
        max_k: largest K in the table of candidates (`k_table`: psych's fit indices, MAP and VSS per K); default
            max(8, K by parallel analysis + 3, K + 3), at most words - 1; 0 skips the table (it about doubles the
            time of a fit: worth skipping in resampling loops such as `bootstrap_stability`).

    Besides loadings and assignments the result has what psych::fa reports (module `factor_fit`, psych's formulas):
    `fit` (chi-square and df, RMSEA with 90% interval, TLI, BIC, RMSR of the chosen model), `k_table` and `k_votes`
    (the K each rule prefers), `uniquenesses`, `complexity` (Hofmann), `scores` (regression and Bartlett factor
    scores per row), `omega` (McDonald's omega total, and hierarchical for oblique K >= 2).

    K = 0 (no eigenvalue beats chance) is a legitimate answer: no loadings, every word -1, and a note.
    """
    rotation = _check_options(method, rotation, k_rule, corr, threshold, min_words, transform)
    for name, v, lo in (("n_boot", n_boot, 0), ("max_k", max_k, 0), ("pa_iter", pa_iter, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo):
            raise UserError(f"{name} must be an integer >= {lo}, got {v!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
        raise UserError(f"percentile must be a number in (0, 100), got {percentile!r}")
    if n_factors is not None and (isinstance(n_factors, bool) or not isinstance(n_factors, (int, np.integer))
                                  or n_factors < 0):
        raise UserError(f"n_factors must be a non-negative integer, got {n_factors!r}")
    data = _validate_counts(df, source="matrix", allow_negative=True)
    notes = list(data.attrs.get(_NOTES_ATTR, []))
    words = [str(c) for c in data.columns]
    X = data.to_numpy(float)
    n, p = X.shape
    if corr == "tetrachoric":
        if not np.isin(X, (0.0, 1.0)).all():
            notes.append("tetrachoric correlations: counts > 0 treated as 1 (word used), 0 as 0")
        B = (X > 0).astype(float)
        const = [w for w, sd in zip(words, B.std(axis=0)) if sd == 0]
        if const:
            raise UserError(f"tetrachoric correlations need every word used by some but not all respondents: "
                            f"{', '.join(const[:5])}")
        R, n_clip = _tetrachoric(B)
        Xa = B
        if n_clip:
            notes.append(f"tetrachoric matrix was not positive semi-definite; {n_clip} eigenvalue(s) clipped")
    else:
        if transform == "log1p" and (X < 0).any():
            notes.append("negative values: not counts, so correlations are of the raw values (transform 'none')")
            transform = "none"
        if transform == "log1p":
            X = np.log1p(X)
        R = correlation_matrix(X, "pearson")
        Xa = X
    if n <= p:
        notes.append(f"{n} respondents for {p} words: the correlation matrix is singular; KMO uses its "
                     "pseudo-inverse, Bartlett's test is undefined, and loadings are noisy")

    eig = np.linalg.eigvalsh(R)[::-1]
    k_kai = kaiser_k(eig)
    # computed whatever the rule: the scree plot always shows the parallel-analysis curve
    _, _, pa_thr, k_pa, k_defl = _parallel(X, pa_iter, percentile, seed, corr, deflate=(k_rule == "deflated"))
    k_deflated = k_defl if k_rule == "deflated" else None

    dup = _duplicate_words(R)
    n_distinct = p - len(dup)
    if dup:
        notes.append("perfectly correlated words fitted through their twin: "
                     + ", ".join(f"{words[i]} = {words[j]}" for i, (j, _) in list(dup.items())[:10]))
    if n_factors is not None:
        k = int(n_factors)
        rule = "fixed"
        if k > n_distinct - 1:
            raise UserError(f"n_factors={k} is too many for {n_distinct} distinct words (at most {n_distinct - 1})")
    else:
        rule = k_rule
        k = {"parallel": k_pa, "deflated": k_defl, "kaiser": k_kai}[k_rule]
        if k > n_distinct - 1:
            notes.append(f"{k_rule} rule gave K={k}; capped at {n_distinct - 1} (distinct words - 1)")
            k = n_distinct - 1
    k_rule_raw = k

    kmo_per, kmo_all = kmo(R)
    chi2, bp, bdf = bartlett_sphericity(R, n)
    if kmo_all < 0.6:
        notes.append(f"overall KMO {kmo_all:.2f} < 0.6: weak common structure for factor analysis")
    if bp is not None and bp > 0.05:
        notes.append(f"Bartlett's test p = {bp:.3g}: correlations not distinguishable from none")

    while True:
        L, phi, assign, ext_notes = _solve(R, k, method, rotation, dup, threshold)
        sizes = _pole_sizes(L, assign)
        if rule == "fixed" or k == 0 or sizes.min() >= min_words:
            break
        notes.append(f"K={k}: factor(s) {', '.join(str(j) for j in np.flatnonzero(sizes < min_words))} have fewer "
                     f"than {min_words} words with |loading| >= {threshold} on one pole; refitted with K={k - 1}")
        k -= 1
    notes += ext_notes
    if k == 0:
        notes.append("no factor beyond chance: K = 0, every word unassigned")
    if k and ((p - k) ** 2 - (p + k)) / 2 < 0:
        notes.append(f"K={k} exceeds the Ledermann bound for {p} words (negative degrees of freedom): the factor "
                     "solution is not identified; treat it as descriptive")
    cols = [f"factor_{j}" for j in range(k)]
    loadings = pd.DataFrame(L, index=pd.Index(words, name="word"), columns=cols)
    phi_df = None if phi is None else pd.DataFrame(phi, index=cols, columns=cols)
    comm = np.einsum("ij,jk,ik->i", L, phi, L) if phi is not None else (L**2).sum(axis=1)
    if k and np.any(comm > 0.995):
        notes.append("Heywood case: some communalities reach 1 (a word almost fully explained); check K")
    ss = (L**2).sum(axis=0)
    variance = pd.DataFrame({"ss_loadings": ss, "proportion": ss / p, "cumulative": np.cumsum(ss) / p}, index=cols)
    assignment = {w: int(a) for w, a in zip(words, assign)}
    if rule == "fixed" and k:
        empty = [c for j, c in enumerate(cols) if j not in set(assignment.values())]
        if empty:
            notes.append(f"no word reaches |loading| >= {threshold} on {', '.join(empty)}")

    from . import factor_fit as FF

    keep = [j for j in range(p) if j not in dup]
    Rk = R[np.ix_(keep, keep)]
    top = min(n_distinct - 1, n - 1, max_k if max_k is not None else max(8, k_pa + 3, k + 3))
    k_table = _k_candidates(Rk, n, top, method) if top >= 1 and max_k != 0 else None
    votes: dict[str, int | None] = {"parallel": k_pa, "kaiser": k_kai}
    if k_deflated is not None:
        votes["deflated"] = k_deflated
    if k_table is not None:
        votes.update(FF.k_rule_votes(k_table))
    votes["chosen"] = k
    fit = FF.model_fit(Rk, L[keep], phi, n) if k else {}
    complexity = pd.Series(FF.item_complexity(L), index=loadings.index, name="complexity") if k else None
    scores: dict[str, pd.DataFrame] = {}
    omega: dict[str, Any] = {}
    loading_ci = None
    if k:
        sd = Xa.std(axis=0, ddof=1)
        Z = (Xa - Xa.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        for how in ("regression", "bartlett"):
            W = FF.score_weights(R, L, phi, how)
            scores[how] = pd.DataFrame(Z @ W, index=pd.Index(data.index, name=data.index.name or "respondent"),
                                       columns=cols)
        if k >= 2:
            omega = FF.omega(R, L, phi)
        if n_boot:
            lo_ci, hi_ci, skipped = _bootstrap_loadings(Xa, corr, k, method, rotation if k >= 2 else "none", L,
                                                        n_boot, seed)
            loading_ci = {"lower": pd.DataFrame(lo_ci, index=loadings.index, columns=cols),
                          "upper": pd.DataFrame(hi_ci, index=loadings.index, columns=cols)}
            if skipped:
                notes.append(f"loading intervals: {skipped} of {n_boot} resamples skipped (a word constant in them)")

    return FactorResult(
        n_factors=k, k_rule=rule, method=method, rotation=rotation if k >= 2 else "none", corr=corr,
        threshold=float(threshold), n_respondents=n, words=words, eigenvalues=eig, pa_threshold=pa_thr,
        pa_percentile=float(percentile), pa_iter=int(pa_iter), k_parallel=k_pa, k_deflated=k_deflated, k_kaiser=k_kai,
        k_before_pruning=k_rule_raw, min_words=int(min_words), transform=transform if corr == "pearson" else "none",
        loadings=loadings, phi=phi_df, assignment=assignment,
        communalities=pd.Series(comm, index=loadings.index, name="communality"), variance=variance,
        kmo_overall=kmo_all, kmo_per_word=pd.Series(kmo_per, index=loadings.index, name="kmo"),
        bartlett_chi2=chi2, bartlett_p=bp, bartlett_df=bdf, seed=int(seed), notes=notes,
        fit=fit, k_table=k_table, k_votes=votes, complexity=complexity, scores=scores, omega=omega,
        loading_ci=loading_ci, n_boot=int(n_boot),
    )


# --------------------------------------------------------------------------------------------------------------------
# Figures and outputs
# --------------------------------------------------------------------------------------------------------------------
def _rows_said(n_rows: int, rows: Sequence[str] | None) -> str:
    """"360 answers of 12 respondents" when the rows are answers (ids "respondent|prompt|sample"), else
    "12 respondents"; "360 rows" when the ids are not known."""
    if rows is None:
        return f"{n_rows} rows"
    ids = [str(r) for r in rows]
    people = {r.split("|", 1)[0] for r in ids}
    if len(people) < len(ids):
        return f"{len(ids)} answers of {len(people)} respondents"
    return f"{len(ids)} respondents"


def scree_figure(result: FactorResult, max_points: int = 40, rows: Sequence[str] | None = None):
    """Scree plot: observed eigenvalues, the parallel-analysis curve and Kaiser's line at 1, K marked.

    Only the first `max_points` ranks are drawn: beyond that everything is noise and flattens the interesting part.
    `rows`: the matrix's row ids, so the title can say whether its rows are answers or respondents.
    """
    import plotly.graph_objects as go

    from .figures import captioned

    m = min(len(result.eigenvalues), max_points)
    x = list(range(1, m + 1))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=result.eigenvalues[:m].tolist(), mode="lines+markers", name="observed"))
    if result.pa_threshold is not None:
        fig.add_trace(go.Scatter(x=x, y=result.pa_threshold[:m].tolist(), mode="lines",
                                 line={"dash": "dash"},
                                 name=f"parallel analysis ({result.pa_percentile:g}th pct, {result.pa_iter} perms)"))
    fig.add_hline(y=1.0, line={"dash": "dot", "color": "grey"}, annotation_text="Kaiser: eigenvalue 1",
                  annotation_position="top right")
    if result.n_factors > 0:
        fig.add_vline(x=result.n_factors, line={"color": "firebrick", "width": 1},
                      annotation_text=f"K = {result.n_factors} ({result.k_rule})", annotation_position="top right")
    what = "Pearson correlations of log(1 + count)" if result.transform == "log1p" else f"{result.corr} correlations"
    said = _rows_said(result.n_respondents, rows)
    fig.update_layout(title=f"Scree plot ({what}; {len(result.words)} words, {said})",
                      xaxis_title="factor (rank)", yaxis_title="eigenvalue", template="plotly_white")
    return captioned(fig, f"Eigenvalues of the word x word correlation matrix by rank (first {m} of "
                          f"{len(result.eigenvalues)}); dashed: the same from permuted data (parallel analysis), a "
                          f"factor is kept while the observed line is above it; n = {said}.")


def loadings_heatmap(result: FactorResult, max_words: int = 200):
    """Heatmap of pattern loadings, words grouped by assigned factor (strongest first), unassigned words last; every
    word labelled (18 px a row)."""
    import plotly.graph_objects as go

    from .figures import captioned

    order: list[str] = []
    for k, ws in result.groups().items():
        if k >= 0:
            order += ws
    order += result.groups().get(-1, [])
    shown = order[:max_words]
    L = result.loadings.loc[shown] if result.n_factors else pd.DataFrame(index=shown)
    fig = go.Figure(go.Heatmap(z=L.to_numpy(), x=list(L.columns), y=shown, colorscale="RdBu", zmid=0, zmin=-1,
                               zmax=1, colorbar={"title": "loading"}))
    fig.update_layout(title=f"Loadings ({result.method}, {result.rotation}); assigned if |loading| >= "
                            f"{result.threshold:g}", template="plotly_white",
                      yaxis={"autorange": "reversed", "tickmode": "array", "tickvals": shown, "ticktext": shown,
                             "tickfont": {"size": 11}},
                      height=max(400, 18 * len(shown) + 200))
    more = f" (the first {len(shown)} of {len(order)} shown)" if len(order) > len(shown) else ""
    return captioned(fig, f"Cell: pattern loading of a word (row) on a factor (column), -1 to 1; words grouped by "
                          f"the factor they load on most, unassigned words last; n = {len(order)} words{more}.")


from .rundir import atomic_write_text as _atomic_write  # noqa: E402


def write_factor_outputs(result: FactorResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write factors.json, loadings.csv (word x factor_k pattern loadings), scree.html (plotly.js inlined, opens
    offline) and, when K >= 1, scores_regression.csv and scores_bartlett.csv (factor scores per matrix row) into
    `out_dir`; returns their paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path exists and is not a directory: {out}")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"factors": out / "factors.json", "loadings": out / "loadings.csv", "scree": out / "scree.html"}
    _atomic_write(paths["factors"], json.dumps(result.to_json_dict(), indent=2, allow_nan=False) + "\n")
    _atomic_write(paths["loadings"], result.loadings.to_csv(float_format="%.6f", lineterminator="\n"))
    for how, scores in result.scores.items():  # one row per respondent (row of the matrix), one column per factor
        paths[f"scores_{how}"] = out / f"scores_{how}.csv"
        _atomic_write(paths[f"scores_{how}"], scores.to_csv(float_format="%.6f", lineterminator="\n"))
    html = scree_figure(result).to_html(include_plotlyjs=True, full_html=True)
    _atomic_write(paths["scree"], html)
    return paths


# --------------------------------------------------------------------------------------------------------------------
# Stability
# --------------------------------------------------------------------------------------------------------------------
@_one_blas_thread
def bootstrap_stability(df: pd.DataFrame, n_boot: int = 50, seed: int = 0, **fit_opts: Any) -> dict[str, Any]:
    """How stable are K and the word groups when respondents are resampled?

    Refits on `n_boot` bootstrap resamples of respondents (K re-chosen each time unless `n_factors` is fixed) and
    compares each fit's word assignment with the full-data fit by the adjusted Rand index over the words assigned
    (not -1) in both: factor labels are arbitrary, so ARI rather than label agreement. Words that are constant in a
    resample are left out of that fit.

    Returns a dict: k_full, k_values (list), k_counts {K: count}, ari (list, NaN when < 2 common words), ari_mean,
    ari_median, ari_q05, ari_q95, assigned_rate {word: share of resamples where the word was assigned},
    same_group_rate {word: share of resamples in which the word's full-fit group partners that were assigned stayed
    in its group}, n_failed (resamples that could not be fitted).
    """
    from sklearn.metrics import adjusted_rand_score

    if n_boot < 1:
        raise UserError("bootstrap_stability: n_boot must be >= 1")
    data = _validate_counts(df, source="matrix", allow_negative=True)
    fit_seed = fit_opts.pop("seed", seed)
    full = fit_factors(data, seed=fit_seed, **fit_opts)
    fit_opts = {"max_k": 0, **fit_opts, "n_boot": 0}  # K and groups only: no fit table or loading CIs per resample
    words = list(full.assignment)
    ss = np.random.SeedSequence(seed)
    k_values: list[int] = []
    aris: list[float] = []
    assigned = {w: 0 for w in words}
    same = {w: [0, 0] for w in words}
    n_failed = 0
    n = data.shape[0]
    for child in ss.spawn(n_boot):
        rng = np.random.default_rng(child)
        idx = rng.integers(0, n, n)
        sample = data.iloc[idx]
        sample = sample.loc[:, sample.std(axis=0, ddof=0) > 0]
        try:
            res = fit_factors(sample, seed=fit_seed, **fit_opts)
        except UserError:
            n_failed += 1
            continue
        k_values.append(res.n_factors)
        common = [w for w in words if full.assignment[w] >= 0 and res.assignment.get(w, -1) >= 0]
        for w in words:
            if res.assignment.get(w, -1) >= 0:
                assigned[w] += 1
        if len(common) >= 2:
            a = [full.assignment[w] for w in common]
            b = [res.assignment[w] for w in common]
            aris.append(float(adjusted_rand_score(a, b)))
            for w in common:
                partners = [v for v in common if v != w and full.assignment[v] == full.assignment[w]]
                if partners:
                    same[w][1] += 1
                    same[w][0] += all(res.assignment[v] == res.assignment[w] for v in partners)
        else:
            aris.append(float("nan"))
    n_ok = max(len(k_values), 1)
    arr = np.array(aris, float)
    finite = arr[np.isfinite(arr)]
    counts: dict[int, int] = {}
    for kv in k_values:
        counts[kv] = counts.get(kv, 0) + 1
    return {
        "n_boot": n_boot,
        "n_failed": n_failed,
        "k_full": full.n_factors,
        "k_values": k_values,
        "k_counts": dict(sorted(counts.items())),
        "ari": aris,
        "ari_mean": float(finite.mean()) if finite.size else float("nan"),
        "ari_median": float(np.median(finite)) if finite.size else float("nan"),
        "ari_q05": float(np.percentile(finite, 5)) if finite.size else float("nan"),
        "ari_q95": float(np.percentile(finite, 95)) if finite.size else float("nan"),
        "assigned_rate": {w: assigned[w] / n_ok for w in words},
        "same_group_rate": {w: (s[0] / s[1] if s[1] else float("nan")) for w, s in same.items()},
        "full_assignment": dict(full.assignment),
    }


# --------------------------------------------------------------------------------------------------------------------
# CLI entry
# --------------------------------------------------------------------------------------------------------------------
def run_factors_cli(matrix_csv: str | os.PathLike, out_dir: str | os.PathLike, **opts: Any) -> dict[str, Any]:
    """`valuelex factors MATRIX.csv -o DIR`: load, fit, write. Options are `fit_factors` keywords (None values are
    ignored, so a CLI can pass every flag through). Everything is validated and fitted before anything is written,
    so bad input leaves DIR untouched. Returns a short summary (K, assigned counts, output paths, notes)."""
    allowed = {"n_factors", "method", "rotation", "k_rule", "corr", "threshold", "seed", "pa_iter", "percentile",
               "min_words", "transform", "n_boot", "max_k"}
    unknown = set(opts) - allowed
    if unknown:
        raise UserError(f"unknown factors option(s): {', '.join(sorted(unknown))}")
    kwargs = {k: v for k, v in opts.items() if v is not None}
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path exists and is not a directory: {out}")
    df = load_matrix(matrix_csv)
    result = fit_factors(df, **kwargs)
    paths = write_factor_outputs(result, out)
    n_assigned = sum(1 for a in result.assignment.values() if a >= 0)
    return {
        "n_factors": result.n_factors,
        "k_rule": result.k_rule,
        "n_words": len(result.words),
        "n_assigned": n_assigned,
        "paths": {k: str(v) for k, v in paths.items()},
        "notes": result.notes,
    }


def adequacy_table(result: FactorResult) -> pd.DataFrame:
    """KMO, Bartlett's test and K by each rule, formatted for reading (counts as integers, p in scientific form)."""
    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)

    rows = [("KMO (overall)", fmt(result.kmo_overall, ".3f")),
            ("Bartlett chi2", fmt(result.bartlett_chi2, ".1f")), ("Bartlett df", str(result.bartlett_df)),
            ("Bartlett p", fmt(result.bartlett_p, ".2e")),
            ("K by parallel analysis", fmt(result.k_parallel, "d")),
            ("K by Kaiser (eigenvalue > 1)", fmt(result.k_kaiser, "d")),
            (f"K used ({result.k_rule})", fmt(result.n_factors, "d"))]
    return pd.DataFrame(rows, columns=["statistic", "value"]).set_index("statistic")


_RULE_NAMES = {"parallel": "Horn's parallel analysis", "deflated": "deflated parallel analysis",
               "kaiser": "Kaiser's eigenvalue > 1", "map": "Velicer's MAP (lowest)", "vss1": "VSS complexity 1",
               "vss2": "VSS complexity 2", "bic": "BIC (lowest)", "rmsea_lt_0.05": "RMSEA < 0.05 (smallest such K)",
               "tli_ge_0.95": "TLI >= 0.95 (smallest such K)", "fixed": "n_factors given"}


def k_candidates_table(result: FactorResult) -> pd.DataFrame:
    """The table of candidate K for reading: fit indices (psych's), MAP and VSS per K, the eigenvalue against the
    parallel-analysis threshold, and a column naming the rules that prefer each K."""
    if result.k_table is None:
        return pd.DataFrame()
    T = result.k_table.copy()
    ks = T.index.to_numpy()
    T.insert(0, "eigenvalue", [result.eigenvalues[k - 1] if 0 < k <= len(result.eigenvalues) else np.nan for k in ks])
    if result.pa_threshold is not None:
        T.insert(1, "pa_threshold",
                 [result.pa_threshold[k - 1] if 0 < k <= len(result.pa_threshold) else np.nan for k in ks])
    T["rmsea_90ci"] = [("-" if pd.isna(lo) or pd.isna(hi) else f"{lo:.3f}-{hi:.3f}")
                       for lo, hi in zip(T.pop("rmsea_lower"), T.pop("rmsea_upper"))]
    T.insert(T.columns.get_loc("rmsea") + 1, "rmsea_90ci", T.pop("rmsea_90ci"))
    prefer = {int(k): [] for k in ks}
    for rule, k in result.k_votes.items():
        if rule != "chosen" and k is not None and int(k) in prefer:
            prefer[int(k)].append(rule)
    T["preferred_by"] = [", ".join(prefer[int(k)]) for k in ks]
    T["chosen"] = ["<- K" if k == result.n_factors else "" for k in ks]
    return T


def explain_k(result: FactorResult) -> str:
    """In words: which rule chose K, how pruning changed it, and what the other rules and fit indices say."""
    v = result.k_votes
    how = _RULE_NAMES.get(result.k_rule, result.k_rule)
    lines = [f"K = {result.n_factors} was chosen by {how}"
             + (f" (it gave {result.k_before_pruning}; lowered because factors had fewer than {result.min_words} "
                f"words loading >= {result.threshold:g})" if result.k_before_pruning != result.n_factors else "")
             + "."]
    others = [f"{_RULE_NAMES[r]}: {'none' if k is None else k}" for r, k in v.items()
              if r not in ("chosen", result.k_rule) and r in _RULE_NAMES]
    if others:
        lines.append("The other rules: " + "; ".join(others) + ".")
    if result.fit:
        f = result.fit

        def g(x, spec):
            return "-" if x is None else format(x, spec)

        lines.append(f"Fit at K = {result.n_factors}: chi-square {g(f['chi2'], '.1f')} on {f['df']:g} df, RMSEA "
                     f"{g(f['rmsea'], '.3f')} (90% CI {g(f['rmsea_lower'], '.3f')}-{g(f['rmsea_upper'], '.3f')}), "
                     f"TLI {g(f['tli'], '.2f')}, BIC {g(f['bic'], '.0f')}, RMSR {f['rmsr']:.3f}.")
    if result.k_table is not None:
        lines.append(f"K candidates shown: 0-{int(result.k_table.index.max())}; row 0 is the model of no factor "
                     "(independent words).")
    return " ".join(lines)


def word_table(result: FactorResult) -> pd.DataFrame:
    """Per word: assigned factor, communality, uniqueness, item complexity (Hofmann) and KMO; loading intervals
    (95%, bootstrap) of the assigned factor when computed."""
    t = pd.DataFrame({"factor": pd.Series(result.assignment), "communality": result.communalities,
                      "uniqueness": result.uniquenesses, "kmo": result.kmo_per_word})
    if result.complexity is not None:
        t.insert(3, "complexity", result.complexity)
    if result.loading_ci is not None:
        lo, hi = result.loading_ci["lower"], result.loading_ci["upper"]
        t["loading_ci"] = [f"{lo.loc[w, f'factor_{a}']:.2f} to {hi.loc[w, f'factor_{a}']:.2f}" if a >= 0 else ""
                           for w, a in result.assignment.items()]
    return t.sort_values(["factor", "communality"], ascending=[True, False])
