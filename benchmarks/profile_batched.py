"""Where a batched step's time goes, on both embedded models: llama_decode (split into steps that carry a prompt's
prefill and pure decode steps), sampling, and the rest (Python per token: batch filling, stop rules, detokenising,
the scheduler, asyncio and LiteLLM), side by side with the raw single stream in one process.

`llama_cpp.llama_decode` and `llama_cpp.llama_sampler_sample` are wrapped with timers (both the engine's lanes and
llama-cpp-python's own single-stream path call them through the module, so one wrapper sees both). Per-kernel time
inside llama_decode needs a sampling profiler on the native code: run with `--seconds S` to keep the batched load
going for S seconds (`--hold raw` for the single stream) and attach `perf record -p <pid>` meanwhile:
`benchmarks/perf_ops.py` does both and sums the samples per ggml kernel.

    python benchmarks/profile_batched.py [--batch 16] [--max-tokens 64] [--out outputs/bench/profile_batched.json]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._machine import machine_info, write_result  # noqa: E402
from benchmarks.bench_llm import TOPICS  # noqa: E402 - the same prompts as the benchmark it explains
from valuelex_utils.llm import embedded  # noqa: E402
import litellm  # noqa: E402
from valuelex_utils.llm.llama import Llama, llama_cpp  # noqa: E402 - with ggml's and libgomp's settings first
import valuelex_utils.llm.provider  # noqa: E402,F401 - registers the local provider



class Timers:
    """Seconds and calls per kind, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.s: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self.tokens: dict[str, int] = defaultdict(int)

    def add(self, kind: str, seconds: float, tokens: int = 0) -> None:
        with self.lock:
            self.s[kind] += seconds
            self.n[kind] += 1
            self.tokens[kind] += tokens

    def reset(self) -> None:
        with self.lock:
            self.s.clear(), self.n.clear(), self.tokens.clear()


T = Timers()
_decode, _sample = llama_cpp.llama_decode, llama_cpp.llama_sampler_sample


def timed_decode(ctx: Any, batch: Any) -> int:
    n = int(batch.n_tokens)
    outputs = sum(1 for i in range(n) if batch.logits[i]) if n <= 4096 else n
    t = time.perf_counter()
    rc = _decode(ctx, batch)
    # a step whose tokens outnumber its outputs carries (part of) a prompt: prefill; else one token per sequence
    T.add("decode_with_prefill" if n > outputs else "decode_only", time.perf_counter() - t, n)
    return rc


def timed_sample(*args: Any) -> int:
    t = time.perf_counter()
    tok = _sample(*args)
    T.add("sample", time.perf_counter() - t)
    return tok


llama_cpp.llama_decode = timed_decode
llama_cpp.llama_sampler_sample = timed_sample


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Describe what {TOPICS[i % len(TOPICS)]} means to you."}]


def params(i: int, max_tokens: int) -> dict[str, Any]:
    return {"temperature": 0.7, "top_p": 0.95, "max_tokens": max_tokens, "seed": i}


def raw_run(llm: Llama, chat: bool, n: int, max_tokens: int) -> tuple[int, float]:
    tokens, started = 0, time.perf_counter()
    for i in range(n):
        llm.reset()
        if chat:
            out = llm.create_chat_completion(messages=messages(i), **params(i, max_tokens))
        else:
            out = llm.create_completion(prompt=embedded.messages_to_prompt(messages(i)), **params(i, max_tokens))
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - started


def batched_run(model: str, b: int, max_tokens: int, offset: int = 0) -> tuple[int, float]:
    async def wave() -> list[Any]:
        return await asyncio.gather(*[litellm.acompletion(model=model, messages=messages(offset + i), num_retries=0,
                                                          **params(offset + i, max_tokens)) for i in range(b)])

    started = time.perf_counter()
    out = asyncio.run(wave())
    return sum(r.usage.completion_tokens for r in out), time.perf_counter() - started


def breakdown(tokens: int, wall: float) -> dict[str, Any]:
    dec = T.s["decode_only"] + T.s["decode_with_prefill"]
    return {
        "completion_tokens": tokens, "wall_s": round(wall, 3), "tok_s": round(tokens / wall, 1),
        "decode_only_s": round(T.s["decode_only"], 3), "decode_only_steps": T.n["decode_only"],
        "decode_only_tokens": T.tokens["decode_only"],
        "ms_per_decode_only_step": round(1000 * T.s["decode_only"] / max(1, T.n["decode_only"]), 2),
        "mean_sequences_per_decode_step": round(T.tokens["decode_only"] / max(1, T.n["decode_only"]), 2),
        "decode_with_prefill_s": round(T.s["decode_with_prefill"], 3),
        "decode_with_prefill_steps": T.n["decode_with_prefill"],
        "decode_with_prefill_tokens": T.tokens["decode_with_prefill"],
        "sample_s": round(T.s["sample"], 3), "sample_calls": T.n["sample"],
        "us_per_sample": round(1e6 * T.s["sample"] / max(1, T.n["sample"]), 1),
        # wall time outside llama_decode and sampling; with two lanes decoding in parallel threads, their decode
        # times overlap and add up to more than the wall time, so this can go negative: then read the shares
        "other_s": round(wall - dec - T.s["sample"], 3),
        "share_decode_only": round(T.s["decode_only"] / wall, 3),
        "share_prefill_steps": round(T.s["decode_with_prefill"] / wall, 3),
        "share_sample": round(T.s["sample"] / wall, 3),
    }


def profile_model(name: str, b: int, max_tokens: int, rounds: int, seconds: float, hold: str = "batched"
                  ) -> dict[str, Any]:
    spec = embedded.EMBEDDED[name]
    model = f"local/{name}"
    embedded.get_engine(name)
    raw = Llama(model_path=str(spec.locate()), n_ctx=2048, n_threads=embedded.default_threads(),
                n_threads_batch=embedded.default_threads(), verbose=False, seed=0)
    out: dict[str, Any] = {"model": model, "rounds": []}
    try:
        batched_run(model, 4, 8)  # warm-up
        raw_run(raw, spec.chat, 1, 8)
        for r in range(rounds):
            load = round(os.getloadavg()[0], 2)
            T.reset()
            tok, wall = raw_run(raw, spec.chat, 4, max_tokens)
            single = breakdown(tok, wall)
            T.reset()
            tok, wall = batched_run(model, b, max_tokens, offset=r)
            batch = breakdown(tok, wall)
            out["rounds"].append({"load_avg_1m": load, "raw_single": single, f"batched_B{b}": batch,
                                  "ratio_batched_to_raw": round(batch["tok_s"] / single["tok_s"], 2)})
            print(f"{name} round {r + 1}: raw {single['tok_s']} tok/s, B={b} {batch['tok_s']} tok/s "
                  f"({out['rounds'][-1]['ratio_batched_to_raw']}x), load {load}", flush=True)
        if seconds > 0:  # keep one kind of load going for a native profiler attached from outside
            print(f"pid {os.getpid()}: {hold} load for {seconds:.0f} s", flush=True)
            end, i = time.perf_counter() + seconds, 100
            while time.perf_counter() < end:
                if hold == "raw":
                    raw_run(raw, spec.chat, 1, max_tokens)
                else:
                    batched_run(model, b, max_tokens, offset=i)
                i += b
    finally:
        raw.close()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--hold", choices=["batched", "raw"], default="batched",
                   help="which load the --seconds tail keeps going (raw: the single stream, to profile side by side)")
    p.add_argument("--models", nargs="*", default=list(embedded.EMBEDDED))
    p.add_argument("--out", default=str(REPO / "outputs" / "bench" / "profile_batched.json"))
    a = p.parse_args(argv)
    result = {"machine": machine_info(), "batch": a.batch, "max_tokens": a.max_tokens,
              "models": {n: profile_model(n, a.batch, a.max_tokens, a.rounds, a.seconds, a.hold) for n in a.models}}
    write_result(result, a.out)


if __name__ == "__main__":
    main()
