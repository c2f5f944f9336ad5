"""Embedded-model throughput: raw llama-cpp-python against the LiteLLM path, single stream and batched.

Side by side in one process, on the same prompts and decoding settings, for both embedded models:

- raw:            stock `llama_cpp.Llama` (own instance, the engine's settings before batching: 2048 context, all
                  cores, flash attention off and repacked weights as llama-cpp-python's defaults), one request after
                  another. ggml reads GGML_CPU_TILED_MM once per process, so the engine's setting of it (0) applies
                  to raw too; it only changes prompt prefill kernels of K-quants (measured within noise);
- litellm_single: `litellm.completion` one request after another (default path: a lone request is a batch of one);
- litellm_fallback: the same with `VALUELEX_BATCHING=0` (the high-level single-stream path behind LiteLLM);
- litellm_batch16: the async batch API (`BatchRunner`, 16 in flight, a fresh store per round);
- batched B in {1, 4, 16, 32}: B concurrent `litellm.acompletion` calls (B=1: four calls one after another).

Targets: litellm_single >= 95% of raw tokens/s (foundation issue); litellm_batch16 >= 2x raw (batching issue).
Every figure is the median of `--rounds` rounds (variants interleaved within a round, so load drift hits all of
them alike); the load average is recorded, since other work shares these 2 cores.

    python benchmarks/bench_llm.py [--rounds 3] [--max-tokens 64] [--out outputs/bench/llm.json]

Writes the figures as JSON (default `outputs/bench/llm.json`) and prints a table.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import litellm  # noqa: E402

from valuelex_utils.llm import embedded  # noqa: E402
from benchmarks._machine import finish, machine_info  # noqa: E402
from valuelex_utils.llm.decoding import BatchConfig, cpu_budget  # noqa: E402
from valuelex_utils.llm.llama import Llama  # noqa: E402 - with ggml's and libgomp's settings first
from valuelex_utils.llm import BatchRunner, LLMRequest  # noqa: E402
from valuelex_utils.llm.store import ResponseStore  # noqa: E402

TOPICS = ["honesty", "family", "work", "friendship", "money", "freedom", "nature", "success", "kindness", "learning",
          "health", "justice", "faith", "art", "power", "loyalty", "tradition", "courage", "privacy", "fairness",
          "respect", "beauty", "safety", "pleasure", "duty", "humility", "ambition", "curiosity", "patience",
          "generosity", "independence", "peace"]
N_SINGLE = 6
B_SIZES = (1, 4, 16, 32)


def messages(i: int) -> list[dict[str, str]]:
    """Short prompts (prefill is 25-45% of the time at 60 tokens), one topic each so answers differ."""
    return [{"role": "user", "content": f"Describe what {TOPICS[i % len(TOPICS)]} means to you."}]


def params(i: int, max_tokens: int) -> dict[str, Any]:
    return {"temperature": 0.7, "top_p": 0.95, "max_tokens": max_tokens, "seed": i}


# -- the variants: each returns (completion tokens, seconds, answers) -----------------------------------------------
def run_raw(llm: Llama, chat: bool, n: int, max_tokens: int) -> tuple[int, float, list[str]]:
    """Stock llama-cpp-python, as the engine calls it (reset first, seed given)."""
    tokens, texts, started = 0, [], time.perf_counter()
    for i in range(n):
        llm.reset()
        if chat:
            out = llm.create_chat_completion(messages=messages(i), **params(i, max_tokens))
            texts.append(out["choices"][0]["message"]["content"] or "")
        else:
            out = llm.create_completion(prompt=embedded.messages_to_prompt(messages(i)), **params(i, max_tokens))
            texts.append(out["choices"][0]["text"])
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - started, texts


def run_litellm_single(model: str, n: int, max_tokens: int, batching: bool = True) -> tuple[int, float, list[str]]:
    old = os.environ.get("VALUELEX_BATCHING")
    os.environ["VALUELEX_BATCHING"] = "1" if batching else "0"
    try:
        tokens, texts, started = 0, [], time.perf_counter()
        for i in range(n):
            r = litellm.completion(model=model, messages=messages(i), num_retries=0, **params(i, max_tokens))
            tokens += r.usage.completion_tokens
            texts.append(r.choices[0].message.content)
        return tokens, time.perf_counter() - started, texts
    finally:
        if old is None:
            os.environ.pop("VALUELEX_BATCHING", None)
        else:
            os.environ["VALUELEX_BATCHING"] = old


def run_concurrent(model: str, b: int, max_tokens: int) -> tuple[int, float, list[str]]:
    """B concurrent `litellm.acompletion` calls (B=1: four calls, one at a time)."""
    async def wave(ids: list[int]) -> list[Any]:
        return await asyncio.gather(*[litellm.acompletion(model=model, messages=messages(i), num_retries=0,
                                                          **params(i, max_tokens)) for i in ids])

    waves = [[i] for i in range(4)] if b == 1 else [list(range(b))]
    started = time.perf_counter()
    out = [r for ids in waves for r in asyncio.run(wave(ids))]
    return sum(r.usage.completion_tokens for r in out), time.perf_counter() - started, [
        r.choices[0].message.content for r in out]


def run_batch_api(model: str, n: int, max_tokens: int, round_no: int) -> tuple[int, float, list[str]]:
    """The async batch API as the pipeline uses it: `BatchRunner` with n in flight, a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        runner = BatchRunner(ResponseStore(Path(tmp) / "r.jsonl"), concurrency=n)
        reqs = [LLMRequest(model, messages(i), params(i, max_tokens), sample=round_no) for i in range(n)]
        started = time.perf_counter()
        records = runner.run(reqs, progress=False)
        seconds = time.perf_counter() - started
    tally = runner.tally.of(model)
    texts = [(r.get("response") or {}).get("choices", [{}])[0].get("message", {}).get("content") for r in records]
    return tally.completion_tokens, seconds, texts


# -- orchestration ------------------------------------------------------------------------------------------------
def bench_model(name: str, rounds: int, max_tokens: int) -> dict[str, Any]:
    spec = embedded.EMBEDDED[name]
    model = f"local/{name}"
    engine = embedded.get_engine(name)  # loads the model the LiteLLM path uses
    raw = Llama(model_path=str(spec.locate()), n_ctx=2048, n_threads=embedded.default_threads(),
                n_threads_batch=embedded.default_threads(), verbose=False, seed=0)
    variants: dict[str, Callable[[int], tuple[int, float, list[str]]]] = {
        "raw": lambda r: run_raw(raw, spec.chat, N_SINGLE, max_tokens),
        "litellm_single": lambda r: run_litellm_single(model, N_SINGLE, max_tokens),
        "litellm_fallback": lambda r: run_litellm_single(model, N_SINGLE, max_tokens, batching=False),
        "litellm_batch16": lambda r: run_batch_api(model, 16, max_tokens, r),
        **{f"batched_B{b}": (lambda r, b=b: run_concurrent(model, b, max_tokens)) for b in B_SIZES},
    }
    samples: dict[str, list[float]] = {k: [] for k in variants}
    answers: dict[str, list[str]] = {}
    loads, contended = [], []
    try:
        run_concurrent(model, 4, 8)  # warm-up: batch contexts, caches
        for r in range(rounds):
            loads.append(round(os.getloadavg()[0], 2))
            for key, fn in variants.items():
                tokens, seconds, texts = fn(r)
                samples[key].append(tokens / seconds)
                answers.setdefault(key, texts)
            contended.append(cpu_budget().contended)
            print(f"  {name} round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in samples.items()),
                  flush=True)
    finally:
        raw.close()
    med = {k: statistics.median(v) for k, v in samples.items()}
    same = lambda k, ref="raw": f"{sum(a == b for a, b in zip(answers[ref][:N_SINGLE], answers[k][:N_SINGLE]))}/{N_SINGLE}"  # noqa: E731
    return {
        "model": model, "file": spec.locate().name,
        "tok_s": {k: round(v, 1) for k, v in med.items()},
        "rounds_tok_s": {k: [round(x, 1) for x in v] for k, v in samples.items()},
        "ratio_litellm_single_to_raw": round(med["litellm_single"] / med["raw"], 3),
        "ratio_litellm_fallback_to_raw": round(med["litellm_fallback"] / med["raw"], 3),
        "ratio_litellm_batch16_to_raw": round(med["litellm_batch16"] / med["raw"], 3),
        "batched": {str(b): round(med[f"batched_B{b}"], 1) for b in B_SIZES},
        "speedup_batched_to_raw": {str(b): round(med[f"batched_B{b}"] / med["raw"], 2) for b in B_SIZES},
        # the engine runs flash attention (raw llama-cpp-python's default is off), so near-tie tokens may differ
        "same_answer_as_raw": {k: same(k) for k in ("litellm_single", "litellm_fallback", "batched_B16")},
        "same_answer_as_fallback": {k: same(k, "litellm_fallback") for k in ("litellm_single", "litellm_batch16",
                                                                           "batched_B16", "batched_B32")},
        "load_avg_1min": loads,
        "cpu_contended_rounds": contended,
    }


def table(results: dict[str, Any]) -> str:
    keys = ["raw", "litellm_single", "litellm_fallback", "litellm_batch16"] + [f"batched_B{b}" for b in B_SIZES]
    lines = [f"{'tokens/s (median)':<18}" + "".join(f"{k:>18}" for k in keys)]
    for name, res in results["models"].items():
        lines.append(f"{name:<18}" + "".join(f"{res['tok_s'][k]:>18.1f}" for k in keys))
        lines.append(f"{'  x raw':<18}" + "".join(f"{res['tok_s'][k] / res['tok_s']['raw']:>18.2f}" for k in keys))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--models", nargs="*", default=list(embedded.EMBEDDED))
    p.add_argument("--out", default=str(REPO / "outputs" / "bench" / "llm.json"))
    a = p.parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "what": "completion tokens per second, median of rounds; same prompts, temperature 0.7, top_p 0.95, seeded",
        "machine": {**machine_info(), "threads": embedded.default_threads()},
        "batch_config": vars(BatchConfig.from_env()),
        "engine": "flash attention on, plain (not repacked) weights, GGML_CPU_TILED_MM=0: batch-invariant logits",
        "rounds": a.rounds, "max_tokens": a.max_tokens, "single_stream_requests": N_SINGLE,
        "models": {},
    }
    for name in a.models:
        print(f"{name}:", flush=True)
        results["models"][name] = bench_model(name, a.rounds, a.max_tokens)
    finish(results["machine"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["targets"] = {
        name: {"litellm_single_ge_95pct_raw": r["ratio_litellm_single_to_raw"] >= 0.95,
               "litellm_batch16_ge_2x_raw": r["ratio_litellm_batch16_to_raw"] >= 2.0}
        for name, r in results["models"].items()
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    for name, r in results["models"].items():
        print(f"{name}: same answer as the single-stream fallback {r['same_answer_as_fallback']}")
    print(f"targets: {json.dumps(results['targets'])}\nwrote {out} in {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
