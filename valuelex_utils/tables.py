"""Tables and warnings for people, shown by the notebooks (and so in the report).

Numbers with three significant digits and integers as integers (one pandas float format, set by `setup_notebook`);
model text cleaned of markup and special tokens, escaped, wrapped and never silently cut; an empty cell says "—";
and warnings in words where the data is too thin to read a table or figure as a finding.
"""
from __future__ import annotations

import html
import math
import numbers
import re
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

#: a model's special tokens that leak into its text (Gemma's <start_of_image>, ChatML's <|im_end|>, <s>, <eos>...)
SPECIAL_TOKENS = re.compile(r"<(?:start|end)_of_[a-z_]+>|<\|[^<>|]{1,40}\|>|</?s>|<(?:pad|unk|bos|eos|mask)>", re.I)
#: HTML tags a model wrote (answers are shown as text, so a tag would show literally)
HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")
TEXT_STYLE = "white-space: pre-wrap; text-align: left; max-width: 46em; min-width: 14em; vertical-align: top;"
NEUTRAL = 3.0  # the scale's midpoint: "neither"
SCORES_COLUMN = "scores (0-6, furthest from 3)"
MAX_CHARS = 1500  # beyond this a cell says how much it leaves out


def fmt_number(v: Any) -> str:
    """3 significant digits, integers as integers, thousands separated, never scientific for ordinary magnitudes."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, bool):
        return str(v)
    x = float(v)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}" if abs(x) >= 10_000 else str(int(x))
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1e-4:
        return f"{x:.3g}"
    return f"{x:.2e}"


def clean_text(text: Any) -> str:
    """A model's answer as a reader should see it: escaped newlines made real, special tokens and HTML tags removed,
    entities decoded, runs of blank lines shortened."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    s = str(text).replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\t", " ")
    s = SPECIAL_TOKENS.sub("", s)
    s = HTML_TAG.sub("", s)
    s = html.unescape(s)
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.strip()


def _cell(v: Any, text: bool, max_chars: int, na: str) -> str:
    if text:
        s = clean_text(v)
        if not s:
            return f"<td style='{TEXT_STYLE}'>{na}</td>"
        more = len(s) - max_chars
        if more > 0:
            s = s[:max_chars].rstrip() + f" … ({more} more characters)"
        return f"<td style='{TEXT_STYLE}'>{html.escape(s)}</td>"
    if v is pd.NA:
        return f"<td>{na}</td>"
    if isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_)):
        shown = fmt_number(v)
        return f"<td style='text-align: right; font-variant-numeric: tabular-nums'>{na if shown == '—' else shown}</td>"
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return f"<td>{na}</td>"
    return f"<td style='text-align: left'>{html.escape(str(v))}</td>"


class Table:
    """An HTML table for people; displays itself in a notebook (`_repr_html_`) and keeps its frame as `.frame`."""

    def __init__(self, frame: pd.DataFrame, text_cols: Iterable[str] = (), na: str = "—",
                 max_chars: int = MAX_CHARS, caption: str | None = None) -> None:
        self.frame, self.text_cols, self.na, self.max_chars = frame, set(text_cols), na, max_chars
        self.caption = caption

    def _repr_html_(self) -> str:
        df = self.frame
        head = "".join(f"<th style='text-align: left'>{html.escape(str(c))}</th>" for c in df.columns)
        rows = "".join("<tr>" + "".join(_cell(v, c in self.text_cols, self.max_chars, self.na)
                                        for c, v in zip(df.columns, r)) + "</tr>"
                       for r in df.itertuples(index=False, name=None))
        cap = f"<caption style='caption-side: bottom; text-align: left'>{html.escape(self.caption)}</caption>" \
            if self.caption else ""
        return f"<table class='vl-table'>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def __repr__(self) -> str:
        return self.frame.to_string()


def table(frame: pd.DataFrame, text_cols: Iterable[str] = (), index: bool = False, **kw: Any) -> Table:
    """`frame` for people: numbers formatted, text columns cleaned and wrapped, empty cells "—"."""
    if index:
        frame = frame.reset_index()
    return Table(frame, text_cols, **kw)


def warning(text: str) -> Any:
    """A warning in words, boxed so a reader does not skim past it (plain text outside a notebook)."""
    from IPython.display import HTML

    return HTML(f"<p class='vl-little' style='background: #fff6e0; border-left: 4px solid #e0a100; "
                f"padding: 6px 10px'><b>Read with care.</b> {html.escape(text)}</p>")


def stability_warning(summary: pd.DataFrame, share_limit: float = 0.2) -> str | None:
    """In words, when the taxonomy's K changed in more than `share_limit` of the resamples (the subdimensions are
    then not a stable finding of this data)."""
    values = dict(zip(summary["metric"], summary["value"]))
    share = values.get("share of resamples with a different K")
    n = values.get("resamples")
    if share is None or (isinstance(share, float) and math.isnan(share)) or float(share) <= share_limit:
        return None
    return (f"The number of subdimensions K changed in {float(share):.0%} of {n} resamples of the respondents "
            f"(K counts {values.get('K counts')}, K = {values.get('K (full data)')} on all data): the split into "
            "subdimensions is not stable at this sample size; more respondents or answers would be needed to rely "
            "on it.")


def thin_data_warning(n: int, what: str, minimum: int = 30) -> str | None:
    """In words, when a figure or table rests on fewer than `minimum` observations."""
    if n >= minimum:
        return None
    return f"Only {n} {what}: too few to read differences here as findings."


def answers_with_scores(picked: pd.DataFrame, scores: pd.DataFrame | None, columns: Sequence[str],
                        text_col: str = "completion", top: int = 3) -> pd.DataFrame:
    """`picked` (one row per shown answer, with its `key`) plus a column with the answer's `top` (sub)dimension scores
    (0-6) furthest from the neutral 3 on the leading value system, when the run has scored it."""
    out = picked.copy()
    if scores is None or scores.empty or "key" not in out.columns:
        return out
    sc = scores.drop_duplicates("key").set_index("key")
    cols = [c for c in columns if c in sc.columns]

    def line(key: str) -> str:
        if key not in sc.index or not cols:
            return "not scored"
        row = sc.loc[key, cols].astype(float).dropna()
        if row.empty:
            return "not scored"
        off = row[row != NEUTRAL]
        if off.empty:
            return f"all {len(row)} (sub)dimensions scored {fmt_number(NEUTRAL)} (neutral)"
        off = off.reindex((off - NEUTRAL).abs().sort_values(ascending=False).index).head(top)
        rest = len(row) - len(off)
        return ", ".join(f"{c} {fmt_number(v)}" for c, v in off.items()) + (f"; {rest} others" if rest else "")

    out[SCORES_COLUMN] = [line(k) for k in out["key"]]
    return out


def install_number_format() -> None:
    """Every DataFrame a notebook shows: 3 significant digits, integers as integers (pandas' float format)."""
    pd.set_option("display.float_format", fmt_number)


def projective_table(completions: pd.DataFrame, scores_path: Any = None, n_stems: int = 8, seed: int = 0) -> Table:
    """Paper Table 1: for a few stems, one completion per training type side by side (the same pick as
    `projective.side_by_side`), each with its highest scores on the leading value system when scores.parquet
    exists (a rerun or an exploration after step 06), so a reader sees what the scorer made of it."""
    from pathlib import Path

    df = completions[completions["completion"].notna()]
    stems = pd.Series(df["stem_id"].unique())
    chosen = sorted(stems.sample(min(n_stems, len(stems)), random_state=seed))
    picked = (df[df["stem_id"].isin(chosen)].sample(frac=1.0, random_state=seed)
              .drop_duplicates(["stem_id", "training"]))
    note = "no scores yet (step 06 scores the completions)"
    if scores_path is not None and Path(scores_path).exists():
        sc = pd.read_parquet(scores_path)
        if "system" in sc.columns and len(sc):
            lead = sc["system"].iloc[0]
            sc = sc[sc["system"] == lead]
            note = (f"in brackets, its scores on the value system '{lead}' furthest from the neutral 3 "
                    "(0-6; the rest are 3)")
        attrs = set(completions.columns) | {"system"}
        cols = [c for c in sc.columns if c not in attrs and pd.api.types.is_numeric_dtype(sc[c]) and sc[c].notna().any()]
        picked = answers_with_scores(picked, sc, cols)
    if SCORES_COLUMN in picked.columns:
        picked = picked.assign(completion=[f"{clean_text(t)}\n[{s}]" for t, s in
                                           zip(picked["completion"], picked[SCORES_COLUMN])])
    wide = picked.pivot(index=["stem_id", "stem"], columns="training", values="completion")
    wide = wide.reset_index(level="stem_id", drop=True).reset_index()
    wide.columns.name = None
    n = len(picked)
    return Table(wide, text_cols=[c for c in wide.columns if c != "stem"],
                 caption=f"One completion per training type for {len(chosen)} stems ({n} completions shown of "
                         f"{len(df)}); {note}.")
