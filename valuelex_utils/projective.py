"""The projective sentence-completion test (paper Sec. 3.3, Alg. 2 lines 1-4, appendix A.2).

Each respondent completes each of the 50 Rotter-style stems M times. A chat model is asked "Complete the sentence:
<stem>"; a base model gets the bare stem (without the ellipsis) and simply continues it, which is why the test suits
vanilla pretrained models too.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .elicitation import deployment_of, sample_seed
from .llm.records import LLMRequest
from .params import Params, Respondent
from .prompts import stems
from .responses import answer_all, answers_frame, respondents
from .rundir import RunDir, atomic_path


def bare_stem(stem: str) -> str:
    """'I like...' -> 'I like': what a base model continues."""
    return stem.rstrip(". ").rstrip("…").rstrip()


def stem_messages(respondent: Respondent, stem: str, chat_frame: str) -> list[dict[str, str]]:
    if respondent.is_chat:
        return [{"role": "user", "content": chat_frame.format(stem=stem)}]
    return [{"role": "user", "content": bare_stem(stem)}]


def build_requests(params: Params) -> list[Any]:
    """Every completion call of the projective test, deterministic in order and seeds."""
    p = params.projective
    out = []
    for rc in respondents(params):
        for sid, stem in stems(p.stems).items():
            messages = stem_messages(rc.respondent, stem, p.chat_frame)
            for sample in range(p.samples):
                decoding = {"temperature": rc.config.temperature, "top_p": rc.config.top_p,
                            "max_tokens": p.max_tokens, "seed": sample_seed(params.seed, sample)}
                if not rc.respondent.is_chat:
                    decoding["stop"] = ["\n\n"]
                out.append(LLMRequest(model=rc.respondent.model, messages=messages, params=decoding, sample=sample,
                                      meta={"respondent": rc.id, "stem_id": sid}, deployment=deployment_of(rc.respondent)))
    return out


async def run_projective(params: Params, run_dir: str, progress: bool = True) -> tuple[Any, Any]:
    """Step 05: complete every stem into `completions.jsonl` (raw) and `completions.parquet`."""
    rd = RunDir.at(run_dir)
    requests = build_requests(params)
    records, tally, started = await answer_all(requests, params, rd.root, rd.completions_raw, "05_projective",
                                               "sentence completions", progress)
    table = answers_frame(params, requests, records, started, "stem_id")
    table.insert(table.columns.get_loc("stem_id") + 1, "stem", table["stem_id"].map(stems()))
    table = table.rename(columns={"text": "completion"})
    with atomic_path(rd.completions) as tmp:
        table.to_parquet(tmp, index=False)
    return table, tally


def side_by_side(completions: Any, n_stems: int = 8, seed: int = 0) -> Any:
    """Paper Table 1: for a few stems, one completion per training type next to each other."""
    df = completions[completions["completion"].notna()]
    chosen = sorted(pd.Series(df["stem_id"].unique()).sample(min(n_stems, df["stem_id"].nunique()),
                                                                random_state=seed))
    picked = (df[df["stem_id"].isin(chosen)].sample(frac=1.0, random_state=seed)
              .drop_duplicates(["stem_id", "training"]))
    table = picked.pivot(index=["stem_id", "stem"], columns="training", values="completion")
    return table.reset_index(level="stem_id", drop=True)
