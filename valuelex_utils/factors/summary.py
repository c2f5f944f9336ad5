"""Step 3's result for reading: adequacy, the K candidates and which rule prefers which K, per-word table."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .result import FactorResult


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
    not_run = {"parallel"} if result.pa_threshold is None else set()  # K fixed, parallel_when_fixed=False

    def said(r: str, k: int | None) -> str:
        return "not run" if r in not_run else "none" if k is None else str(k)

    others = [f"{_RULE_NAMES[r]}: {said(r, k)}" for r, k in v.items()
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
