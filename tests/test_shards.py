"""Remote calls spread over worker processes (`valuelex_utils.llm.shards`): the same store contract as one process
(every answer stored once, retries counted, reruns from the cache), hard failures still stop with one line naming
the model, and a cancelled batch stops its workers."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from valuelex_utils.llm import shards
from valuelex_utils.llm import BatchRunner, LLMRequest, ProviderError
from valuelex_utils.llm.router import make_router
from valuelex_utils.llm.store import ResponseStore
from tests.support.testing_servers import start_server

pytestmark = pytest.mark.slow

KEY_ENV = "VALUELEX_SHARDS_KEY"


def reqs(n: int, model: str = "openai/shard", api_base: str | None = None) -> list[LLMRequest]:
    dep = {"api_base": api_base, "api_key_env": KEY_ENV} if api_base else {}
    return [LLMRequest(model=model, messages=[{"role": "user", "content": f"Name a value ({i})."}],
                       params={"temperature": 0.7, "max_tokens": 8, "seed": i}, sample=0, deployment=dep)
            for i in range(n)]


def answered(path: Path) -> list[str]:
    return [r["key"] for r in ResponseStore(path).records() if r.get("response") is not None]


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-shards")
    yield
    shards.stop_pool()


def test_the_automatic_setting_shards_only_long_busy_remote_batches(monkeypatch):
    monkeypatch.setattr(shards.os, "cpu_count", lambda: 2)
    assert shards.auto_processes(64, 2000) == 4  # two event loops per core, at most 4
    assert shards.auto_processes(16, 2000) == 1  # few calls in flight: one loop keeps up
    assert shards.auto_processes(64, 200) == 1  # too short to repay a worker's start-up
    monkeypatch.setattr(shards.os, "cpu_count", lambda: 1)
    assert shards.auto_processes(64, 2000) == 1


def test_sharded_calls_under_faults_store_every_answer_once_and_count_retries(tmp_path):
    path = tmp_path / "responses.jsonl"
    with start_server(delay=0.01, fault_rate=0.2, faults=("429", "500"), seed=3) as server:
        runner = BatchRunner(ResponseStore(path), concurrency=16, retries=4, timeout=10, backoff_base=0.01,
                             processes=2)
        batch = reqs(240, api_base=server.api_base)
        records = runner.run(batch, progress=False)
        stats = server.stats()
    assert [r["key"] for r in records] == [r.key for r in batch]
    assert all(r["response"] is not None for r in records)
    keys = answered(path)
    assert len(keys) == len(set(keys)) == 240  # each answered once, by whichever worker had it
    tally = runner.tally.of("openai/shard")
    faults = sum(stats["faults"].values())
    assert tally.calls == 240 and tally.cached == 0 and tally.retries == faults > 0
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 240 + faults and all(json.loads(ln) for ln in lines)  # whole lines, errors kept as history

    again = BatchRunner(ResponseStore(path), concurrency=16, processes=2)
    again.run(batch, progress=False)
    assert again.tally.of("openai/shard").cached == 240 and again.tally.of("openai/shard").calls == 0


def test_a_hard_failure_in_a_worker_stops_with_one_line_naming_the_model(tmp_path):
    path = tmp_path / "responses.jsonl"
    with start_server(delay=0.01, models=("openai/known",)) as server:
        runner = BatchRunner(ResponseStore(path), concurrency=8, retries=3, timeout=10, processes=2)
        with pytest.raises(ProviderError) as err:
            runner.run(reqs(40, model="openai/missing", api_base=server.api_base), progress=False)
        stats = server.stats()
    msg = str(err.value)
    assert "openai/missing" in msg and "\n" not in msg
    assert stats["rejected"]["unknown_model"] <= 8 + 2  # not retried: each worker stops at its first 404s


def test_workers_rebuild_the_router_and_balance_over_its_endpoints(tmp_path):
    with start_server(delay=0.01) as a, start_server(delay=0.01) as b:
        router = make_router([{"model_name": "openai/pair", "litellm_params": {"model": "openai/pair",
                                                                                "api_base": s.api_base,
                                                                                "api_key": "sk-x"}}
                              for s in (a, b)])
        runner = BatchRunner(ResponseStore(tmp_path / "r.jsonl"), concurrency=8, timeout=10, router=router,
                             processes=2)
        records = runner.run(reqs(60, model="openai/pair"), progress=False)
        served = (a.stats()["answered"], b.stats()["answered"])
    assert all(r["response"] is not None for r in records)
    assert sum(served) == 60 and min(served) > 0


def test_a_cancelled_batch_stops_its_workers(tmp_path):
    async def cancel_soon(runner: BatchRunner, batch: list[LLMRequest]) -> None:
        task = asyncio.ensure_future(runner.arun(batch, progress=False))
        await asyncio.sleep(3.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with start_server(delay=0.5) as server:
        runner = BatchRunner(ResponseStore(tmp_path / "r.jsonl"), concurrency=4, timeout=10, processes=2)
        shards.start_pool(2)
        pids = [w.proc for w in shards._POOL]
        asyncio.run(cancel_soon(runner, reqs(200, api_base=server.api_base)))
        assert not shards._POOL and not any(p.is_alive() for p in pids)
        stopped_at = server.stats()["requests"]
        asyncio.run(asyncio.sleep(1.5))
        assert server.stats()["requests"] == stopped_at  # nobody is still calling behind the user's back
    assert 0 < len(answered(tmp_path / "r.jsonl")) < 200


CHILD = """
import sys
from pathlib import Path
from valuelex_utils.llm import BatchRunner, LLMRequest
from valuelex_utils.llm.store import ResponseStore
base, path = sys.argv[1], sys.argv[2]
reqs = [LLMRequest(model="openai/shard", messages=[{"role": "user", "content": f"Name a value ({i})."}],
                   params={"temperature": 0.7, "max_tokens": 8, "seed": i}, deployment={"api_base": base})
        for i in range(400)]
if __name__ == "__main__":
    BatchRunner(ResponseStore(path), concurrency=8, timeout=10, processes=2).run(reqs, progress=False)
"""


def test_killing_the_parent_kills_its_workers_and_a_rerun_completes_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    path = tmp_path / "r.jsonl"
    with start_server(delay=0.05, jitter=0.05) as server:
        proc = subprocess.Popen([sys.executable, str(script), server.api_base, str(path)],
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        deadline = time.time() + 120
        while time.time() < deadline and len(answered(path)) < 60:
            time.sleep(0.1)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must not outlive it
        proc.wait(30)
        gone, alive = psutil.wait_procs(workers, timeout=20)
        assert len(workers) >= 2 and not alive
        first = answered(path)
        assert 60 <= len(first) < 400
        runner = BatchRunner(ResponseStore(path), concurrency=8, timeout=10, processes=2)
        spec = importlib.util.spec_from_file_location("child", script)
        mod = importlib.util.module_from_spec(spec)
        monkeypatch.setattr(sys, "argv", ["child", server.api_base, str(path)])
        spec.loader.exec_module(mod)
        runner.run(mod.reqs, progress=False)
    keys = answered(path)
    assert len(keys) == len(set(keys)) == 400
    assert runner.tally.of("openai/shard").cached == len(set(first))
    assert all(json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
