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

This module holds the lanes and the engine; a request's capture, sampler and stop rules are in `sequences`, the
configuration and the CPU budget in `decoding` (which loads no llama.cpp).
"""
from __future__ import annotations

import asyncio
import ctypes
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Sequence

from .llama import Llama, llama_cpp
from .decoding import BatchConfig, CpuBudget, GenerationResult, UnsupportedRequest, cpu_budget
from .sequences import Job, SequenceState, build_job, build_sampler_chain


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
