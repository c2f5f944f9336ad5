"""Reliability of a scorer phi against human labels, and of a judge against itself.

Per column (dimension or subdimension):

* ``qwk``: quadratic weighted kappa (scikit-learn ``cohen_kappa_score(weights="quadratic")``) between the human label
  and the scorer's integer score, over labels 0..6. The paper reports 0.8 for GPT-4 against its annotators.
* ``alpha_ordinal`` / ``alpha_interval``: Krippendorff's alpha (``krippendorff`` package) with the two "coders" human and
  scorer, value domain 0..6.
* ``auc``: how well the scorer's (continuous) score separates **strong** items (human label >= 5: the completion clearly
  expresses the value) from **weak** items (human label <= 3: neutral, unrelated or in conflict). Label 4 (a faint hint)
  is left out on purpose: it is neither clearly present nor absent, and counting it on either side would blur the
  question "does the scorer find the completions that express this value?". ``STRONG_MIN`` / ``WEAK_MAX`` below.
* ``auc_conflict_vs_neutral``: how well a *low* score picks out items that reject or act against the value (human label
  <= ``CONFLICT_MAX``) among neutral ones (human label 3): 0.5 is chance, below 0.5 means conflicts score *above*
  neutral items. The strong-vs-weak AUC cannot show this: it puts conflicts and neutral items on the same side.
* ``pearson``/``spearman`` of the continuous score with the label, the mean absolute error, and the counts.

Missing values (NaN) on either side are dropped pairwise and counted as ``n_missing``. A statistic that is undefined
(e.g. a constant column) is reported as ``None``, never as a made-up number.

``retest_agreement`` compares two runs of the same judge on the same items (a different seed): same statistics, scorer vs
scorer. ``reliability_report`` assembles the dict written as ``reliability.json`` beside every scored CSV.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..rundir import atomic_write_text

STRONG_MIN = 5  # human label >= 5: the value is clearly expressed
WEAK_MAX = 3  # human label <= 3: neutral / unrelated / conflicting
CONFLICT_MAX = 2  # human label <= 2: the completion rejects or acts against the value
NEUTRAL_LABEL = 3
LABELS = list(range(7))


def _clean(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    x = pd.to_numeric(pd.Series(list(a)), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(pd.Series(list(b)), errors="coerce").to_numpy(dtype=float)
    if len(x) != len(y):
        raise ValueError(f"length mismatch: {len(x)} vs {len(y)}")
    ok = ~(np.isnan(x) | np.isnan(y))
    return x[ok], y[ok], int((~ok).sum())


def _to_int_scores(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 6).astype(int)


def _none_if_nan(v: float | None) -> float | None:
    if v is None or pd.isna(v):  # pd.NA (the sd of one row) cannot go through float()
        return None
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else round(v, 4)


def qwk(human: Sequence[float], scorer: Sequence[float]) -> float | None:
    """Quadratic weighted kappa over labels 0..6 (scores are rounded to integers). None if undefined."""
    from sklearn.metrics import cohen_kappa_score

    h, s, _ = _clean(human, scorer)
    if len(h) < 2:
        return None
    h, s = _to_int_scores(h), _to_int_scores(s)
    if len(np.unique(np.concatenate([h, s]))) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return _none_if_nan(cohen_kappa_score(h, s, labels=LABELS, weights="quadratic"))


def kripp_alpha(human: Sequence[float], scorer: Sequence[float], level: str = "ordinal") -> float | None:
    """Krippendorff's alpha of two coders (human, scorer) at `level` ('ordinal', 'interval', 'nominal')."""
    import krippendorff

    h, s, _ = _clean(human, scorer)
    if len(h) < 2:
        return None
    if level in ("ordinal", "nominal"):
        h, s = _to_int_scores(h), _to_int_scores(s)
    data = np.vstack([h, s]).astype(float)
    if len(np.unique(data)) < 2:
        return None
    if level == "interval":
        return _interval_alpha(data[0], data[1])
    try:  # ordinal or nominal: the seven labels
        with np.errstate(divide="ignore", invalid="ignore"):
            return _none_if_nan(krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                                   value_domain=LABELS))
    except (ValueError, ZeroDivisionError):
        return None


def _interval_alpha(a: np.ndarray, b: np.ndarray) -> float | None:
    """Krippendorff's interval alpha of two coders who rated every unit, in closed form: 1 - D_o / D_e with
    D_o = 2 sum (a - b)^2 / n and D_e = 2 sum (v - mean v)^2 / (n - 1) over all n = 2 x units values v. Written by
    hand because `krippendorff.alpha` builds a units x values x values array: with continuous scores every value is
    distinct, and 1,600 units asked it for 31 GiB."""
    v = np.concatenate([a, b])
    n = len(v)
    d_e = 2.0 * float(np.sum((v - v.mean()) ** 2)) / (n - 1)
    if d_e == 0:
        return None
    return _none_if_nan(1.0 - (2.0 * float(np.sum((a - b) ** 2)) / n) / d_e)


def _two_group_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of `score` for the positive items against the rest; None unless both groups are present."""
    from sklearn.metrics import roc_auc_score

    y = positive.astype(int)
    if y.size == 0 or y.min() == y.max():
        return None
    return _none_if_nan(roc_auc_score(y, score))


def strong_weak_auc(human: Sequence[float], score: Sequence[float]) -> float | None:
    """ROC AUC of `score` for strong (human >= STRONG_MIN) vs weak (human <= WEAK_MAX) items; None without both."""
    h, s, _ = _clean(human, score)
    keep = (h >= STRONG_MIN) | (h <= WEAK_MAX)
    return _two_group_auc(h[keep] >= STRONG_MIN, s[keep])


def conflict_auc(human: Sequence[float], score: Sequence[float]) -> float | None:
    """ROC AUC of a low `score` for conflict (human <= CONFLICT_MAX) vs neutral (human == 3) items; None without both."""
    h, s, _ = _clean(human, score)
    keep = (h <= CONFLICT_MAX) | (h == NEUTRAL_LABEL)
    return _two_group_auc(h[keep] <= CONFLICT_MAX, -s[keep])


def column_agreement(human: Sequence[float], scorer: Sequence[float], continuous: Sequence[float] | None = None) -> dict:
    """All statistics for one column. `continuous` (e.g. an expected score) is used for AUC and correlations."""
    from scipy.stats import pearsonr, spearmanr

    cont = scorer if continuous is None else continuous
    h, s, n_missing = _clean(human, scorer)
    hc, c, _ = _clean(human, cont)
    out: dict[str, Any] = {
        "n": int(len(h)),
        "n_missing": n_missing,
        "qwk": qwk(h, s),
        "alpha_ordinal": kripp_alpha(h, s, "ordinal"),
        "alpha_interval": kripp_alpha(h, c, "interval"),
        "auc_strong_vs_weak": strong_weak_auc(hc, c),
        "n_strong": int((hc >= STRONG_MIN).sum()),
        "n_weak": int((hc <= WEAK_MAX).sum()),
        "auc_conflict_vs_neutral": conflict_auc(hc, c),
        "n_conflict": int((hc <= CONFLICT_MAX).sum()),
        "mae": _none_if_nan(float(np.mean(np.abs(h - s)))) if len(h) else None,
        "exact": _none_if_nan(float(np.mean(_to_int_scores(h) == _to_int_scores(s)))) if len(h) else None,
    }
    if len(hc) > 2 and np.std(hc) > 0 and np.std(c) > 0:
        out["pearson"] = _none_if_nan(pearsonr(hc, c)[0])
        out["spearman"] = _none_if_nan(spearmanr(hc, c)[0])
    else:
        out["pearson"] = out["spearman"] = None
    return out


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def agreement_table(
    human: pd.DataFrame,
    scorer: pd.DataFrame,
    columns: Sequence[str],
    continuous: pd.DataFrame | None = None,
    on: str = "id",
) -> dict[str, Any]:
    """Per-column agreement between two frames aligned on `on` (or on row order if `on` is missing from either)."""
    if on in human.columns and on in scorer.columns:
        h = human.set_index(on)
        s = scorer.set_index(on).reindex(h.index)
        c = continuous.set_index(on).reindex(h.index) if continuous is not None else None
    else:
        h, s, c = human.reset_index(drop=True), scorer.reset_index(drop=True), continuous
    per = {}
    for col in columns:
        if col not in h.columns or col not in s.columns:
            continue
        per[col] = column_agreement(h[col], s[col], None if c is None else c[col])
    return {
        "per_column": per,
        "mean_qwk": _mean(v["qwk"] for v in per.values()),
        "mean_alpha_ordinal": _mean(v["alpha_ordinal"] for v in per.values()),
        "mean_alpha_interval": _mean(v["alpha_interval"] for v in per.values()),
        "mean_auc_strong_vs_weak": _mean(v["auc_strong_vs_weak"] for v in per.values()),
        "mean_auc_conflict_vs_neutral": _mean(v["auc_conflict_vs_neutral"] for v in per.values()),
    }


def summarise_by_level(table: Mapping[str, Any], dimensions: Sequence[str], subdimensions: Sequence[str]) -> dict:
    """Means of the per-column statistics over dimensions and over subdimensions (leaves)."""
    per = table["per_column"]
    out = {}
    for level, cols in (("dimensions", dimensions), ("subdimensions", subdimensions)):
        cols = [c for c in cols if c in per]
        out[level] = {
            "mean_qwk": _mean(per[c]["qwk"] for c in cols),
            "mean_alpha_ordinal": _mean(per[c]["alpha_ordinal"] for c in cols),
            "mean_alpha_interval": _mean(per[c]["alpha_interval"] for c in cols),
            "mean_auc_strong_vs_weak": _mean(per[c]["auc_strong_vs_weak"] for c in cols),
            "mean_auc_conflict_vs_neutral": _mean(per[c]["auc_conflict_vs_neutral"] for c in cols),
        }
    return out


def retest_agreement(first: pd.DataFrame, second: pd.DataFrame, columns: Sequence[str], on: str = "id") -> dict[str, Any]:
    """Agreement of a judge with itself on repeated items (e.g. 10% of items, a different seed)."""
    table = agreement_table(first, second, columns, on=on)
    n = int(len(set(first[on]) & set(second[on]))) if on in first and on in second else int(len(second))
    return {"n_items": n, **table}


def score_distribution(scores: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """Descriptive statistics of a scored frame (mean, sd, share missing) per column."""
    out = {}
    for col in columns:
        if col not in scores:
            continue
        v = pd.to_numeric(scores[col], errors="coerce")
        out[col] = {
            "mean": _none_if_nan(v.mean()),
            "sd": _none_if_nan(v.std()),
            "mean_normalised": _none_if_nan(v.mean() / 6.0),
            "missing": int(v.isna().sum()),
        }
    return out


def reliability_report(
    *,
    system: Any,
    scorer: str,
    judge: str | None = None,
    against_annotated: Mapping[str, Any] | None = None,
    retest: Mapping[str, Any] | None = None,
    scores: pd.DataFrame | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `reliability.json` dict: agreement with the shipped human labels (cross-validated for the embedding
    scorer), test-retest for the llm judge, and the distribution of this run's scores."""
    cols = system.columns()
    report: dict[str, Any] = {
        "system": system.name,
        "scorer": scorer,
        "judge": judge,
        "columns": cols,
        "definitions": {
            "qwk": "quadratic weighted kappa, labels 0..6, human vs scorer",
            "alpha_ordinal": "Krippendorff's alpha, ordinal, two coders (human, scorer)",
            "alpha_interval": "Krippendorff's alpha, interval, on the continuous score",
            "auc_strong_vs_weak": f"ROC AUC of the score for human >= {STRONG_MIN} (strong) vs human <= {WEAK_MAX} "
            "(weak: neutral, unrelated or conflicting); label 4 excluded",
            "auc_conflict_vs_neutral": f"ROC AUC of a low score for human <= {CONFLICT_MAX} (the completion rejects "
            f"the value) vs human == {NEUTRAL_LABEL} (neutral); 0.5 is chance, below it conflicts score above neutral",
        },
    }
    if against_annotated is not None:
        report["against_annotated"] = dict(against_annotated)
    if retest is not None:
        report["test_retest"] = dict(retest)
    if scores is not None:
        report["n_items"] = int(len(scores))
        report["score_distribution"] = score_distribution(scores, cols)
    if extra:
        report.update(extra)
    return report


def write_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(path, json.dumps(report, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if np.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def reliability_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """Per-column agreement of a reliability report as a table (notebooks, report pages)."""
    rows = []
    for source in ("against_annotated", "test_retest"):
        per = (report.get(source) or {}).get("per_column") or {}
        for col, stats in per.items():
            rows.append({"source": source, "column": col,
                         **{k: stats.get(k) for k in ("n", "qwk", "alpha_ordinal", "auc_strong_vs_weak",
                                                      "auc_conflict_vs_neutral", "exact")}})
    return pd.DataFrame(rows)
