"""Concurrency at the bound: N calls at C in flight against an endpoint that answers after a fixed delay.

The ideal wall time is N x delay / C (the endpoint is never the bottleneck: it only sleeps). The measured time goes
through the real code path: `BatchRunner` -> `litellm.acompletion` (`openai/...` with `api_base`) -> the store's
append-and-flush of every record. Efficiency = ideal / measured; the target is >= 0.90 (within 10%).

The default path runs `--rounds` times (3) and its median is reported with every round. Measured side by side on
the same server: the default path (`processes: 0`, which at this size shards the calls over
worker processes, see `valuelex_utils.llm.shards`; the pool is started during the warm-up and its start-up time is
reported apart), the same without the paced first wave (`ramp_gap=0`, see `valuelex_utils.llm.calls._Ramp`), the same with
every call in this one process (`processes: 1`), and bare `litellm.acompletion`.

    python benchmarks/bench_concurrency.py [--calls 2000] [--concurrency 64] [--delay 0.5] [--out outputs/bench/concurrency.json]

Writes the figures as JSON (default `outputs/bench/concurrency.json`) and prints them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "none")  # the instrument server takes any key

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._machine import finish, machine_info  # noqa: E402
from valuelex_utils.llm import shards  # noqa: E402
from valuelex_utils.llm import BatchRunner, LLMRequest  # noqa: E402
from valuelex_utils.llm.store import ResponseStore  # noqa: E402
from tests.support.testing_servers import start_server  # noqa: E402


def requests_for(n: int, api_base: str) -> list[LLMRequest]:
    return [LLMRequest(model="openai/bench", messages=[{"role": "user", "content": f"List your values ({i})."}],
                       params={"temperature": 0.7, "top_p": 1.0, "max_tokens": 32, "seed": i}, sample=0,
                       meta={"i": i}, deployment={"api_base": api_base}) for i in range(n)]


def run_queue_wait_s() -> float | None:
    """Seconds the event-loop thread spent runnable but waiting for a CPU (Linux schedstat): on a busy machine this,
    not the code, is what keeps the measured time above the ideal."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


async def measure(runner: BatchRunner, reqs: list[LLMRequest]) -> float:
    started = time.perf_counter()
    await runner.arun(reqs, progress=False)
    return time.perf_counter() - started


async def measure_litellm_only(reqs: list[LLMRequest], concurrency: int) -> float:
    """The same calls through bare `litellm.acompletion` and a semaphore (no store, no retries, no tally): the floor
    that LiteLLM's own per-call CPU sets on this machine, to tell ValueLex's overhead from LiteLLM's."""
    import litellm

    sem = asyncio.Semaphore(concurrency)

    async def one(r: LLMRequest) -> None:
        async with sem:
            await litellm.acompletion(model=r.model, messages=r.messages, timeout=60, num_retries=0,
                                      api_base=r.deployment["api_base"], **r.params)

    started = time.perf_counter()
    await asyncio.gather(*(one(r) for r in reqs))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--out", default=str(REPO / "outputs" / "bench" / "concurrency.json"))
    p.add_argument("--rounds", type=int, default=3, help="rounds of the default path; the median is reported")
    p.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slows the run)")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare-LiteLLM baseline run")
    a = p.parse_args(argv)

    ideal = a.calls * a.delay / a.concurrency
    # no llama.cpp runs here (LiteLLM, the store and a local HTTP server), but its build is recorded as in llm.json:
    # the two are read side by side, and a reader should not have to find which wheel the machine had
    machine = machine_info()
    with start_server(delay=a.delay) as server, tempfile.TemporaryDirectory() as tmp:
        store = ResponseStore(Path(tmp) / "responses.jsonl")
        runner = BatchRunner(store, concurrency=a.concurrency, retries=2, timeout=60)
        workers = shards.auto_processes(a.concurrency, a.calls)
        # warm-up: imports, the HTTP client and its connection pool, the worker processes (not timed, not stored in
        # the measured file)
        t0 = time.perf_counter()
        shards.start_pool(workers) if workers > 1 else None
        pool_start = time.perf_counter() - t0
        for procs in {1, workers}:  # this process, then the workers: each opens its HTTP connections
            warm = BatchRunner(ResponseStore(Path(tmp) / f"warmup{procs}.jsonl"), concurrency=a.concurrency,
                               timeout=60, processes=procs)
            asyncio.run(warm.arun(requests_for(a.concurrency, server.api_base), progress=False))
        rss_before = rss_mb()
        if a.tracemalloc:
            tracemalloc.start()
        reqs = requests_for(a.calls, server.api_base)
        cpu0, wait0, load0 = time.process_time(), run_queue_wait_s(), os.getloadavg()[0]
        walls = [asyncio.run(measure(runner, reqs))]
        cpu = time.process_time() - cpu0
        wait1 = run_queue_wait_s()
        waited = wait1 - wait0 if wait0 is not None and wait1 is not None else None
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if a.tracemalloc else None
        if a.tracemalloc:
            tracemalloc.stop()
        stats = server.stats()
        lines = (Path(tmp) / "responses.jsonl").read_text(encoding="utf-8").count("\n")
        for extra in range(1, a.rounds):  # further rounds, each into a fresh store (the same keys would be cached)
            again = BatchRunner(ResponseStore(Path(tmp) / f"round{extra}.jsonl"), concurrency=a.concurrency,
                                retries=2, timeout=60)
            walls.append(asyncio.run(measure(again, requests_for(a.calls, server.api_base))))
        wall = statistics.median(walls)
        no_ramp = BatchRunner(ResponseStore(Path(tmp) / "no_ramp.jsonl"), concurrency=a.concurrency, retries=2,
                              timeout=60, ramp_gap=0.0)
        no_ramp_wall = asyncio.run(measure(no_ramp, requests_for(a.calls, server.api_base)))
        one = BatchRunner(ResponseStore(Path(tmp) / "one.jsonl"), concurrency=a.concurrency, retries=2, timeout=60,
                          processes=1)
        one_wall = asyncio.run(measure(one, requests_for(a.calls, server.api_base)))
        bare = None if a.no_baseline else asyncio.run(measure_litellm_only(requests_for(a.calls, server.api_base),
                                                                           a.concurrency))
    shards.stop_pool()
    tally = runner.tally.of("openai/bench")
    result = {
        "calls": a.calls, "concurrency": a.concurrency, "delay_s": a.delay,
        "ideal_s": round(ideal, 3), "measured_s": round(wall, 3), "efficiency": round(ideal / wall, 4),
        "within_10pct": wall <= ideal * 1.10,
        "rounds_s": [round(w, 3) for w in walls], "rounds_efficiency": [round(ideal / w, 4) for w in walls],
        "worker_processes": workers, "worker_start_s": round(pool_start, 2),
        "efficiency_incl_worker_start": round(ideal / (wall + pool_start), 4),
        "ramp_gap_s": runner.ramp_gap,
        "no_ramp_s": round(no_ramp_wall, 3), "no_ramp_efficiency": round(ideal / no_ramp_wall, 4),
        "one_process_s": round(one_wall, 3), "one_process_efficiency": round(ideal / one_wall, 4),
        "throughput_calls_per_s": round(a.calls / wall, 1), "client_cpu_s": round(cpu, 2),
        "litellm_only_s": round(bare, 3) if bare else None,
        "litellm_only_efficiency": round(ideal / bare, 4) if bare else None,
        "client_cpu_ms_per_call": round(1000 * cpu / a.calls, 3),  # this process only (workers not counted)
        "peak_rss_mb": round(rss_mb(), 1), "rss_before_batch_mb": round(rss_before, 1),
        # the largest finished child: a worker process or the instrument server
        "peak_rss_largest_child_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "tracemalloc_peak_mb": round(traced_peak, 1) if traced_peak is not None else None,
        "answered": tally.calls, "retries": tally.retries, "errors": tally.errors, "store_lines": lines,
        "server_requests": stats["requests"], "server_peak_in_flight": stats["peak_in_flight"],
        "event_loop_run_queue_wait_s": round(waited, 2) if waited is not None else None,
        "cpus": os.cpu_count(), "load_avg_1m_before": round(load0, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "machine": finish(machine),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
