"""What the embedded engines share without loading llama.cpp: a generation's result, a base model's prompt, the batching switch and shape
(`BatchConfig`), the requests the batch path leaves to the single stream, and the cores they share (`CpuBudget`).

`embedded` (the single-stream engine, loaded lazily) and `batching` (the batch engine, which imports llama_cpp) both
build on this module, so neither needs the other to describe a result or a thread budget.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def messages_to_prompt(messages: list[dict[str, Any]]) -> str:
    """A base model has no chat template: it continues the plain text of the messages."""
    return "\n\n".join(str(m.get("content") or "") for m in messages)


def default_threads() -> int:
    """All cores: llama.cpp's default of half the cores is ~40% slower on these machines."""
    return int(os.environ.get("VALUELEX_THREADS", os.cpu_count() or 1))


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


# -- what the batch path leaves to the single stream --------------------------------------------------------------
class UnsupportedRequest(Exception):
    """A request the batch path does not reproduce (grammar, logprobs, mirostat, too long...): run it single-stream."""


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
            _BUDGET = CpuBudget(default_threads())
        return _BUDGET
