"""`fit_factors`: the EFA of step 3 from a respondents x words matrix to a `FactorResult`, and the CLI entry.

The steps are in sibling modules (correlations, retention, solution = extraction + rotation, fit, adequacy); this
module only orders them. The order of the notes in the result is part of the output (factors.json) and is kept.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valuelex_utils.errors import UserError

from .adequacy import bartlett_sphericity, kmo
from .correlations import _tetrachoric, correlation_matrix, standardised
from .fit import item_complexity, model_fit, omega, score_weights
from .linalg import FAST_PATH_MIN_WORDS, remember_gram_factor, submatrix
from .matrix import _validate_counts, load_matrix
from .options import (
    _NOTES_ATTR,
    _check_numbers,
    _check_options,
    _one_blas_thread,
    thread_map,
)
from .outputs import write_factor_outputs
from .result import FactorResult
from .retention import candidate_table, choose_n_factors, prune_to_min_words, rule_votes
from .solution import _bootstrap_loadings, _duplicate_words


def _correlations(X: np.ndarray, words: list[str], corr: str, transform: str, notes: list[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The correlation matrix R of the (transformed) data: returns (X as used by parallel analysis, Xa as scored,
    R, the transform actually applied)."""
    if corr == "tetrachoric":
        if not np.isin(X, (0.0, 1.0)).all():
            notes.append("tetrachoric correlations: counts > 0 treated as 1 (word used), 0 as 0")
        B = (X > 0).astype(float)
        const = [w for w, sd in zip(words, B.std(axis=0)) if sd == 0]
        if const:
            raise UserError(f"tetrachoric correlations need every word used by some but not all respondents: "
                            f"{', '.join(const[:5])}")
        R, n_clip = _tetrachoric(B)
        if n_clip:
            notes.append(f"tetrachoric matrix was not positive semi-definite; {n_clip} eigenvalue(s) clipped")
        return X, B, R, transform
    if transform == "log1p" and (X < 0).any():
        notes.append("negative values: not counts, so correlations are of the raw values (transform 'none')")
        transform = "none"
    if transform == "log1p":
        X = np.log1p(X)
    return X, X, correlation_matrix(X, "pearson"), transform


def _adequacy(R: np.ndarray, n: int, words: list[str], notes: list[str]) -> dict[str, Any]:
    """KMO and Bartlett's test as `FactorResult` fields, with a note when either speaks against factoring."""
    kmo_per, kmo_all = kmo(R)
    chi2, bp, bdf = bartlett_sphericity(R, n)
    if kmo_all < 0.6:
        notes.append(f"overall KMO {kmo_all:.2f} < 0.6: weak common structure for factor analysis")
    if bp is not None and bp > 0.05:
        notes.append(f"Bartlett's test p = {bp:.3g}: correlations not distinguishable from none")
    return {"kmo_overall": kmo_all, "kmo_per_word": pd.Series(kmo_per, index=pd.Index(words, name="word"), name="kmo"),
            "bartlett_chi2": chi2, "bartlett_p": bp, "bartlett_df": bdf}


def _no_adequacy(p: int) -> dict[str, Any]:
    """The adequacy fields of a fit run with `diagnostics=False`: not computed (None, an empty table)."""
    return {"kmo_overall": None, "kmo_per_word": pd.Series(dtype=float, index=pd.Index([], name="word"), name="kmo"),
            "bartlett_chi2": None, "bartlett_p": None, "bartlett_df": p * (p - 1) // 2}


def _solution_frames(L: np.ndarray, phi: np.ndarray | None, assign: np.ndarray, words: list[str], rule: str,
                     threshold: float, notes: list[str]) -> dict[str, Any]:
    """Loadings, phi, communalities, explained variance and assignment as `FactorResult` fields (with the Ledermann,
    Heywood and empty-factor notes)."""
    p, k = L.shape
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
    return {"loadings": loadings, "phi": phi_df, "assignment": assignment,
            "communalities": pd.Series(comm, index=loadings.index, name="communality"), "variance": variance}


def _scores(Xa: np.ndarray, R: np.ndarray, L: np.ndarray, phi: np.ndarray | None, index: pd.Index,
            cols: list[str]) -> dict[str, pd.DataFrame]:
    """Regression and Bartlett factor scores per matrix row (psych::factor.scores)."""
    sd = Xa.std(axis=0, ddof=1)
    Z = (Xa - Xa.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return {how: pd.DataFrame(Z @ score_weights(R, L, phi, how), index=index, columns=cols)
            for how in ("regression", "bartlett")}


def _loading_ci(Xa: np.ndarray, corr: str, k: int, method: str, rotation: str, L: np.ndarray, n_boot: int,
                seed: int, loadings: pd.DataFrame, notes: list[str]) -> dict[str, pd.DataFrame]:
    """Bootstrap 95% intervals of the loadings as DataFrames like `loadings` (`solution._bootstrap_loadings`)."""
    lo_ci, hi_ci, skipped = _bootstrap_loadings(Xa, corr, k, method, rotation if k >= 2 else "none", L, n_boot, seed)
    if skipped:
        notes.append(f"loading intervals: {skipped} of {n_boot} resamples skipped (a word constant in them)")
    return {"lower": pd.DataFrame(lo_ci, index=loadings.index, columns=loadings.columns),
            "upper": pd.DataFrame(hi_ci, index=loadings.index, columns=loadings.columns)}


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
    parallel_when_fixed: bool = True,
    diagnostics: bool = True,
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
            max(8, K by parallel analysis + 3 but at most 20, K + 3) (`retention.default_max_k`), at most
            words - 1; 0 skips the table (it about doubles the time of a fit: worth skipping in resampling loops such
            as `bootstrap_stability`).
        parallel_when_fixed: also run parallel analysis when `n_factors` fixes K (default), for the scree plot's
            curve and `k_votes`; resampling loops that only compare K and assignments turn it off (`k_parallel` and
            `pa_threshold` are then None): at paper scale it was a third of each resample's fit.

    Besides loadings and assignments the result has what psych::fa reports (module `fit`, psych's formulas; K rules in
    `retention`):
    `fit` (chi-square and df, RMSEA with 90% interval, TLI, BIC, RMSR of the chosen model), `k_table` and `k_votes`
    (the K each rule prefers), `uniquenesses`, `complexity` (Hofmann), `scores` (regression and Bartlett factor
    scores per row), `omega` (McDonald's omega total, and hierarchical for oblique K >= 2).

    K = 0 (no eigenvalue beats chance) is a legitimate answer: no loadings, every word -1, and a note.
    """
    rotation = _check_options(method, rotation, k_rule, corr, threshold, min_words, transform)
    _check_numbers(n_factors, n_boot, max_k, pa_iter, percentile)
    data = _validate_counts(df, source="matrix", allow_negative=True)
    notes = list(data.attrs.get(_NOTES_ATTR, []))
    words = [str(c) for c in data.columns]
    X, Xa, R, transform = _correlations(data.to_numpy(float), words, corr, transform, notes)
    n, p = X.shape
    if corr == "pearson" and n < p and p > FAST_PATH_MIN_WORDS:  # paper scale, fewer respondents than words
        remember_gram_factor(R, standardised(X) / np.sqrt(n))  # R = Z'Z / n
    if n <= p:
        notes.append(f"{n} respondents for {p} words: the correlation matrix is singular; KMO uses its "
                     "pseudo-inverse, Bartlett's test is undefined, and loadings are noisy")
    dup = _duplicate_words(R)
    n_distinct = p - len(dup)
    if dup:
        notes.append("perfectly correlated words fitted through their twin: "
                     + ", ".join(f"{words[i]} = {words[j]}" for i, (j, _) in list(dup.items())[:10]))
    choice = choose_n_factors(X, R, n_factors=n_factors, k_rule=k_rule, corr=corr, seed=seed, pa_iter=pa_iter,
                              percentile=percentile, n_distinct=n_distinct, notes=notes,
                              parallel_when_fixed=parallel_when_fixed)
    adequacy = _adequacy(R, n, words, notes) if diagnostics else _no_adequacy(p)
    k, L, phi, assign = prune_to_min_words(R, choice.k, choice.rule, method, rotation, dup, threshold, min_words,
                                           notes)
    frames = _solution_frames(L, phi, assign, words, choice.rule, threshold, notes)
    keep = [j for j in range(p) if j not in dup]
    Rk = submatrix(R, keep) if dup else R  # the same object: what was computed of R is reused
    k_table = candidate_table(Rk, n, n_distinct, max_k, choice.k_parallel, k, method)
    cols = list(frames["loadings"].columns)
    index = pd.Index(data.index, name=data.index.name or "respondent")
    if not diagnostics:
        notes.append("diagnostics not computed (KMO, Bartlett, fit statistics, scores, omega): a resampling fit")
    # the interval note comes last in `notes`, so the intervals are computed before the result is put together
    loading_ci = (_loading_ci(Xa, corr, k, method, rotation, L, n_boot, seed, frames["loadings"], notes)
                  if k and n_boot else None)
    return FactorResult(
        n_factors=k, k_rule=choice.rule, method=method, rotation=rotation if k >= 2 else "none", corr=corr,
        threshold=float(threshold), n_respondents=n, words=words, eigenvalues=choice.eigenvalues,
        pa_threshold=choice.pa_threshold, pa_percentile=float(percentile), pa_iter=int(pa_iter),
        k_parallel=choice.k_parallel, k_deflated=choice.k_deflated, k_kaiser=choice.k_kaiser,
        k_before_pruning=choice.k, min_words=int(min_words), transform=transform if corr == "pearson" else "none",
        **frames, **adequacy,
        seed=int(seed), notes=notes, fit=model_fit(Rk, L[keep], phi, n) if k and diagnostics else {}, k_table=k_table,
        k_votes=rule_votes(choice, k_table, k),
        complexity=pd.Series(item_complexity(L), index=frames["loadings"].index, name="complexity") if k else None,
        scores=_scores(Xa, R, L, phi, index, cols) if k and diagnostics else {},
        omega=omega(R, L, phi) if k >= 2 and diagnostics else {},
        loading_ci=loading_ci, n_boot=int(n_boot),
    )


def fit_each(matrices: Sequence[pd.DataFrame], *, jobs: int | None = None, progress: str | None = None,
             **opts: Any) -> list[FactorResult | UserError]:
    """`fit_factors(m, **opts)` for each matrix, side by side (`options.thread_map`, one per core by default): the
    resampling loops of step 4 refit 20 subsamples, each a few seconds at paper scale. A matrix that cannot be fitted
    gives its `UserError` in its place, so one bad resample does not lose the others. `progress`: a tqdm bar with
    this label. Results equal those of a plain loop (every fit is deterministic)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(matrices), desc=progress, disable=progress is None)

    def one(m: pd.DataFrame) -> FactorResult | UserError:
        try:
            return fit_factors(m, **opts)
        except UserError as err:
            return err
        finally:
            bar.update()

    try:
        return thread_map(one, matrices, jobs)
    finally:
        bar.close()


def run_factors_cli(matrix_csv: str | os.PathLike, out_dir: str | os.PathLike, **opts: Any) -> dict[str, Any]:
    """`valuelex factors MATRIX.csv -o DIR`: load, fit, write. Options are `fit_factors` keywords (None values are
    ignored, so a CLI can pass every flag through). Everything is validated and fitted before anything is written,
    so bad input leaves DIR untouched. Returns a short summary (K, assigned counts, output paths, notes)."""
    allowed = {"n_factors", "method", "rotation", "k_rule", "corr", "threshold", "seed", "pa_iter", "percentile",
               "min_words", "transform", "n_boot", "max_k", "parallel_when_fixed"}
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
