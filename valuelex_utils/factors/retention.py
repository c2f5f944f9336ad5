"""How many factors? Every rule for K in one place: each rule's answer, the one used, and the pruning after it.

This chooses the number of FACTORS of the EFA (step 3). The number of subclusters inside one factor (step 4) is a
different decision, made by `valuelex_utils.taxonomy.clusters.choose_subcluster_k` (silhouette of k-means on word
embeddings).

* Horn's parallel analysis (`parallel_analysis`, default), its deflated variant, Kaiser's eigenvalue > 1
  (`kaiser_k`): the rules `fit_factors(k_rule=...)` can use (`choose_n_factors`);
* min_words pruning (`prune_to_min_words`): a rule-chosen factor keeps >= min_words words on one pole, else K - 1;
* reported beside them (`candidate_table`, `rule_votes`): psych's fit indices per candidate K, Velicer's MAP
  (`velicer_map`), VSS of complexity 1 and 2 (`vss_fit`), BIC, RMSEA < 0.05, TLI >= 0.95 (`k_rule_votes`).

To add a rule: compute its K in `choose_n_factors` (and name it in K_RULES of `options` if `fit_factors` may use it),
or, for a rule read off the candidate table, add a column in `_k_candidates` and its vote in `k_rule_votes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from valuelex_utils.errors import UserError

from .correlations import _tetrachoric, standardised
from .extraction import _extract, _gram_operator, _smc_start, _top_eigenpairs
from .fit import model_fit, null_fit
from .linalg import FAST_PATH_MIN_WORDS, eigenvalues, gram_factor, squared_norm
from .options import CORRS, _one_blas_thread, available_cores, thread_map
from .rotation import _rotate
from .solution import _solve


def _top_eig_gram(P: np.ndarray) -> float:
    """Largest eigenvalue of P'P / n, through the smaller of the two Gram matrices."""
    n, p = P.shape
    G = (P.T @ P) if p <= n else (P @ P.T)
    return float(np.linalg.eigvalsh(G)[-1] / n)


def _null_eigenvalues(P: np.ndarray) -> np.ndarray:
    """Eigenvalues (descending) of the correlation matrix P'P / n of standardised permuted data, the non-zero ones.

    With fewer respondents than words (the paper's 525 x ~2,000), P'P / n has rank < n: its non-zero eigenvalues are
    those of the n x n Gram matrix P P' / n and the rest are 0, exactly; an n x n decomposition instead of a p x p
    one (seconds instead of minutes for 100 permutations)."""
    n, p = P.shape
    return np.linalg.eigvalsh(P @ P.T / n)[::-1][:p] if n < p else np.linalg.eigvalsh(P.T @ P / n)[::-1]


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


def _parallel(X, n_iter: int, percentile: float, seed: int, corr: str, deflate: bool,
              observed: np.ndarray | None = None):
    """Parallel analysis; returns (observed, horn_threshold, threshold, k_horn, k). `observed`: the data's correlation
    eigenvalues (descending) when the caller has them already; used above `FAST_PATH_MIN_WORDS` words (Pearson),
    where they are not computed again."""
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
        Z = standardised(A)
        R = Z.T @ Z / n if p <= FAST_PATH_MIN_WORDS else None
        null = np.zeros((n_iter, p))
        # the permutations are drawn here in order (the same null whatever runs them) and decomposed side by side,
        # a few at a time (at 2,000 x 2,000 each permuted copy is 31 MB)
        chunk = 2 * available_cores()
        for start in range(0, n_iter, chunk):
            perms = [rng.permuted(Z, axis=0) for _ in range(min(chunk, n_iter - start))]
            for i, eig in enumerate(thread_map(_null_eigenvalues, perms), start):
                null[i, :min(n, p)] = eig
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
    if corr == "pearson" and p > FAST_PATH_MIN_WORDS:
        if observed is None:  # no p x p decomposition: what the null's took, for the data
            observed = np.zeros(p)
            observed[:min(n, p)] = _null_eigenvalues(Z)
    else:
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


def velicer_map(R: np.ndarray, max_k: int) -> np.ndarray:
    """Velicer's MAP: entry i (i = 0..max_k) is the mean squared off-diagonal partial correlation after the first i
    principal components are removed (i = 0: the squared correlations themselves). K by MAP is where it is lowest.
    psych::VSS reports i >= 1 only (the same values); Velicer (1976) includes i = 0, so that data without any
    common component give K = 0. Entries whose residual variances vanish (too many components) are NaN.
    Above `FAST_PATH_MIN_WORDS` words: `_velicer_map_wide`, the same numbers without p x p residuals."""
    R = np.asarray(R, float)
    p = R.shape[0]
    if p > FAST_PATH_MIN_WORDS:
        return _velicer_map_wide(R, max_k)
    vals, vecs = np.linalg.eigh(R)
    comp = vecs[:, ::-1] * np.sqrt(np.maximum(vals[::-1], 0.0))
    out = np.full(max_k + 1, np.nan)
    for i in range(min(max_k, p - 1) + 1):
        C = R - comp[:, :i] @ comp[:, :i].T
        d = np.diag(C)
        if np.any(d <= 1e-12):
            continue
        P = C / np.sqrt(np.outer(d, d))
        np.fill_diagonal(P, 0.0)
        out[i] = float((P**2).sum() / (p * (p - 1)))
    return out


def _velicer_map_wide(R: np.ndarray, max_k: int) -> np.ndarray:
    """`velicer_map` in O(p^2 max_k): only the top max_k components (Lanczos, or R's Gram factor), and each entry
    from ||W (R - A A') W||^2 = w'(R o R)w - 2 tr(B' R B) + ||A' B||^2 with d the residual variances, w = 1/d,
    W = diag(sqrt(w)), B = A * w; the diagonal contributes exactly p (C_jj / d_j = 1). Why: at 2,000 words the direct
    loop built and squared four p x p matrices per entry (seconds for the 21 entries of the K table)."""
    p = R.shape[0]
    top = min(max_k, p - 1)
    C = gram_factor(R)
    vals, vecs = _top_eigenpairs(R if C is None else _gram_operator(C, np.diag(R)), top) if top else (
        np.zeros(0), np.zeros((p, 0)))
    comp = vecs * np.sqrt(np.maximum(vals, 0.0))
    squares = R * R
    out = np.full(max_k + 1, np.nan)
    for i in range(top + 1):
        A = comp[:, :i]
        d = np.diag(R) - np.einsum("ij,ij->i", A, A)
        if np.any(d <= 1e-12):
            continue
        w = 1.0 / d
        B = A * w[:, None]
        total = w @ squares @ w - 2.0 * np.einsum("ij,ij->", B, R @ B) + np.sum((A.T @ B) ** 2)
        out[i] = float((total - p) / (p * (p - 1)))
    return out


def _keep_largest(L: np.ndarray, c: int) -> np.ndarray:
    """Each row keeps its c largest |loadings|, the rest set to 0 (psych's complexrow)."""
    out = np.zeros_like(L)
    idx = np.argsort(-np.abs(L), axis=1, kind="stable")[:, :c]
    rows = np.arange(L.shape[0])[:, None]
    out[rows, idx] = L[rows, idx]
    return out


def vss_fit(R: np.ndarray, loadings: np.ndarray, c: int) -> float:
    """Very Simple Structure fit of complexity c: 1 - sum of squared residuals of R (diagonal included) when every
    word keeps only its c largest loadings, over sum R^2. psych::VSS uses varimax loadings (orthogonal model) at each
    K; pass those. NaN when K < c."""
    L = np.asarray(loadings, float)
    if L.shape[1] < c:
        return float("nan")
    S = _keep_largest(L, c)
    R = np.asarray(R, float)
    if R.shape[0] > FAST_PATH_MIN_WORDS:  # ||R - S S'||^2 = ||R||^2 - 2 tr(S'RS) + ||S'S||^2: no p x p residual
        resid2 = squared_norm(R) - 2.0 * np.einsum("ij,ij->", S, R @ S) + np.sum((S.T @ S) ** 2)
        return float(1.0 - resid2 / squared_norm(R))
    resid = R - S @ S.T
    return float(1.0 - (resid**2).sum() / (R**2).sum())


def k_rule_votes(table: Any) -> dict[str, int | None]:
    """K preferred by each fit criterion of a K-candidates table (pandas DataFrame indexed by K with columns
    map, vss1, vss2, bic, rmsea, tli; row K = 0 is the independence model): MAP and BIC lowest; VSS highest; RMSEA: the smallest K whose RMSEA < 0.05
    (Browne & Cudeck's "close fit"); TLI: the smallest K whose TLI >= 0.95 (Hu & Bentler 1999). None when no K meets
    a criterion or the column is empty."""
    def arg(col: str, best: str) -> int | None:
        s = pd.to_numeric(table[col], errors="coerce").dropna()
        if s.empty:
            return None
        return int(s.idxmin() if best == "min" else s.idxmax())

    def first(col: str, ok) -> int | None:
        s = pd.to_numeric(table[col], errors="coerce").dropna()
        hit = s[ok(s)]
        return int(hit.index.min()) if not hit.empty else None

    return {"map": arg("map", "min"), "vss1": arg("vss1", "max"), "vss2": arg("vss2", "max"),
            "bic": arg("bic", "min"), "rmsea_lt_0.05": first("rmsea", lambda s: s < 0.05),
            "tli_ge_0.95": first("tli", lambda s: s >= 0.95)}


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
    """One row per candidate K = 1..max_k: psych's fit indices of the K-factor model (`fit.model_fit`, on the
    unrotated loadings: the fit does not depend on the rotation), Velicer's MAP and VSS of complexity 1 and 2
    (varimax loadings, as psych::VSS). Row K = 0 is the independence model: its chi-square is Bartlett's, its MAP
    the one with no component removed (Velicer's baseline), so that BIC, RMSEA and MAP can say "no factor".
    The candidates are fitted side by side (`thread_map`: each K is independent; the rows are those of a loop)."""
    mp = velicer_map(R, max_k)
    null = null_fit(R, n)
    if method == "minres":
        _smc_start(R)  # every K starts from it: computed once here, not by the first threads at once
    rows = [{**{c: null[c] for c in ("chi2", "df", "p", "rmsea", "rmsea_lower", "rmsea_upper", "bic", "rmsr")},
             "map": mp[0]}]
    rows += thread_map(lambda k: {**_candidate(R, n, k, method), "map": mp[k]}, range(1, max_k + 1))
    cols = ["chi2", "df", "p", "rmsea", "rmsea_lower", "rmsea_upper", "tli", "bic", "rmsr", "map", "vss1", "vss2"]
    table = pd.DataFrame(rows, columns=cols, dtype=float)
    table.index.name = "K"
    return table


def _candidate(R: np.ndarray, n: int, k: int, method: str) -> dict[str, float]:
    """The fit indices and VSS of the K-factor model (one row of `_k_candidates`, without MAP)."""
    L0, _ = _extract(R, k, method)
    fit = model_fit(R, L0, None, n)
    Lv, _ = _rotate(L0, "varimax")
    return {"chi2": fit["chi2"], "df": fit["df"], "p": fit["p"], "rmsea": fit["rmsea"],
            "rmsea_lower": fit["rmsea_lower"], "rmsea_upper": fit["rmsea_upper"], "tli": fit["tli"],
            "bic": fit["bic"], "rmsr": fit["rmsr"], "vss1": vss_fit(R, Lv, 1), "vss2": vss_fit(R, Lv, 2)}


@dataclass
class KChoice:
    """What the rules say about the number of factors, before min_words pruning.

    `k` is the K of the rule used (`rule`: a k_rule, or "fixed" when n_factors was given), capped at distinct words
    - 1; `eigenvalues` and `pa_threshold` are what the scree plot shows; `k_deflated` is None unless k_rule is
    "deflated" (the deflated test is computed only then); `pa_threshold` and `k_parallel` are None when K was fixed
    and parallel analysis not asked for (`parallel_when_fixed=False`).
    """

    k: int
    rule: str
    eigenvalues: np.ndarray
    pa_threshold: np.ndarray | None
    k_parallel: int | None
    k_deflated: int | None
    k_kaiser: int


def choose_n_factors(X: np.ndarray, R: np.ndarray, *, n_factors: int | None, k_rule: str, corr: str, seed: int,
                     pa_iter: int, percentile: float, n_distinct: int, notes: list[str],
                     parallel_when_fixed: bool = True) -> KChoice:
    """The number of factors by `k_rule` (or `n_factors` when given), with what Kaiser and parallel analysis say.

    `X` is the data the correlations `R` come from (parallel analysis permutes it); `n_distinct` the words left once
    perfectly correlated twins are merged (K is at most n_distinct - 1). A note is added when the rule's K is capped;
    a fixed K over the cap is a `UserError`.
    """
    eig = eigenvalues(R)[::-1]
    k_kai = kaiser_k(eig)
    # computed whatever the rule (the scree plot shows the parallel-analysis curve), unless K is fixed and the caller
    # does not want it (resampling loops)
    pa_thr, k_pa, k_defl = None, None, None
    if n_factors is None or parallel_when_fixed:
        _, _, pa_thr, k_pa, k_defl = _parallel(X, pa_iter, percentile, seed, corr, deflate=(k_rule == "deflated"),
                                               observed=eig)
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
    return KChoice(k=k, rule=rule, eigenvalues=eig, pa_threshold=pa_thr, k_parallel=k_pa,
                   k_deflated=k_defl if k_rule == "deflated" else None, k_kaiser=k_kai)


def prune_to_min_words(R: np.ndarray, k: int, rule: str, method: str, rotation: str,
                       dup: dict[int, tuple[int, float]], threshold: float, min_words: int, notes: list[str]
                       ) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray]:
    """Fit K factors; while a rule-chosen factor has fewer than `min_words` words on its larger pole, refit with K - 1
    (see `fit_factors`' min_words for why). Returns (K, loadings, phi, assignment); notes record each step and the
    extraction notes of the final fit."""
    while True:
        L, phi, assign, ext_notes = _solve(R, k, method, rotation, dup, threshold)
        sizes = _pole_sizes(L, assign)
        if rule == "fixed" or k == 0 or sizes.min() >= min_words:
            break
        notes.append(f"K={k}: factor(s) {', '.join(str(j) for j in np.flatnonzero(sizes < min_words))} have fewer "
                     f"than {min_words} words with |loading| >= {threshold} on one pole; refitted with K={k - 1}")
        k -= 1
    notes += ext_notes
    return k, L, phi, assign


#: the default table follows parallel analysis up to here (psych's `nfactors` default, n = 20), and always reaches
#: the chosen K + 3: on ~2,000 mostly rare words Horn's test can pass 50 factors, and a table to K = 53 was 94% of
#: step 03 at paper scale (issue 19) while the K it shows beyond 20 were never the ones chosen
TABLE_FOLLOWS_PARALLEL_UP_TO = 20


def default_max_k(k_parallel: int | None, k: int) -> int:
    """The largest K of the default candidate table: max(8, K by parallel analysis + 3 capped at 20, chosen K + 3)."""
    return max(8, min((k_parallel or 0) + 3, TABLE_FOLLOWS_PARALLEL_UP_TO), k + 3)


def candidate_table(Rk: np.ndarray, n: int, n_distinct: int, max_k: int | None, k_parallel: int | None, k: int,
                    method: str) -> pd.DataFrame | None:
    """`_k_candidates` up to K = max_k (default `default_max_k`), at most distinct words - 1 and respondents - 1;
    None when max_k is 0 or no candidate is possible."""
    top = min(n_distinct - 1, n - 1, max_k if max_k is not None else default_max_k(k_parallel, k))
    return _k_candidates(Rk, n, top, method) if top >= 1 and max_k != 0 else None


def rule_votes(choice: KChoice, k_table: pd.DataFrame | None, k: int) -> dict[str, int | None]:
    """The K each rule prefers (parallel, kaiser, deflated when computed, the candidate-table criteria) and the K
    chosen after pruning, in the order factors.json lists them."""
    votes: dict[str, int | None] = {"parallel": choice.k_parallel, "kaiser": choice.k_kaiser}
    if choice.k_deflated is not None:
        votes["deflated"] = choice.k_deflated
    if k_table is not None:
        votes.update(k_rule_votes(k_table))
    votes["chosen"] = k
    return votes
