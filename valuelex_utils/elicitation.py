"""Value elicitation (paper Sec. 3.2 step 1, Eq. 1, Alg. 1 lines 1-4, appendix A.1).

Every respondent (model x decoding config) answers each of the 15 elicitation prompts `samples` times. Chat models
(instruction-tuned, aligned) get the prompt as a user message; pretrained base models cannot follow instructions, so
they get a plain-text completion frame that they continue (`elicitation.base_frame` in the params).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

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


@lru_cache(maxsize=None)
def _package_yaml(name: str) -> list[dict[str, Any]]:
    text = resources.files("valuelex_utils.data").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def elicitation_prompts(selection: str | list[int] = "all") -> dict[int, str]:
    """The 15 prompts of appendix A.1 by id (or the selected ids)."""
    prompts = {int(p["id"]): p["prompt"] for p in _package_yaml("elicitation_prompts.yaml")}
    if selection == "all":
        return prompts
    unknown = sorted(set(selection) - set(prompts))
    if unknown:
        from .errors import UserError

        raise UserError(f"elicitation.prompts: unknown prompt ids {unknown} (valid: 1-{len(prompts)})")
    return {i: prompts[i] for i in selection}


def base_frames() -> dict[int, str]:
    """First-person completion frames for base models, one per prompt id (`elicitation_frames.yaml`)."""
    return {int(f["id"]): f["frame"] for f in _package_yaml("elicitation_frames.yaml")}


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


def build_requests(params: Params) -> list["LLMRequest"]:  # noqa: F821 - imported lazily (litellm is slow to import)
    """Every elicitation call of a study, deterministic in order and seeds."""
    from .llm import LLMRequest

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
    from .responses import answer_all, answers_frame
    from .rundir import RunDir, atomic_path

    rd = RunDir.at(run_dir)
    requests = build_requests(params)
    records, tally, started = await answer_all(requests, params, rd.root, rd.responses, "01_elicit", "elicitation",
                                               progress)
    table = answers_frame(params, requests, records, started, "prompt_id")
    with atomic_path(rd.elicitation) as tmp:
        table.to_parquet(tmp, index=False)
    return table, tally
