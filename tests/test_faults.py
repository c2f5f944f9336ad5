"""Provider faults: rate limits, server errors and stalls are retried until every answer is stored and counted; a hard
failure (bad key, unknown model) stops at once with one line that names the model, and what was stored stays.

The endpoints are `tests.support.testing_servers` instruments (OpenAI-compatible, deterministic answers, faults
injected on purpose); the runs go through the real `valuelex run --steps 01` (papermill, the step-01 notebook).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from valuelex_utils.elicitation import build_requests
from valuelex_utils.errors import UserError
from valuelex_utils.llm import ProviderError
from valuelex_utils.params import parse_params
from valuelex_utils.llm.store import ResponseStore
from tests.support.testing_servers import start_server

pytestmark = pytest.mark.slow

KEY_ENV = "VALUELEX_FAULTS_KEY"
KEY = "sk-faults-0123456789abcdef"


def study(api_base: str, models: list[str], **over) -> dict:
    data = {"run_name": "faults", "seed": 5, "concurrency": 8, "timeout": 3, "retries": 4,
            "respondents": [{"model": m, "training": "aligned", "api_base": api_base, "api_key_env": KEY_ENV}
                            for m in models],
            "elicitation": {"samples": 3, "max_tokens": 16}}
    data.update(over)
    return data


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def valuelex_run(params: Path, run_dir: Path, key: str = KEY, timeout: float = 900) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "valuelex"
    return subprocess.run([str(exe), "run", "--params", str(params), "--run-dir", str(run_dir), "--steps", "01",
                           "--no-report"], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, KEY_ENV: key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})


def answered_keys(path: Path) -> list[str]:
    return [r["key"] for r in ResponseStore(path).records() if r.get("response") is not None]


def manifest_calls(run_dir: Path) -> dict:
    m = json.loads((run_dir / "manifest.json").read_text())
    return m["calls"]["01_elicit"]


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("valuelex: error:")]


def test_a_fifth_of_calls_failing_still_stores_every_answer_and_counts_retries(tmp_path):
    with start_server(delay=0.02, jitter=0.05, fault_rate=0.2, stall=20, max_consecutive_faults=2,
                      require_key_env=KEY_ENV, env={KEY_ENV: KEY}, seed=11) as server:
        data = study(server.api_base, ["openai/fake-a", "openai/fake-b"])
        params = parse_params(data)
        proc = valuelex_run(write(tmp_path / "p.yaml", data), tmp_path / "run")
        stats = server.stats()
    assert proc.returncode == 0, proc.stderr[-3000:]
    wanted = {r.key for r in build_requests(params)}
    keys = answered_keys(tmp_path / "run" / "responses.jsonl")
    assert set(keys) == wanted and len(keys) == len(wanted), "every response present, once"
    table = pd.read_parquet(tmp_path / "run" / "elicitation.parquet")
    assert len(table) == len(wanted) and table["text"].notna().all() and table["error"].isna().all()

    calls = manifest_calls(tmp_path / "run")
    retries = sum(c["retries"] for c in calls.values())
    assert sum(c["calls"] for c in calls.values()) == len(wanted)
    assert sum(c["errors"] for c in calls.values()) == 0
    # every attempt beyond a request's first reached the endpoint and is counted in the manifest
    assert retries == stats["requests"] - len(wanted), (retries, stats)
    assert stats["faults_total"] <= retries
    assert stats["faults_total"] >= 0.12 * stats["requests"], stats  # about a fifth were faults
    assert set(stats["faults"]) == {"429", "500", "timeout"}, stats
    assert stats["rejected"] == {}
    print(f"\nfaults injected {stats['faults_total']} of {stats['requests']} calls {stats['faults']}; "
          f"retries in manifest {retries}; answers {len(keys)}/{len(wanted)}")


def test_a_key_revoked_mid_run_stops_with_one_line_and_keeps_what_was_stored(tmp_path):
    data = study("http://127.0.0.1:1/v1", ["openai/fake-a"], concurrency=2, elicitation={"samples": 2})
    with start_server(delay=0.02, require_key_env=KEY_ENV, env={KEY_ENV: KEY}, hard_after=12) as server:
        data["respondents"][0]["api_base"] = server.api_base
        port = server.port
        p = write(tmp_path / "p.yaml", data)
        failed = valuelex_run(p, tmp_path / "run")
        stats = server.stats()
    assert failed.returncode == 2, failed.stderr[-3000:]
    lines = error_lines(failed.stderr)
    assert len(lines) == 1 and "openai/fake-a" in lines[0] and "API key revoked" in lines[0], failed.stderr
    noise = [ln for ln in failed.stderr.splitlines() if ln.strip() and not ln.startswith(("valuelex: error:", "step "))]
    assert not noise, failed.stderr  # besides progress lines ("step 01: ..."), the error is the only thing said
    assert "Traceback" not in failed.stderr
    assert 12 <= stats["answered"] <= 12 + data["concurrency"], stats
    assert stats["rejected"]["revoked"] <= data["concurrency"], stats  # a 401 is not retried
    store = tmp_path / "run" / "responses.jsonl"
    kept = store.read_bytes()
    stored = answered_keys(store)
    assert 1 <= len(stored) <= stats["answered"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["steps"]["01"]["status"] == "failed"

    # the key works again: the rerun asks only for what is missing and appends after what was kept
    with start_server(delay=0.02, require_key_env=KEY_ENV, env={KEY_ENV: KEY}, port=port) as server:
        again = valuelex_run(p, tmp_path / "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert store.read_bytes().startswith(kept)
    total = len(build_requests(parse_params(data)))
    assert len(set(answered_keys(store))) == total == len(answered_keys(store))
    last = json.loads((tmp_path / "run" / "calls.jsonl").read_text().splitlines()[-1])["models"]["openai/fake-a"]
    assert last["cached"] == len(stored) and last["calls"] == total - len(stored)


# LiteLLM's acompletion builds its request coroutine in a worker thread; when the first hard failure cancels the
# other calls, a call cancelled while that thread runs drops the coroutine unsent (no request: `answered == 0` below),
# and Python warns that it was never awaited. Only the direct API shows it; `valuelex run` prints one error line.
@pytest.mark.filterwarnings("ignore:coroutine 'OpenAIChatCompletion.acompletion' was never awaited:RuntimeWarning")
@pytest.mark.parametrize("case", ["bad-key", "unknown-model"])
def test_a_hard_failure_is_not_retried_and_names_the_model(case, tmp_path, monkeypatch):
    from valuelex_utils.elicitation import run_elicitation

    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-0000" if case == "bad-key" else KEY)
    model = "openai/fake-a" if case == "bad-key" else "openai/fake-zzz"
    with start_server(delay=0.01, require_key_env=KEY_ENV, env={KEY_ENV: KEY}, models=("fake-a",)) as server:
        params = parse_params(study(server.api_base, [model], concurrency=2, retries=4,
                                    elicitation={"prompts": [1, 2, 3], "samples": 2}))
        with pytest.raises(ProviderError) as err:
            asyncio.run(run_elicitation(params, str(tmp_path / "run"), progress=False))
        stats = server.stats()
    msg = str(err.value)
    assert isinstance(err.value, UserError) and err.value.exit_code == 2
    assert msg.startswith(f"model {model}: ") and "\n" not in msg
    assert ("AuthenticationError" if case == "bad-key" else "NotFoundError") in msg
    assert "sk-wrong-key-0000" not in msg
    rejected = sum(stats["rejected"].values())
    assert 1 <= rejected <= params.concurrency and stats["answered"] == 0, stats  # stopped at once, no retries
