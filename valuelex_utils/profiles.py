"""Value profiles and what shapes them (paper Sec. 3.3 Eq. 4, Sec. 4.2, Fig. 3, Fig. 5).

w_i, a respondent's (or model's) orientation towards value i, is the mean normalised score φ/6 over stems, configs
and samples (Eq. 4). Its uncertainty comes mostly from which stems were asked, so the 95% interval resamples stems
(a cluster bootstrap), not single completions. Effects of training type and size are estimated with statsmodels
(OLS with standard errors clustered by stem), reported as coefficients with confidence intervals.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

LEVEL_KEYS = {"respondent": "respondent", "model": "model"}


def _stem_bootstrap(values: pd.DataFrame, stems: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of every column, resampling stems with replacement: (n_boot, n_columns)."""
    uniq = np.unique(stems)
    per_stem_sum = values.groupby(stems).sum().reindex(uniq).to_numpy()
    per_stem_n = values.groupby(stems).count().reindex(uniq).to_numpy()
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    sums = per_stem_sum[draws].sum(axis=1)
    counts = per_stem_n[draws].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def value_profiles(scores: pd.DataFrame, columns: Sequence[str], n_boot: int = 1000, seed: int = 0,
                   levels: Sequence[str] = ("respondent", "model")) -> pd.DataFrame:
    """Long table: level, id, training, column, w (mean of score/6), lo, hi (95% stem bootstrap), n completions."""
    rng = np.random.default_rng(seed)
    rows = []
    for level in levels:
        for ident, grp in scores.groupby(LEVEL_KEYS[level], sort=True):
            vals = grp[list(columns)].astype(float) / 6.0
            w = vals.mean()
            if n_boot > 0 and grp["stem_id"].nunique() > 1:
                boots = _stem_bootstrap(vals, grp["stem_id"].to_numpy(), n_boot, rng)
                lo, hi = np.nanpercentile(boots, 2.5, axis=0), np.nanpercentile(boots, 97.5, axis=0)
            else:
                lo = hi = np.full(len(columns), np.nan)
            training = grp["training"].iloc[0] if grp["training"].nunique() == 1 else "mixed"
            for j, col in enumerate(columns):
                rows.append({"level": level, "id": ident, "training": training, "column": col, "w": w[col],
                             "lo": lo[j], "hi": hi[j], "n": int(vals[col].notna().sum())})
    return pd.DataFrame(rows)


def profile_matrix(profiles: pd.DataFrame, level: str = "model") -> pd.DataFrame:
    """ids x columns of w, in the columns' original order."""
    sub = profiles[profiles["level"] == level]
    order = list(dict.fromkeys(sub["column"]))
    return sub.pivot(index="id", columns="column", values="w")[order]


def subdimension_correlations(scores: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Spearman correlations among (sub)dimension scores across completions (paper Fig. 5)."""
    return scores[list(columns)].astype(float).corr(method="spearman")


def effects(scores: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Effects of training type (vs pretrained) and log size on each column's normalised score.

    OLS per column, standard errors clustered by stem. A term the design cannot separate (e.g. two models that differ
    in both size and training) is dropped and said so in the notes, rather than reported as a number.
    """
    import statsmodels.formula.api as smf

    data = scores.copy()
    notes: list[str] = []
    terms = []
    if data["training"].nunique() > 1:
        ref = "pretrained" if "pretrained" in set(data["training"]) else sorted(set(data["training"]))[0]
        terms.append(f"C(training, Treatment('{ref}'))")
    has_size = data["size"].notna().all() and data["size"].nunique() > 1
    if has_size:
        data["log_size"] = np.log10(data["size"].astype(float))
        if terms and _confounded(data):
            notes.append("size and training type are confounded in this study (each model has one of each): "
                         "only training type is estimated; add models to separate them")
        else:
            terms.append("log_size")
    elif data["size"].isna().any():
        notes.append("some sizes are unknown (null): size is left out of the model")
    if not terms:
        notes.append("a single training type and size: no effects to estimate")
        return pd.DataFrame(columns=["column", "term", "coef", "lo", "hi", "p"]), notes
    rows = []
    for col in columns:
        d = data.assign(y=data[col].astype(float) / 6.0).dropna(subset=["y"])
        fit = smf.ols(f"y ~ {' + '.join(terms)}", data=d).fit(cov_type="cluster", cov_kwds={"groups": d["stem_id"]})
        ci = fit.conf_int()
        for term in fit.params.index:
            if term == "Intercept":
                continue
            rows.append({"column": col, "term": _pretty(term), "coef": fit.params[term], "lo": ci.loc[term, 0],
                         "hi": ci.loc[term, 1], "p": fit.pvalues[term]})
    return pd.DataFrame(rows), notes


def _confounded(data: pd.DataFrame) -> bool:
    """True when every model's training type determines its size and vice versa (no within-type size variation)."""
    per_model = data.drop_duplicates("model")[["training", "log_size"]]
    return bool((per_model.groupby("training")["log_size"].nunique() <= 1).all()
                and (per_model.groupby("log_size")["training"].nunique() <= 1).all())


def _pretty(term: str) -> str:
    if term.startswith("C(training"):
        return "training: " + term.split("[T.")[-1].rstrip("]") + " (vs " + term.split("'")[1] + ")"
    return "log10(size in B)" if term == "log_size" else term
