"""Continuous batching for the embedded GGUF models: many concurrent requests decoded together.

Why: an offline run spends most of its time generating short answers from two tiny models, and the single-stream path
of llama-cpp-python decodes one sequence at a time, reading every weight once per token. One `llama_decode` over many
sequences shares each weight read, so a batch of 16-32 answers decodes at about 2x the tokens per second.

How:
- A `BatchEngine` per model owns one or more *lanes*. A lane is one llama context (on the model the single-stream `Llama`
  already loaded, so weights are shared) with `n_seq_max` slots and separate KV streams per slot (`kv_unified=False`;
  a unified cache halved the speed), plus one scheduler thread.
- Continuous batching: each step decodes the next token of every running sequence and, in the same `llama_decode`,
  the whole prompt of a waiting request that got a free slot (logits only on the prompt's last token). A finished
  sequence frees its slot with `llama_memory_seq_rm` at once, so a waiting request never waits for the whole batch.
- Callers see the single-stream semantics: the request is built by llama-cpp-python's own `create_chat_completion` /
  `create_completion` code (chat template incl. its default system prompt, stop strings, sampling defaults), captured
  just before generation; each sequence gets its own sampler chain, seeded per request and built like
  `Llama._init_sampler`, and the stop / max_tokens / EOG / UTF-8 rules of `Llama._create_completion` are replayed token
  by token. With the batch-invariant kernels the engine loads (see `embedded._batch_invariant_kernels`) and flash
  attention, a sequence's logits are bit-identical alone, in any batch and on the single-stream path, so a seeded
  request gets the same answer whoever shares its batch.
- llama.cpp puts only sequences with consecutive, increasing ids into one ubatch, so running sequences are kept on
  slots 0..n-1 (a sequence is moved into a gap when one finishes) and fed in slot order; one new prompt joins per step.
- Prompt prefixes are not computed twice: each lane keeps the KV of the last prompt it prefilled in one extra stream,
  and a new request starts from a copy of it (`llama_memory_seq_cp`) and prefills only what differs. The chat
  template's system prompt, and a prompt asked again for another sample, cost nothing after the first time, as in
  llama-cpp-python's own single-stream prefix reuse (which the raw single-stream path has too).
- Lanes share the cores through a `CpuBudget`: a lane decodes with `cores // busy lanes` threads, so one lane alone
  uses every core, and two busy lanes (two models, or two lanes of one model) run one thread each instead of thrashing
  ggml's spinning thread pool.
- One failing sequence does not take the batch down: per-sequence errors fail only that request, and a failed
  `llama_decode` is retried one sequence at a time to isolate the culprit.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import random
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


def _openmp_defaults() -> None:
    """Keep OpenMP from throttling ggml's thread barriers once several threads have run llama.cpp.

    Why: ggml runs its threads through libgomp, which gives every OS thread that starts a parallel region its own
    worker pool. Once the pools of the batch lanes and of the single-stream path together outnumber the cores,
    libgomp cuts spin-waiting to almost nothing and every one of the hundreds of barriers per token sleeps on a
    futex: a 2-thread single-stream decode fell from 120 to 65 tokens/s in a process that had run a batch.
    `OMP_WAIT_POLICY=ACTIVE` with libgomp's default spin budget (`GOMP_SPINCOUNT=300000`, about 3 ms) keeps the
    unthrottled behaviour (121 tokens/s) without burning idle cores (0% CPU when idle). libgomp reads these when it
    loads, i.e. at the first `import llama_cpp`, so this runs before it; a user's own settings win."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
        os.environ["GOMP_SPINCOUNT"] = "300000"


_openmp_defaults()

import llama_cpp  # noqa: E402 - after the OpenMP settings
from llama_cpp import Llama  # noqa: E402

from .embedded import GenerationResult  # noqa: E402


# -- configuration ---------------------------------------------------------------------------------------------------
def batching_enabled() -> bool:
    """`VALUELEX_BATCHING=0` keeps the single-stream path (one request at a time), e.g. to compare or debug."""
    return os.environ.get("VALUELEX_BATCHING", "1").strip().lower() not in ("0", "false", "no", "off")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class BatchConfig:
    """Shape of a model's batch engine; the defaults were chosen by measurement on these 2-core machines.

    Measured (tokens/s, 16 concurrent requests of 64 tokens, medians of 3; single stream about 60-120 here):
    SmolLM2 1 lane 152 (flash attention off) / 197 (on), 2 lanes 192 / 216; Gemma 1 lane 137 / 140, 2 lanes
    181 / 193. Two lanes of one thread each beat one lane of two threads (as two worker processes did in the
    issue's measurements) without the processes: the lanes share the loaded weights and release the GIL in
    llama.cpp. `slot_ctx` is the KV budget of one sequence (prompt + answer); longer requests run single-stream.
    """

    lanes: int = 2
    slots: int = 16  # per lane
    slot_ctx: int = 512
    n_ubatch: int = 512
    flash_attn: bool = True  # must match the single-stream `Llama` (EmbeddedEngine) for equal answers
    threads: int = 0  # 0 = every core (VALUELEX_THREADS), shared among busy lanes
    # Prompts prefilled per llama_decode: one, so that each step is at most two ubatches (one token of every running
    # sequence plus the new prompt's first, then the rest of that prompt alone) and running sequences keep decoding
    # while a burst of requests is admitted. (Without the batch-invariant kernels of `embedded`, a ubatch holding
    # several multi-token sequences also moved their logits by up to 1.2.)
    prompts_per_step: int = 1
    # A prompt reuses the lane's cached prefix when they share at least this many tokens (a copy of the cached KV
    # stream costs about as much as prefilling a few tokens).
    min_prefix_reuse: int = 4

    @classmethod
    def from_env(cls) -> "BatchConfig":
        """Overrides for measurement: VALUELEX_BATCH_LANES, _SLOTS (per lane), _CTX, _PROMPTS, _PREFIX (0: no reuse)."""
        base = cls()
        return cls(
            lanes=max(1, _env_int("VALUELEX_BATCH_LANES", base.lanes)),
            slots=max(1, _env_int("VALUELEX_BATCH_SLOTS", base.slots)),
            slot_ctx=max(64, _env_int("VALUELEX_BATCH_CTX", base.slot_ctx)),
            prompts_per_step=max(1, _env_int("VALUELEX_BATCH_PROMPTS", base.prompts_per_step)),
            min_prefix_reuse=_env_int("VALUELEX_BATCH_PREFIX", base.min_prefix_reuse),
        )

    @property
    def n_batch(self) -> int:
        """Room for one decode token per slot plus at least one whole prompt."""
        return self.slots + self.slot_ctx


# -- the request, as the single-stream path would run it --------------------------------------------------------------
class UnsupportedRequest(Exception):
    """A request the batch path does not reproduce (grammar, logprobs, mirostat, too long...): run it single-stream."""


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
            from .embedded import messages_to_prompt

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


# -- sharing the cores --------------------------------------------------------------------------------------------------
def _cpu_ticks() -> tuple[int, int, int] | None:
    """(all cores' ticks, idle ticks, this process's ticks) from /proc; None where /proc is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        with open("/proc/self/stat", encoding="ascii") as fh:
            own = fh.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields[:8]), fields[3] + fields[4], int(own[11]) + int(own[12])


class CpuBudget:
    """Splits the cores among lanes that have work: `total // busy` threads each (at least one).

    Why: one busy lane should use every core, but ggml's threads meet at spinning barriers hundreds of times per
    token, so a 2-thread decode that shares its cores with anything else collapses (measured here with other CPU work
    running: 1 thread 39 tok/s, 2 threads under 7). So two busy lanes run one thread each, and when other processes
    keep at least half a core busy (read from /proc once a second) every lane drops to one thread until they stop."""

    def __init__(self, total: int, watch_others: bool = True) -> None:
        self.total = max(1, total)
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._watch = watch_others and self.total > 1
        self._last: tuple[float, tuple[int, int, int] | None] = (time.monotonic(), _cpu_ticks())
        # until the first probe, trust the load average: starting a 2-thread decode on busy cores costs seconds
        self.contended = self._watch and os.getloadavg()[0] >= self.total

    def threads(self, lane_id: int, busy: bool) -> int:
        with self._lock:
            (self._busy.add if busy else self._busy.discard)(lane_id)
            if busy and self._watch:
                self._probe()
            return 1 if self.contended else max(1, self.total // max(1, len(self._busy)))

    def _probe(self) -> None:
        """Update `contended` from how many cores other processes used since the last probe (hysteresis 0.5/0.25)."""
        now = time.monotonic()
        if now - self._last[0] < 1.0:
            return
        ticks, (_, before) = _cpu_ticks(), self._last
        self._last = (now, ticks)
        if ticks is None or before is None or ticks[0] <= before[0]:
            return
        d_all, d_idle, d_own = (a - b for a, b in zip(ticks, before))
        per_core = d_all / (os.cpu_count() or 1)
        others = max(0.0, (d_all - d_idle - d_own) / per_core)
        self.contended = others >= (0.25 if self.contended else 0.5)


_BUDGET: CpuBudget | None = None
_BUDGET_LOCK = threading.Lock()


def cpu_budget() -> CpuBudget:
    """The process-wide budget (all models' lanes share the same cores)."""
    global _BUDGET
    with _BUDGET_LOCK:
        if _BUDGET is None:
            from .embedded import default_threads

            _BUDGET = CpuBudget(default_threads())
        return _BUDGET


# -- a lane: one context, many slots, one scheduler thread ---------------------------------------------------------------
class _Running:
    """A sequence occupying a slot: its sampler chain, position, and the token to feed next."""

    def __init__(self, job: Job, slot: int, chain: Any, state: SequenceState) -> None:
        self.job = job
        self.slot = slot
        self.chain = chain
        self.state = state
        self.n_past = 0
        self.pending: list[int] = list(job.prompt_tokens)


class Lane:
    """One llama context with `slots` sequences and its scheduler thread (continuous batching)."""

    _ids = 0

    def __init__(self, llm: Llama, config: BatchConfig, budget: CpuBudget, name: str) -> None:
        Lane._ids += 1
        self.id = Lane._ids
        self.config = config
        self.budget = budget
        self._llm = llm
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        self._bos = llm.token_bos()
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = (ctypes.c_char * 256)()
        self._threads = 0
        self.ctx = self._new_context(llm, config)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(config.n_batch, 0, 1)
        self.free_slots: list[int] = list(range(config.slots))
        self.running: list[_Running] = []
        self.waiting: deque[Job] = deque()
        self.cv = threading.Condition()
        self.stopping = False
        self.steps = 0
        self.moves = 0
        self.prefix_seq = config.slots  # the stream holding the KV of `prefix_tokens`; never decoded itself
        self.prefix_tokens: list[int] = []
        self.reused_tokens = 0
        self.prefilled_tokens = 0
        self.thread = threading.Thread(target=self._loop, name=f"valuelex-batch-{name}-{self.id}", daemon=True)
        self.thread.start()

    @staticmethod
    def _new_context(llm: Llama, config: BatchConfig) -> Any:
        """Separate KV streams per slot (`kv_unified=False`), every other setting as the single-stream `Llama`."""
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = (config.slots + 1) * config.slot_ctx  # + the prefix cache stream
        params.n_batch = config.n_batch
        params.n_ubatch = min(config.n_ubatch, config.n_batch)
        params.n_seq_max = config.slots + 1
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = max(1, config.threads or cpu_budget().total)
        params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if config.flash_attn
                                  else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not ctx:
            raise RuntimeError("llama_init_from_model failed for the batch context")
        return ctx

    # -- submission (any thread) --
    @property
    def load(self) -> int:
        return len(self.running) + len(self.waiting)

    def submit(self, job: Job) -> None:
        with self.cv:
            if self.stopping:
                raise RuntimeError("batch engine is closed")
            self.waiting.append(job)
            self.cv.notify()

    # -- the scheduler thread --
    def _loop(self) -> None:
        while True:
            with self.cv:
                while not self.stopping and not self.waiting and not self.running:
                    self.budget.threads(self.id, busy=False)
                    self.cv.wait()
                if self.stopping:
                    break
                self._admit_locked()
            try:
                self._step()
            except Exception as err:  # noqa: BLE001 - never let the thread die: fail what was in flight
                for run in list(self.running):
                    self._fail(run, err)
        self.budget.threads(self.id, busy=False)

    def _admit_locked(self) -> None:
        """Move waiting jobs into free slots while their prompts fit in this step's batch, at most
        `prompts_per_step` prompts at a time (see `BatchConfig`)."""
        room = self.config.n_batch - len(self.running)
        prompts = 0
        while self.waiting and self.free_slots and prompts < self.config.prompts_per_step:
            job = self.waiting[0]
            if len(job.prompt_tokens) > room:
                break
            self.waiting.popleft()
            if job.cancelled or not job.future.set_running_or_notify_cancel():
                continue
            try:
                slot = min(self.free_slots)
                run = _Running(job, slot, build_sampler_chain(job.sampling, self._n_vocab),
                               SequenceState(job, self._bos, self._is_eog, self._piece))
            except Exception as err:  # noqa: BLE001 - only this request fails
                job.future.set_exception(err)
                continue
            self.free_slots.remove(slot)
            llama_cpp.llama_memory_seq_rm(self.mem, run.slot, -1, -1)
            self._reuse_prefix(run)
            self.running.append(run)
            room -= len(run.pending)
            prompts += len(run.pending) > 1

    def _reuse_prefix(self, run: _Running) -> None:
        """Start `run` from a copy of the cached prefix stream when its prompt shares enough leading tokens.

        At least the prompt's last token is always decoded (its logits give the first answer token). The copy is
        performed by llama.cpp before the next decode, in the order copies were queued, so a prefix cached in the
        previous step is already complete."""
        prompt = run.pending
        shared = 0
        for a, b in zip(prompt[:-1], self.prefix_tokens):
            if a != b:
                break
            shared += 1
        if self.config.min_prefix_reuse <= 0 or shared < self.config.min_prefix_reuse:
            return
        llama_cpp.llama_memory_seq_cp(self.mem, self.prefix_seq, run.slot, -1, -1)
        llama_cpp.llama_memory_seq_rm(self.mem, run.slot, shared, -1)
        run.n_past = shared
        run.pending = prompt[shared:]
        self.reused_tokens += shared

    def _cache_prefix(self, run: _Running) -> None:
        """After `run`'s prompt is in its KV stream, make that stream the lane's cached prefix (unless the cache
        already holds this whole prompt)."""
        prompt = run.job.prompt_tokens
        if self.prefix_tokens[: len(prompt)] == prompt:
            return
        llama_cpp.llama_memory_seq_cp(self.mem, run.slot, self.prefix_seq, -1, -1)
        llama_cpp.llama_memory_seq_rm(self.mem, self.prefix_seq, len(prompt), -1)
        self.prefix_tokens = list(prompt)

    def _compact(self) -> None:
        """Keep the running sequences on slots 0..n-1: move the highest one into the lowest free slot.

        Why: with separate KV streams llama.cpp puts only sequences with consecutive increasing ids into one ubatch
        (`split_equal(sequential=true)`); a gap left by a finished sequence splits every later step into two graph
        runs, each reading all weights again. Moving a sequence copies its KV stream (`llama_memory_seq_cp`, a few MB)
        once; its tokens and positions stay the same, so its answer does not change."""
        with self.cv:
            while self.free_slots and self.running and min(self.free_slots) < max(r.slot for r in self.running):
                run = max(self.running, key=lambda r: r.slot)
                dst = min(self.free_slots)
                llama_cpp.llama_memory_seq_cp(self.mem, run.slot, dst, -1, -1)
                llama_cpp.llama_memory_seq_rm(self.mem, run.slot, -1, -1)
                self.free_slots.remove(dst)
                self.free_slots.append(run.slot)
                run.slot = dst
                self.moves += 1

    def _step(self) -> None:
        """One `llama_decode` over every running sequence (new prompts included), then one token sampled for each."""
        for r in [r for r in self.running if r.job.cancelled]:
            self._release(r)
        self._compact()
        runs = sorted(self.running, key=lambda r: r.slot)  # consecutive ids, ascending: one ubatch (see _compact)
        if not runs:
            return
        threads = self.budget.threads(self.id, busy=True)
        if threads != self._threads:
            llama_cpp.llama_set_n_threads(self.ctx, threads, threads)
            self._threads = threads
        outputs = self._fill(runs)
        rc = llama_cpp.llama_decode(self.ctx, self.batch)
        self.steps += 1
        if rc != 0:
            self._isolate(runs, rc)
            return
        for run, idx in zip(runs, outputs):
            self._advance(run, idx)

    def _fill(self, runs: Sequence[_Running]) -> list[int]:
        """Write the pending tokens of `runs` into the batch; returns each run's output row (its last token)."""
        b = self.batch
        n = 0
        outputs = []
        for run in runs:
            for i, tok in enumerate(run.pending):
                b.token[n] = tok
                b.pos[n] = run.n_past + i
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = run.slot
                b.logits[n] = 0
                n += 1
            b.logits[n - 1] = 1
            outputs.append(n - 1)
        b.n_tokens = n
        return outputs

    def _advance(self, run: _Running, idx: int) -> None:
        """Sample this sequence's next token and apply the stop rules; errors fail only this sequence."""
        try:
            token = llama_cpp.llama_sampler_sample(run.chain, self.ctx, idx)
            prefilled = run.n_past + len(run.pending) == len(run.job.prompt_tokens)
            if prefilled:
                self.prefilled_tokens += len(run.pending)
            run.n_past += len(run.pending)
            if prefilled and 0 < self.config.min_prefix_reuse < len(run.job.prompt_tokens):
                self._cache_prefix(run)
            if run.state.accept(token):
                self._complete(run, run.state.result)
            elif run.n_past + 1 >= self.config.slot_ctx:
                self._complete(run, run.state.force_finish())
            else:
                run.pending = [token]
        except Exception as err:  # noqa: BLE001 - isolate the failing sequence
            self._fail(run, err)

    def _isolate(self, runs: Sequence[_Running], rc: int) -> None:
        """A failed `llama_decode`: undo what it may have written, then decode each sequence alone so only the
        sequence that fails by itself is failed."""
        for run in runs:
            llama_cpp.llama_memory_seq_rm(self.mem, run.slot, run.n_past, -1)
        for run in runs:
            outputs = self._fill([run])
            rc_one = llama_cpp.llama_decode(self.ctx, self.batch)
            if rc_one != 0:
                llama_cpp.llama_memory_seq_rm(self.mem, run.slot, run.n_past, -1)
                self._fail(run, RuntimeError(f"llama_decode failed ({rc_one}) for this sequence (batch: {rc})"))
            else:
                self._advance(run, outputs[0])

    def _complete(self, run: _Running, result: GenerationResult | None) -> None:
        self._release(run)
        if result is not None and not run.job.future.done():
            run.job.future.set_result(result)

    def _fail(self, run: _Running, err: BaseException) -> None:
        self._release(run)
        if not run.job.future.done():
            run.job.future.set_exception(err)

    def _release(self, run: _Running) -> None:
        """Free the slot: KV cells (`llama_memory_seq_rm`), sampler chain, and the slot index."""
        if run in self.running:
            self.running.remove(run)
            llama_cpp.llama_memory_seq_rm(self.mem, run.slot, -1, -1)
            llama_cpp.llama_sampler_free(run.chain)
            with self.cv:
                self.free_slots.append(run.slot)

    # -- helpers --
    def _is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _piece(self, token: int) -> bytes:
        """`llama_token_to_piece` without special tokens (as `Llama.detokenize`), cached per token id."""
        piece = self._pieces.get(token)
        if piece is None:
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
            piece = bytes(self._piece_buf[: max(0, n)])
            self._pieces[token] = piece
        return piece

    def close(self) -> None:
        """Stop the thread, fail whatever is still queued or running, free the context."""
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=30)
        err = RuntimeError("batch engine closed")
        for run in list(self.running):
            self._fail(run, err)
        while self.waiting:
            job = self.waiting.popleft()
            if not job.future.done() and job.future.set_running_or_notify_cancel():
                job.future.set_exception(err)
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None


class BatchEngine:
    """The batched decoder of one embedded model: `lanes` contexts on the model the single-stream `Llama` loaded."""

    def __init__(self, llm: Llama, chat: bool, config: BatchConfig | None = None, name: str = "model") -> None:
        self.llm = llm
        self.chat = chat
        self.config = config or BatchConfig.from_env()
        self.lanes = [Lane(llm, self.config, cpu_budget(), name) for _ in range(self.config.lanes)]
        self._lock = threading.Lock()

    def prepare(self, messages: list[dict[str, Any]], **params: Any) -> Job:
        """The job for a request; raises `UnsupportedRequest` if it must run single-stream."""
        job = build_job(self.llm, messages, self.chat, **params)
        if job.kv_need > self.config.slot_ctx:
            raise UnsupportedRequest(f"needs {job.kv_need} KV cells, a batch slot has {self.config.slot_ctx}")
        return job

    def submit(self, job: Job) -> "Future[GenerationResult]":
        """Queue a job on the least loaded lane; the future resolves when its answer is complete."""
        with self._lock:
            lane = min(self.lanes, key=lambda ln: ln.load)
            lane.submit(job)
        return job.future

    def generate(self, job: Job) -> GenerationResult:
        return self.submit(job).result()

    async def agenerate(self, job: Job) -> GenerationResult:
        """Await a job without holding a thread; a cancelled caller (timeout) frees its slot at the next step."""
        try:
            return await asyncio.wrap_future(self.submit(job))
        except asyncio.CancelledError:
            job.cancelled = True
            raise

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()
        self.lanes = []
