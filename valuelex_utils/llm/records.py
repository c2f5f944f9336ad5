"""What a call is and what it leaves: the request (`LLMRequest`, hashed into the store key), the per-model tally of a
batch, the failure that stops a run (`ProviderError`), and the answer text of a stored record.

No LiteLLM here: the steps build requests and read records without paying for its import.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import UserError
from .store import answer_text, request_key

@dataclass
class LLMRequest:
    """One call: what is hashed (model, messages, decoding params, sample) and what is only carried along (meta,
    deployment). `deployment` holds endpoint details such as `api_base`; keys are read from the environment at call
    time and never stored."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    sample: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    deployment: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return request_key(self.model, self.messages, self.params, self.sample)


@dataclass
class ModelTally:
    calls: int = 0
    cached: int = 0
    errors: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429s with Retry-After waited out (not counted as retries; see ratelimit)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


@dataclass
class Tally:
    """Calls, cache hits, retries and tokens per model for one batch; appended to `calls.jsonl` of the run."""

    per_model: dict[str, ModelTally] = field(default_factory=dict)

    def of(self, model: str) -> ModelTally:
        return self.per_model.setdefault(model, ModelTally())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {m: vars(t).copy() for m, t in self.per_model.items()}

    def merge(self, other: dict[str, dict[str, Any]]) -> None:
        """Add counts in `to_dict` form (a worker process's tally) to this one."""
        for model, counts in other.items():
            mine = self.of(model)
            for name, value in counts.items():
                setattr(mine, name, getattr(mine, name) + value)

    def frame(self) -> Any:
        """One row per model, counts as integers (for notebooks)."""
        df = pd.DataFrame(self.to_dict()).T
        ints = [c for c in df.columns if c not in ("cost_usd", "seconds")]
        return df.astype({c: int for c in ints}).round({"seconds": 1, "cost_usd": 4})

    def total(self, attr: str) -> float:
        return sum(getattr(t, attr) for t in self.per_model.values())


class ProviderError(UserError):
    """A failure that retrying cannot fix (bad key, unknown model): stop with one line naming the model."""


def response_text(record: dict[str, Any]) -> str:
    """The answer text of a stored record (chat `message.content`, or `text` for completion endpoints); "" when the
    record holds no answer (the store never hands such a record out as answered: `store.answer_text`)."""
    return answer_text(record.get("response")) or ""


def append_tally(run_dir: str | Path, step: str, tally: Tally, seconds: float) -> None:
    """Record one batch's counts in `<run_dir>/calls.jsonl`, which the manifest sums per step."""
    path = Path(run_dir) / "calls.jsonl"
    line = {"step": step, "time": time.time(), "seconds": round(seconds, 3), "models": tally.to_dict()}
    data = (json.dumps(line) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut by a kill: fence it off, keep this one whole
            data = b"\n" + data
        os.write(fd, data)
    finally:
        os.close(fd)


def unique_requests(requests: Iterable[LLMRequest]) -> list[LLMRequest]:
    """Drop requests whose key repeats (same prompt asked twice by two code paths)."""
    seen: set[str] = set()
    out = []
    for r in requests:
        if r.key not in seen:
            seen.add(r.key)
            out.append(r)
    return out
