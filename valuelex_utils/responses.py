"""Who answers (`respondents`: every model x decoding config of a study) and, from their stored raw answers, tidy
tables; shared by elicitation (step 01) and the projective test (step 05).

The store keeps raw answers; these helpers only read them, one row per request, with the respondent's attributes
(family, size, training, config) that the analyses group by.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .llm.records import append_tally, response_text
from .llm.router import router_for
from .llm.store import ResponseStore
from .params import DecodingConfig, Params, Respondent


@dataclass(frozen=True)
class RespondentConfig:
    """One AI respondent p_i with configuration θ_k."""

    respondent: Respondent
    config: DecodingConfig

    @property
    def id(self) -> str:
        return f"{self.respondent.label}@{self.config.label()}"


def respondents(params: Params) -> list[RespondentConfig]:
    """All (model, config) pairs of a study, in params order."""
    return [RespondentConfig(r, c) for r in params.respondents for c in r.configs]


def respondent_table(params: Params) -> pd.DataFrame:
    """One row per respondent (model x config) with the attributes of paper Table 2."""
    rows = []
    for rc in respondents(params):
        r = rc.respondent
        rows.append({"respondent": rc.id, "model": r.model, "label": r.label, "family": r.family, "size": r.size,
                     "training": r.training, "config": rc.config.label(), "temperature": rc.config.temperature,
                     "top_p": rc.config.top_p})
    return pd.DataFrame(rows)


async def answer_all(requests: Sequence[Any], params: Params, run_dir: str | Path, store_path: str | Path, step: str,
                     desc: str, progress: bool = True) -> tuple[list[dict[str, Any]], Any, float]:
    """Answer every request through the batch API into the store; log the tally in calls.jsonl.

    Returns the records (aligned with requests), the tally and the start time (records older than it were cached).
    """
    from .llm.batch import BatchRunner  # LiteLLM, seconds to import: deferred on purpose, as `elicitation` imports this

    started = time.time()
    runner = BatchRunner(ResponseStore(store_path), concurrency=params.concurrency, retries=params.retries,
                         timeout=params.timeout, router=router_for(params), processes=params.processes)
    try:
        records = await runner.arun(requests, progress=progress, desc=desc)
    finally:
        append_tally(run_dir, step, runner.tally, time.time() - started)
    return records, runner.tally, started


def answers_frame(params: Params, requests: Sequence[Any], records: Sequence[dict[str, Any]], started: float,
                  id_column: str) -> pd.DataFrame:
    """One row per request: respondent attributes, the item id (`prompt_id` or `stem_id`), sample, text, tokens."""
    people = respondent_table(params).set_index("respondent")
    rows = []
    for req, rec in zip(requests, records):
        who = people.loc[req.meta["respondent"]]
        tokens = rec.get("tokens") or {}
        rows.append({
            "respondent": req.meta["respondent"], "model": req.model, "family": who["family"], "size": who["size"],
            "training": who["training"], "config": who["config"], "temperature": who["temperature"],
            "top_p": who["top_p"], id_column: req.meta[id_column], "sample": req.sample, "key": req.key,
            "text": response_text(rec) if rec.get("response") is not None else None,
            "error": rec.get("error"), "prompt_tokens": tokens.get("prompt"),
            "completion_tokens": tokens.get("completion"), "latency": rec.get("latency"),
            "cached": bool(rec.get("time", started) < started),
        })
    return pd.DataFrame(rows)
