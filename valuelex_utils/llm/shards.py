"""Remote LLM calls spread over worker processes, for when one event loop's CPU is the limit.

Why: LiteLLM spends 3-5 ms of CPU per call here (building the request, the response objects, its logging and cost
bookkeeping), on the asyncio thread and on helper threads that share its GIL. At 64 calls in flight against an
endpoint that answers in 0.5 s (128 calls/s) one process is busy most of the time, responses queue behind each
other's bookkeeping, and 2,000 calls took 1.25-1.4x the ideal N x latency / concurrency; spread over worker
processes, 1.1x or less (`auto_processes`, `benchmarks/bench_concurrency.py`). Cloud providers at seconds a call
never get there; a local vLLM or llama.cpp server with many slots does.

How: a small pool of worker processes, spawned once and kept for the life of this process (each dies with it), runs
`calls.InProcessRunner` on an interleaved share of the requests with a share of the concurrency, against the same store
(appends are serialised by the store's file lock, and a key is answered once). This process only waits, shows
progress read from the store, and merges the workers' tallies. Requests to embedded models (`local/...`) never go
to workers: their batch engine lives in this process. A worker that dies loses nothing stored; what it did not
answer is answered here afterwards.
"""
from __future__ import annotations

import asyncio
import atexit
import ctypes
import gc
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from .calls import InProcessRunner, _warm_up_remote_client
from .records import ProviderError
from .router import make_router
from .store import ResponseStore

MAX_WORKERS = 4
MIN_CONCURRENCY = 32  # below this, calls/s are too few for the client's CPU to matter
MIN_CALLS_PER_SLOT = 8  # and a batch must be long enough to repay a worker's start-up (~3 s to import LiteLLM)


def auto_processes(concurrency: int, n_remote: int) -> int:
    """How many worker processes the automatic setting (`processes: 0`) uses: none unless many remote calls are in
    flight for long enough, then two per core (at most `MAX_WORKERS`).

    Why two per core: the workers are limited by how long answers queue behind each other's bookkeeping in one event
    loop, not by the cores (2,000 calls at 64 in flight used ~0.6 of a core in all). Measured here (2 cores, 0.5 s a
    call): 2 workers 0.87-0.89 of the ideal time, 3 workers 0.91, 4 workers 0.92; each worker costs ~200 MB."""
    cores = os.cpu_count() or 1
    if cores < 2 or concurrency < MIN_CONCURRENCY or n_remote < MIN_CALLS_PER_SLOT * concurrency:
        return 1
    return min(2 * cores, MAX_WORKERS, concurrency // 8)


# -- the worker side ---------------------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this worker when its parent dies (a killed run must not leave writers behind)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _serve(conn: Any, parent_pid: int) -> None:
    """Worker main loop: import LiteLLM once, then run one job per message until told to stop."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a notebook is for the parent, which stops us
    # one event loop for the worker's life: LiteLLM's HTTP clients and their open connections belong to a loop, so
    # a fresh loop per batch would reconnect every slot; the OpenAI SDK's lazy imports are paid here, not by calls
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(_warm_up_remote_client())

    gc.collect()
    gc.freeze()  # the imported modules never die: keep the cyclic collector from walking them between calls
    conn.send({"ready": True})
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(_run_job(job, loop))


def _run_job(job: dict[str, Any], loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    router = make_router(job["model_list"]) if job["model_list"] else None
    runner = InProcessRunner(ResponseStore(job["store"]), concurrency=job["concurrency"], retries=job["retries"],
                         timeout=job["timeout"], router=router, backoff_base=job["backoff_base"], processes=1,
                         ramp_gap=job["ramp_gap"])
    out: dict[str, Any] = {}
    try:
        records = loop.run_until_complete(runner.arun(job["requests"], progress=False))
        out["failed"] = [r["key"] for r in records if r.get("response") is None]
    except ProviderError as err:
        out["provider_error"] = str(err)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which answers the rest itself
        out["error"] = f"{type(err).__name__}: {err}"
    out["tally"] = runner.tally.to_dict()
    return out


# -- the parent side ---------------------------------------------------------------------------------------------
@dataclass
class _Worker:
    proc: Any
    conn: Any
    ready: bool = False


_POOL: list[_Worker] = []
_POOL_LOCK = threading.Lock()


def start_pool(n: int, wait: bool = True) -> int:
    """Start (or keep) `n` workers; with `wait`, return once each has imported LiteLLM. Returns the pool size."""
    ctx = multiprocessing.get_context("spawn")
    with _POOL_LOCK:
        _POOL[:] = [w for w in _POOL if w.proc.is_alive()]
        while len(_POOL) < n:
            parent_conn, child_conn = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child_conn, os.getpid()), daemon=True,
                               name=f"valuelex-llm-worker-{len(_POOL)}")
            proc.start()
            child_conn.close()
            _POOL.append(_Worker(proc, parent_conn))
        workers = _POOL[:n]
    if wait:
        for w in workers:
            _await_ready(w)
    return len(workers)


def _await_ready(w: _Worker) -> None:
    if not w.ready:
        msg = w.conn.recv()
        w.ready = bool(msg.get("ready"))


def stop_pool() -> None:
    """Stop every worker (at exit, after a cancelled batch, or to free memory)."""
    with _POOL_LOCK:
        workers, _POOL[:] = _POOL[:], []
    for w in workers:
        try:
            w.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
    for w in workers:
        w.proc.join(timeout=2)
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(timeout=2)


atexit.register(stop_pool)


async def run_sharded(runner: Any, requests: Sequence[Any], n: int, bar: Any) -> tuple[set[str], set[str]]:
    """Answer `requests` (remote, not yet in the store) in `n` worker processes.

    Returns the keys the workers answered and the keys they gave up on after their retries; the tallies are merged
    into `runner.tally`. Raises `ProviderError` (one line naming the model) if a worker hit a hard failure."""
    n = start_pool(n, wait=False)
    workers = _POOL[:n]
    base = {"store": str(runner.store.path), "concurrency": max(1, runner.concurrency // n),
            "retries": runner.retries, "timeout": runner.timeout, "backoff_base": runner.backoff_base,
            "ramp_gap": runner.ramp_gap,
            "model_list": getattr(runner.router, "valuelex_model_list", None)}
    keys = {r.key for r in requests}
    replies: dict[int, dict[str, Any]] = {}
    try:
        for i, w in enumerate(workers):
            w.conn.send({**base, "requests": list(requests[i::n])})
        seen, shown = 0, 0.0
        while len(replies) < n:
            await asyncio.sleep(0.05)  # a reply is noticed within 50 ms (the batch's end is its wall time)
            for i, w in enumerate(workers):
                if i in replies:
                    continue
                while w.conn.poll():
                    msg = w.conn.recv()
                    if "ready" in msg:
                        w.ready = True
                    else:
                        replies[i] = msg
                        break
                if i not in replies and not w.proc.is_alive():
                    replies[i] = {"error": f"worker process exited ({w.proc.exitcode})", "tally": {}}
            if time.monotonic() - shown >= 0.5 or len(replies) == n:  # progress from the store, twice a second
                shown = time.monotonic()
                runner.store.refresh()
                done = len(keys & runner.store.keys())
                bar.update(done - seen)
                seen = done
    except BaseException:
        stop_pool()  # a cancelled batch: workers must not keep calling (and paying) behind the user's back
        raise
    failed: set[str] = set()
    errors = []
    for msg in replies.values():
        runner.tally.merge(msg.get("tally") or {})
        failed.update(msg.get("failed") or [])
        if "provider_error" in msg:
            errors.append(msg["provider_error"])
    if errors:
        raise ProviderError(errors[0])
    answered = keys & runner.store.keys()
    return answered, failed - answered
