"""The scorer registry: phi(completion, value (sub)dimension) -> 0..6 behind one interface.

A scorer is a `Scorer` subclass decorated with `@register`; `score_with_reliability` (the one path behind `valuelex
score` and step 06) finds it by its `name` and asks it for its scores and for its own reliability report. Adding a
scorer = one module with one registered class, imported in `scoring/__init__.py`.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import UserError

INPUT_COLUMNS = ("id", "stem", "completion")


def normalise(scores: pd.DataFrame | pd.Series | np.ndarray | float, columns: Sequence[str] | None = None) -> Any:
    """Map 0..6 scores to [0, 1] (s / 6) as in Eq. 4 of the paper; NaN stays NaN. With a DataFrame, only `columns`
    (default: every numeric column except `id`) are divided."""
    if isinstance(scores, pd.DataFrame):
        out = scores.copy()
        cols = list(columns) if columns is not None else [
            c for c in out.columns if c != "id" and pd.api.types.is_numeric_dtype(out[c])
        ]
        for c in cols:
            out[c] = pd.to_numeric(out[c], errors="coerce") / 6.0
        return out
    return scores / 6.0


class Scorer(ABC):
    """phi: (completion, value (sub)dimension) -> 0..6. `score` takes a frame with `id, stem, completion` and returns
    `id` + one column per dimension and subdimension (system order); NaN marks a missing score.
    `measure_reliability` returns the scorer's own `reliability.json` report for one scoring run."""

    name = "base"
    #: whether the scorer is a judge model (`--judge MODEL` applies to it)
    takes_judge = False

    @abstractmethod
    def score(self, df: pd.DataFrame, system: Any) -> pd.DataFrame: ...

    @abstractmethod
    def measure_reliability(self, df: pd.DataFrame, system: Any, scores: pd.DataFrame, *, annotated_sample: int,
                            retest_frac: float, extra: Mapping[str, Any]) -> dict[str, Any]: ...

    @classmethod
    def for_request(cls, *, judge: str | None = None, store: Any = None,
                    completion_fn: Callable[..., Any] | None = None, caller: Any = None, seed: int = 0,
                    judge_max_tokens: int = 700) -> "Scorer":
        """The scorer for one `score_with_reliability` request (a scorer takes what applies to it)."""
        return cls()

    @classmethod
    def file_caller(cls, judge: str | None, cache: str | os.PathLike[str] | None, out_path: Path,
                    deployment: Mapping[str, Any] | None, completion_fn: Callable[..., Any] | None) -> Any:
        """The LLM caller `valuelex score` gives a judge (cached beside the output); None for a scorer that calls
        no model."""
        return None


SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    SCORERS[cls.name] = cls
    return cls


def scorer_class(name: str, judge: str | None = None) -> type[Scorer]:
    """The registered scorer `name`; UserError for an unknown name or a judge given to a scorer that takes none."""
    try:
        cls = SCORERS[name]
    except KeyError:
        raise UserError(f"unknown scorer {name!r}: use one of {', '.join(sorted(SCORERS))}") from None
    if judge is not None and not cls.takes_judge:
        judges = sorted(n for n, c in SCORERS.items() if c.takes_judge)
        raise UserError(f"--judge only applies to --scorer {' or '.join(judges)}")
    return cls


def get_scorer(name: str, **kwargs: Any) -> Scorer:
    """A scorer by registry name (`embedding`, `llm`)."""
    return scorer_class(name)(**kwargs)


def check_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The `id, stem, completion` columns of `df`, stems and completions as text (a missing one is empty)."""
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"completions need the columns {', '.join(INPUT_COLUMNS)}; missing: {', '.join(missing)}")
    out = df[list(INPUT_COLUMNS)].copy()
    out["stem"] = out["stem"].fillna("").astype(str)
    out["completion"] = out["completion"].where(out["completion"].notna(), "").astype(str)
    return out.reset_index(drop=True)
