"""The CLI contract `valuelex score IN.csv --system S [--scorer] [--judge] -o OUT.csv` and the one scoring path behind
it and step 06: `score_with_reliability` looks the scorer up in the registry, scores, and asks the scorer for its own
reliability report, so every scoring run reports its reliability."""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from ..errors import UserError
from ..rundir import atomic_path
from ..systems import load_system
from . import reliability as R
from .registry import INPUT_COLUMNS, scorer_class


def read_completions(in_csv: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate an input CSV (`id, stem, completion`); UserError on any problem."""
    path = Path(in_csv)
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    if not text.strip():
        raise UserError(f"{path}: the CSV is empty")
    try:
        df = pd.read_csv(io.StringIO(text), dtype={"id": str}, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise UserError(f"{path}: not a readable CSV ({str(exc).splitlines()[0][:120]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; the input needs id, stem, completion")
    if len(df) == 0:
        raise UserError(f"{path}: the CSV has a header but no rows")
    if (df["id"].astype(str).str.strip() == "").any():
        raise UserError(f"{path}: every row needs an id")
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise UserError(f"{path}: duplicate id(s) {', '.join(map(str, dup[:5]))}")
    return df


def score_with_reliability(df: pd.DataFrame, system: Any, scorer: str = "embedding", judge: str | None = None, *,
                           store: Any = None, completion_fn: Callable[..., Any] | None = None,
                           annotated_sample: int = 30, retest_frac: float = 0.1, seed: int = 0,
                           extra: Mapping[str, Any] | None = None, caller: Any = None,
                           judge_max_tokens: int = 700) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score `df` (id, stem, completion) with the registered scorer `scorer` and measure its reliability: the one
    path behind `valuelex score` and step 06.

    A judge scorer (`llm`) calls through `caller` (a `roles.RoleCaller`: the run's store and tally, or the CLI's
    cache), else through a `RoleCaller` on `judge` and `store`; `annotated_sample` and `retest_frac` size its
    reliability checks. What each scorer reports is in its `measure_reliability`."""
    sysm = load_system(system)
    cls = scorer_class(scorer, judge)
    sc = cls.for_request(judge=judge, store=store, completion_fn=completion_fn, caller=caller, seed=seed,
                         judge_max_tokens=judge_max_tokens)
    scores = sc.score(df, sysm)
    report = sc.measure_reliability(df, sysm, scores, annotated_sample=annotated_sample, retest_frac=retest_frac,
                                    extra=dict(extra or {}))
    return scores, report


def score_file(in_csv: str | os.PathLike[str], system: str = "valuelex", scorer: str = "embedding",
               judge: str | None = None, out_csv: str | os.PathLike[str] = "scores.csv", *, store: Any = None,
               completion_fn: Callable[..., Any] | None = None, annotated_sample: int = 30,
               retest_frac: float = 0.1, cache: str | os.PathLike[str] | None = None,
               deployment: Mapping[str, Any] | None = None) -> Path:
    """`valuelex score`: score `in_csv` and write `out_csv` (id + one column per dimension and subdimension, 0..6)
    and `reliability.json` beside it. Everything is validated before anything is written.

    With `--scorer llm` the judge's answers are cached in `cache` (default `valuelex-cache/` beside the output, or
    `store` when given): rerunning the command makes no call, and a killed run resumes. `deployment` (api_base,
    api_key_env) says where the judge is served."""
    sysm = load_system(system)
    cls = scorer_class(scorer, judge)
    df = read_completions(in_csv)
    out_path = Path(out_csv)
    if out_path.exists() and out_path.is_dir():
        raise UserError(f"output {out_path} is a directory")
    caller = cls.file_caller(judge, cache, out_path, deployment, completion_fn) if store is None else None
    scores, report = score_with_reliability(
        df, sysm, scorer, judge, store=store, completion_fn=completion_fn, annotated_sample=annotated_sample,
        retest_frac=retest_frac, extra={"input": str(Path(in_csv)), "output": str(out_path)}, caller=caller)
    if caller is not None:
        print(caller.summary(), file=sys.stderr)
    with atomic_path(out_path) as tmp:
        scores.to_csv(tmp, index=False)
    R.write_report(report, out_path.parent / "reliability.json")
    return out_path
