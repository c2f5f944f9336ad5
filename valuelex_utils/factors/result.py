"""`FactorResult`: everything `fit_factors` found, and its factors.json form."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


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
    k_parallel: int | None
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
    kmo_overall: float | None
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
