"""One request of the batch engine, as the single-stream path would run it: the request captured from
llama-cpp-python's own completion code (`build_job`), its sampler chain, and the stop / max_tokens / EOG / UTF-8 rules
of `Llama._create_completion` replayed token by token (`SequenceState`). See `batching` for the engine around it."""
from __future__ import annotations

import random
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from .decoding import GenerationResult, UnsupportedRequest, messages_to_prompt
from .llama import Llama, llama_cpp


@dataclass(frozen=True)
class SamplingParams:
    """What `Llama._init_sampler` builds a sampler chain from."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    typical_p: float
    repeat_penalty: float
    frequency_penalty: float
    presence_penalty: float
    penalty_last_n: int
    seed: int


def build_sampler_chain(p: SamplingParams, n_vocab: int) -> Any:
    """A sampler chain identical to `Llama._init_sampler` (penalties first; greedy at temperature 0), so a seeded
    request samples the same tokens here as in the high-level API. The caller owns it (`llama_sampler_free`)."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = lambda s: llama_cpp.llama_sampler_chain_add(chain, s)  # noqa: E731 - local shorthand
    add(llama_cpp.llama_sampler_init_penalties(n_vocab, p.penalty_last_n, p.repeat_penalty, p.frequency_penalty,
                                               p.presence_penalty))
    if p.temperature < 0.0:
        add(llama_cpp.llama_sampler_init_dist(p.seed))
    elif p.temperature == 0.0:
        add(llama_cpp.llama_sampler_init_greedy())
    else:
        add(llama_cpp.llama_sampler_init_top_k(p.top_k))
        add(llama_cpp.llama_sampler_init_typical(p.typical_p, 1))
        add(llama_cpp.llama_sampler_init_top_p(p.top_p, 1))
        add(llama_cpp.llama_sampler_init_min_p(p.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(p.temperature))
        add(llama_cpp.llama_sampler_init_dist(p.seed))
    return chain


@dataclass
class Job:
    """One request ready to decode: tokens, limits and sampler settings exactly as `Llama._create_completion` would
    use them, and the future its caller waits on."""

    prompt_tokens: list[int]
    completion_prefix: list[int]  # [bos] for an empty prompt: a quirk of the single-stream path, kept for equality
    max_tokens: int
    stop: list[bytes]
    sampling: SamplingParams
    future: "Future[GenerationResult]" = field(default_factory=Future)
    cancelled: bool = False

    @property
    def kv_need(self) -> int:
        """KV cells the sequence may use: prompt, answer, and up to 3 extra tokens finishing a UTF-8 character."""
        return len(self.prompt_tokens) + len(self.completion_prefix) + self.max_tokens + 4


class _Captured(Exception):
    """Raised by `_Recorder` to stop llama-cpp-python right where generation would begin."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class _Recorder:
    """Stands in for a `Llama` while its own `create_chat_completion` / `create_completion` code runs, so the chat
    template, default system prompt, stop strings and sampling defaults are llama-cpp-python's, not a copy of them.
    Everything but the final generation call is delegated to the real model."""

    def __init__(self, llm: Llama) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, *args: Any, **kwargs: Any) -> Any:
        return Llama.create_completion(self, *args, **kwargs)  # type: ignore[arg-type]

    def _create_completion(self, **kwargs: Any) -> Any:
        raise _Captured(kwargs)


def capture_request(llm: Llama, messages: list[dict[str, Any]], chat: bool, **params: Any) -> dict[str, Any]:
    """The keyword arguments `Llama._create_completion` would receive for this request (chat or plain prompt)."""
    recorder = _Recorder(llm)
    try:
        if chat:
            Llama.create_chat_completion(recorder, messages=messages, **params)  # type: ignore[arg-type]
        else:
            Llama.create_completion(recorder, prompt=messages_to_prompt(messages), **params)  # type: ignore[arg-type]
    except _Captured as captured:
        return captured.kwargs
    raise UnsupportedRequest("llama-cpp-python did not reach generation")


_UNSUPPORTED = ("suffix", "logprobs", "grammar", "logits_processor", "logit_bias")


def completion_prompt_tokens(llm: Llama, prompt: str | list[int]) -> tuple[list[int], list[int]]:
    """Prompt tokens as `Llama._create_completion` builds them (BOS/EOS rules, special tokens parsed), and the
    completion's initial tokens ([bos] when the prompt is empty)."""
    if isinstance(prompt, list):
        return list(prompt), ([] if prompt else [llm.token_bos()])
    model = llm._model
    bos, cls, sep = llm.token_bos(), model.token_cls(), model.token_sep()
    bos_tokens = [cls if cls != -1 else bos]
    if not model.add_bos_token() or bos_tokens[:1] == [-1]:
        bos_tokens = []
    eos_tokens = [sep if sep != -1 else llm.token_eos()]
    if not model.add_eos_token() and sep == -1:
        eos_tokens = []
    body = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) if prompt != "" else []
    return bos_tokens + body + eos_tokens, ([] if len(prompt) > 0 else [bos])


def build_job(llm: Llama, messages: list[dict[str, Any]], chat: bool, **params: Any) -> Job:
    """Turn a request into a `Job`, or raise `UnsupportedRequest` when only the single-stream path reproduces it.

    Raises ValueError (like the single-stream path) when the prompt alone exceeds the model's context."""
    kw = capture_request(llm, messages, chat, **params)
    if kw.get("stream") or kw.get("echo") or kw.get("mirostat_mode") or any(kw.get(k) is not None for k in _UNSUPPORTED):
        raise UnsupportedRequest("stream/echo/mirostat/grammar/logprobs/logit_bias/suffix")
    prompt_tokens, prefix = completion_prompt_tokens(llm, kw["prompt"])
    n_ctx = llm.n_ctx()
    if len(prompt_tokens) >= n_ctx:
        raise ValueError(f"Requested tokens ({len(prompt_tokens)}) exceed context window of {n_ctx}")
    max_tokens = kw.get("max_tokens")
    if max_tokens is None or max_tokens <= 0:
        max_tokens = n_ctx - len(prompt_tokens)
    max_tokens = max_tokens if max_tokens + len(prompt_tokens) < n_ctx else n_ctx - len(prompt_tokens)
    stop = kw.get("stop") or []
    stop = stop if isinstance(stop, list) else [stop]
    seed = kw.get("seed")
    seed = seed if seed is not None else random.Random(llm._seed).randint(0, 2**32)
    sampling = SamplingParams(
        temperature=float(kw.get("temperature", 0.8)), top_p=float(kw.get("top_p", 0.95)),
        top_k=int(kw.get("top_k", 40)), min_p=float(kw.get("min_p", 0.05)), typical_p=float(kw.get("typical_p", 1.0)),
        repeat_penalty=float(kw.get("repeat_penalty", 1.0)), frequency_penalty=float(kw.get("frequency_penalty", 0.0)),
        presence_penalty=float(kw.get("presence_penalty", 0.0)), penalty_last_n=int(llm.last_n_tokens_size),
        seed=int(seed) & 0xFFFFFFFF,
    )
    return Job(prompt_tokens, prefix, int(max_tokens), [s.encode("utf-8") for s in stop], sampling)


# -- one sequence: the stop rules of Llama._create_completion, token by token ------------------------------------------
class SequenceState:
    """Replays the per-token loop of `Llama._create_completion` (EOG, UTF-8 completion, stop strings, max_tokens), so
    text, `finish_reason` and token counts equal the single-stream answer. Pure Python: no llama context needed."""

    def __init__(self, job: Job, bos: int, is_eog: Callable[[int], bool], piece: Callable[[int], bytes]) -> None:
        self.job = job
        self._bos = bos
        self._is_eog = is_eog
        self._piece = piece
        self.tokens: list[int] = list(job.completion_prefix)
        self._raw = bytearray(b"".join(piece(t) for t in self.tokens))
        self._multibyte_fix = 0
        self.result: GenerationResult | None = None

    def _text(self) -> bytes:
        """`detokenize(completion_tokens)`: pieces joined, a leading space dropped after BOS."""
        raw = bytes(self._raw)
        return raw[1:] if self.tokens and self.tokens[0] == self._bos and raw[:1] == b" " else raw

    def _finish(self, text: bytes, reason: str) -> bool:
        self.result = GenerationResult(text.decode("utf-8", errors="ignore"), len(self.job.prompt_tokens),
                                       len(self.tokens), reason)
        return True

    def accept(self, token: int) -> bool:
        """Take one sampled token; True when the answer is complete (then `result` is set)."""
        if self._is_eog(token):
            return self._finish(self._text(), "stop")
        self.tokens.append(token)
        self._raw += self._piece(token)
        all_text = self._text()
        for k, char in enumerate(all_text[-3:]):
            k = 3 - k
            for num, pattern in ((2, 192), (3, 224), (4, 240)):
                if num > k and pattern & char == pattern:
                    self._multibyte_fix = num - k
        if self._multibyte_fix > 0:
            self._multibyte_fix -= 1
            return False
        hits = [s for s in self.job.stop if s in all_text]
        if hits:
            return self._finish(all_text[: all_text.index(hits[0])], "stop")
        if len(self.tokens) >= self.job.max_tokens:
            return self._finish(all_text, "length")
        return False

    def force_finish(self) -> GenerationResult:
        """End at the slot's KV limit (only reachable through the UTF-8 overshoot; counted as 'length')."""
        self._finish(self._text(), "length")
        assert self.result is not None
        return self.result
