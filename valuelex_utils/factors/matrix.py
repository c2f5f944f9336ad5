"""Loading and validating the respondent x word count matrix (input of step 3)."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from valuelex_utils.errors import UserError

from .options import _NOTES_ATTR


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


def _numeric_columns(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Every column as float, or a `UserError` naming the first column with a missing or non-numeric value."""
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
    return pd.DataFrame(num, index=df.index)


def _validate_counts(df: pd.DataFrame, source: str = "matrix", allow_negative: bool = False) -> pd.DataFrame:
    """Check counts (numeric, finite, >= 0, >= 3 x 3) and drop zero-variance words with a note; used by every entry
    point so a DataFrame handed over by a notebook gets the same checks as a CSV."""
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"{source}: expected a pandas DataFrame (respondents x words)")
    notes = list(df.attrs.get(_NOTES_ATTR, []))
    names = [str(c) for c in df.columns]
    if len(set(names)) == len(names) and all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes):
        # already numbers (every resample of step 4): one conversion instead of one per column; NaN is caught below
        out = pd.DataFrame(df.to_numpy(float), index=df.index, columns=names)
        missing = np.isnan(out.to_numpy()).any(axis=0)
        if missing.any():
            raise UserError(f"{source}: word column {df.columns[np.argmax(missing)]!r} has a missing value; "
                            "counts must be numbers >= 0")
    else:
        out = _numeric_columns(df, source)
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
