"""Value profiles and what shapes them (paper Sec. 3.3 Eq. 4, Sec. 4.2, Fig. 3, Fig. 5).

w_i, a respondent's (or model's) orientation towards value i, is the mean normalised score φ/6 over stems, configs
and samples (Eq. 4). Its uncertainty comes mostly from which stems were asked, so the 95% interval resamples stems
(a cluster bootstrap), not single completions. Effects of training type and size are estimated with statsmodels
(OLS with standard errors clustered by stem), reported as coefficients with confidence intervals.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

LEVEL_KEYS = {"respondent": "respondent", "model": "model"}
NEUTRAL = 3  # the rubric's "neutral or unrelated" score


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
    """Long table: level, id, training, column, w (mean of score/6), lo, hi (95% stem bootstrap), n completions,
    neutral_share (the share of those scores that are exactly the neutral 3)."""
    rng = np.random.default_rng(seed)
    rows = []
    for level in levels:
        for ident, grp in scores.groupby(LEVEL_KEYS[level], sort=True):
            vals = grp[list(columns)].astype(float) / 6.0
            w = vals.mean()
            neutral = (grp[list(columns)].astype(float) == NEUTRAL).sum() / vals.notna().sum().replace(0, np.nan)
            if n_boot > 0 and grp["stem_id"].nunique() > 1:
                boots = _stem_bootstrap(vals, grp["stem_id"].to_numpy(), n_boot, rng)
                lo, hi = np.nanpercentile(boots, 2.5, axis=0), np.nanpercentile(boots, 97.5, axis=0)
            else:
                lo = hi = np.full(len(columns), np.nan)
            training = grp["training"].iloc[0] if grp["training"].nunique() == 1 else "mixed"
            for j, col in enumerate(columns):
                rows.append({"level": level, "id": ident, "training": training, "column": col, "w": w[col],
                             "lo": lo[j], "hi": hi[j], "n": int(vals[col].notna().sum()),
                             "neutral_share": neutral[col]})
    return pd.DataFrame(rows, columns=["level", "id", "training", "column", "w", "lo", "hi", "n", "neutral_share"])


def system_profiles(runs: Mapping[str, Any], n_boot: int = 1000, seed: int = 0,
                    levels: Sequence[str] = ("respondent", "model")) -> pd.DataFrame:
    """value_profiles.csv: `value_profiles` of every scored system (`evaluation.ScoredRun` by key), with the system's
    key in the first column and each column's dimension in `parent` (empty for a dimension)."""
    frames = []
    for key, run in runs.items():
        prof = value_profiles(run.scores, run.columns, n_boot=n_boot, seed=seed, levels=levels).assign(system=key)
        frames.append(prof.assign(parent=prof["column"].map(lambda c, s=run.system: s.parent(c))))
    cols = ["system", "level", "id", "training", "column", "parent", "w", "lo", "hi", "n", "neutral_share"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# ---------------------------------------------------------------------------------------------------------------------
# How much a profile says: in words beside the heatmap, so a pale heatmap is not read as a finding
# ---------------------------------------------------------------------------------------------------------------------
#: A profile carries little signal when at least this share of its scores is neutral ...
LITTLE_NEUTRAL = 0.5
#: ... or when at least this share of its cells has a 95% interval that includes 0.5.
LITTLE_COVER = 0.5


@dataclass
class Signal:
    """How much one heatmap of `value_profiles` (one system, one level) says."""

    level: str
    n_cells: int                  # (model or respondent) x (sub)dimension cells
    n_intervals: int              # cells with a bootstrap interval
    n_cover: int                  # ... whose 95% interval includes 0.5
    neutral_share: float          # share of all scores behind the cells that are the neutral 3
    median_width: float           # median width of the 95% intervals (w units, 0..1)
    clearest: dict[str, Any] | None  # the cell farthest from 0.5 whose interval excludes 0.5
    max_distance: float = float("nan")  # the largest |w - 0.5| of any cell

    @property
    def little(self) -> bool:
        cover = self.n_cover / self.n_intervals if self.n_intervals else 0.0
        return bool(self.neutral_share >= LITTLE_NEUTRAL or cover >= LITTLE_COVER)

    def parts(self, brackets: bool = True) -> tuple[str, list[str]]:
        """(headline, sentences); `brackets`: say that the heatmap brackets the cells whose interval includes 0.5."""
        unit = f"{self.level} × (sub)dimension"
        said = [] if np.isnan(self.neutral_share) else [f"{self.neutral_share:.0%} of the scores are the neutral 3"]
        if self.n_intervals:
            said.append(f"the 95% interval includes 0.5 for {self.n_cover} of {self.n_intervals} {unit} cells "
                        f"(median interval width {self.median_width:.2f}"
                        + ("; those cells' values are in brackets)" if brackets else ")"))
        else:
            said.append("there are no intervals (scoring.n_bootstrap is 0, or a single stem)")
        if not np.isnan(self.max_distance):
            said.append(f"no cell is farther than {self.max_distance:.2f} from 0.5 (on a 0-1 scale)")
        sentence = "; ".join(said)
        body = [sentence[0].upper() + sentence[1:] + "."]
        if self.little:
            body.append("Pale colours here mean the test found little, not that the models are measured neutral.")
        if self.clearest is not None:
            c = self.clearest
            body.append(f"Clearest cell: {c['id']} on {c['column']}, w = {c['w']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}].")
        elif self.n_intervals:
            body.append("No cell's interval excludes 0.5.")
        return ("Little signal." if self.little else "Signal."), body

    def markdown(self) -> str:
        head, body = self.parts()
        return f"**{head}** " + " ".join(body)

    def html(self) -> str:
        import html

        head, body = self.parts()
        cls = "vl-signal vl-little" if self.little else "vl-signal"
        return f'<p class="{cls}"><b>{html.escape(head)}</b> {html.escape(" ".join(body))}</p>'

    def _repr_markdown_(self) -> str:
        return self.markdown()


def covers_neutral(profiles: pd.DataFrame) -> pd.Series:
    """True where a profile cell's 95% interval includes 0.5 (False where there is no interval)."""
    return (profiles["lo"] <= 0.5) & (profiles["hi"] >= 0.5)


def profile_signal(profiles: pd.DataFrame, level: str = "model", system: str | None = None) -> Signal:
    """How much the `level` heatmap of `profiles` (one system: pass `system` when the table holds several) says:
    share of neutral scores (weighted by each cell's n), intervals that include 0.5, their median width, and the
    clearest cell."""
    sub = one_system(profiles, system)
    sub = sub[sub["level"] == level]
    has = sub["lo"].notna() & sub["hi"].notna()
    cover = covers_neutral(sub) & has
    known = sub["neutral_share"].notna() & (sub["n"] > 0)  # a table written before neutral_share existed: unknown
    n = sub.loc[known, "n"].astype(float)
    neutral = float((sub.loc[known, "neutral_share"].astype(float) * n).sum() / n.sum()) if known.any() else float("nan")
    clear = sub[has & ~cover]
    clearest = None
    if len(clear):
        row = clear.loc[(clear["w"] - 0.5).abs().idxmax()]
        clearest = {k: row[k] for k in ("id", "column", "w", "lo", "hi")}
    width = (sub.loc[has, "hi"] - sub.loc[has, "lo"]).median() if has.any() else float("nan")
    return Signal(level=level, n_cells=int(len(sub)), n_intervals=int(has.sum()), n_cover=int(cover.sum()),
                  neutral_share=neutral, median_width=float(width), clearest=clearest,
                  max_distance=float((sub["w"] - 0.5).abs().max()) if len(sub) else float("nan"))


def one_system(profiles: pd.DataFrame, system: str | None = None) -> pd.DataFrame:
    """The rows of one system (`system`, or the only one in the table); a table of several needs `system`."""
    if "system" not in profiles.columns:
        return profiles
    if system is None:
        present = list(dict.fromkeys(profiles["system"]))
        if len(present) > 1:
            raise ValueError(f"the profiles hold several systems ({', '.join(map(str, present))}): pass system=")
        return profiles
    return profiles[profiles["system"] == system]


def profile_matrix(profiles: pd.DataFrame, level: str = "model", system: str | None = None) -> pd.DataFrame:
    """ids x columns of w, in the columns' original order."""
    profiles = one_system(profiles, system)
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
        if d["y"].nunique() <= 1:  # OLS on a constant would report a zero effect with a spurious p-value
            notes.append(f"{col}: every completion got the same score: no effect to estimate")
            continue
        with warnings.catch_warnings():  # a column with a handful of non-neutral scores can give a negative
            warnings.simplefilter("ignore", RuntimeWarning)  # clustered variance: its interval is NaN, said below
            fit = smf.ols(f"y ~ {' + '.join(terms)}", data=d).fit(cov_type="cluster",
                                                                  cov_kwds={"groups": d["stem_id"]})
            ci = fit.conf_int()
        if ci.drop(index="Intercept", errors="ignore").isna().any().any():
            notes.append(f"{col}: too few non-neutral scores for a clustered interval on some term")
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
