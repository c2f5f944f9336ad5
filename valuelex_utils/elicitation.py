"""Value elicitation (paper Sec. 3.2 step 1, Eq. 1, Alg. 1 lines 1-4, appendix A.1).

Every respondent (model x decoding config) answers each of the 15 elicitation prompts `samples` times. Chat models
(instruction-tuned, aligned) get the prompt as a user message; pretrained base models cannot follow instructions, so
they get a plain-text completion frame that they continue (`elicitation.base_frame` in the params).
"""
from __future__ import annotations

from typing import Any

from .llm.records import LLMRequest
from .params import Params, Respondent
from .prompts import base_frames, elicitation_prompts
from .responses import answer_all, answers_frame, respondents
from .rundir import RunDir, atomic_path


def frame_messages(respondent: Respondent, prompt_id: int, prompt: str, base_frame: str) -> list[dict[str, str]]:
    """The chat message for a chat model; the completion frame (as one plain user turn) for a base model.

    The local provider and LiteLLM's text-completion providers send a base model the plain text of the messages.
    """
    if respondent.is_chat:
        return [{"role": "user", "content": prompt}]
    text = base_frames()[prompt_id] if base_frame == "auto" else base_frame.format(prompt=prompt)
    return [{"role": "user", "content": text}]


def sample_seed(run_seed: int, sample: int) -> int:
    """Sample m of every request is decoded with seed run_seed + m: reruns are reproducible, samples differ."""
    return run_seed + sample


def deployment_of(respondent: Respondent) -> dict[str, Any]:
    """Endpoint details passed to LiteLLM but never hashed or stored (the key itself stays in the environment)."""
    bases = respondent.api_bases
    return {"api_base": bases[0] if len(bases) == 1 else None, "api_key_env": respondent.api_key_env,
            **{k: v for k, v in (("rpm", respondent.rpm), ("tpm", respondent.tpm)) if v}}  # rate limits (ratelimit)


def build_requests(params: Params) -> list[LLMRequest]:
    """Every elicitation call of a study, deterministic in order and seeds."""
    e = params.elicitation
    prompts = elicitation_prompts(e.prompts)
    requests = []
    for rc in respondents(params):
        for pid, prompt in prompts.items():
            messages = frame_messages(rc.respondent, pid, prompt, e.base_frame)
            for sample in range(e.samples):
                decoding = {"temperature": rc.config.temperature, "top_p": rc.config.top_p,
                            "max_tokens": e.max_tokens, "seed": sample_seed(params.seed, sample)}
                requests.append(LLMRequest(
                    model=rc.respondent.model, messages=messages, params=decoding, sample=sample,
                    meta={"respondent": rc.id, "prompt_id": pid}, deployment=deployment_of(rc.respondent)))
    return requests


async def run_elicitation(params: Params, run_dir: str, progress: bool = True) -> tuple["pd.DataFrame", Any]:  # noqa: F821
    """Step 01: ask every respondent every prompt `samples` times (cached answers are reused) and write
    `elicitation.parquet`. Returns the table and the call tally."""
    rd = RunDir.at(run_dir)
    requests = build_requests(params)
    records, tally, started = await answer_all(requests, params, rd.root, rd.responses, "01_elicit", "elicitation",
                                               progress)
    table = answers_frame(params, requests, records, started, "prompt_id")
    with atomic_path(rd.elicitation) as tmp:
        table.to_parquet(tmp, index=False)
    return table, tally
