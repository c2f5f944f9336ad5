"""Scale-out: one model behind several endpoints, load-balanced by LiteLLM's Router; an endpoint that dies mid-run is
routed around and the run completes, with every failed attempt stored and counted. And `valuelex run --dry-run`:
calls, tokens and cost per model from LiteLLM's cost map, before anything is spent.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from valuelex_utils import cli
from valuelex_utils.elicitation import build_requests
from valuelex_utils.llm import BatchRunner, LLMRequest
from valuelex_utils.params import parse_params
from valuelex_utils.llm.router import router_for
from valuelex_utils.llm.store import ResponseStore
from tests.support.testing_servers import start_server


def closed_port_base() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens here: connection refused


def test_router_balances_over_endpoints_and_routes_around_faults_and_a_dead_one(tmp_path, monkeypatch):
    """Two endpoints injecting 20% faults and one that refuses connections: every answer arrives, each failed
    attempt is counted (the Router does not retry behind our back), and both live endpoints share the work.

    The retry budget must exceed what the fault injector can do to one request: each live server faults a request at
    most twice in a row (`max_consecutive_faults=2`), so two servers can fail it four times, and the dead endpoint
    fails it whenever the shuffle picks it outside its cooldown. With `retries=4` CI lost a request once (2026-12-07);
    in six local runs (360 requests) 17% failed once, 3.6% twice, 0.8% three times, each further failure about five
    times rarer, so five in a row hit roughly one run in fifty. With `retries=8` a request is lost only if the shuffle
    also picks the dead endpoint five more times."""
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    servers = [start_server(delay=0.01, jitter=0.03, fault_rate=0.2, stall=20, seed=i) for i in range(2)]
    try:
        bases = [servers[0].api_base, closed_port_base(), servers[1].api_base]
        params = parse_params({"respondents": [{"model": "openai/fake", "training": "aligned", "api_base": bases}]})
        router = router_for(params)
        assert router is not None and "openai/fake" in router.model_names and len(router.model_list) == 3
        store = ResponseStore(tmp_path / "responses.jsonl")
        runner = BatchRunner(store, concurrency=8, retries=8, timeout=3, router=router)
        reqs = [LLMRequest("openai/fake", [{"role": "user", "content": f"Name a value ({i})."}], {"seed": i})
                for i in range(60)]
        records = runner.run(reqs, progress=False)
        stats = [s.stats() for s in servers]
    finally:
        for s in servers:
            s.stop()
    tally = runner.tally.of("openai/fake")
    lost = [(r["key"], [a["error"][:80] for a in store.records() if a["key"] == r["key"] and a.get("error")])
            for r in records if not r.get("response")]
    assert not lost and tally.calls == 60 and tally.errors == 0, lost
    failed_attempts = [r for r in store.records() if r.get("error")]
    requests_reaching_live = sum(s["requests"] for s in stats)
    refused = sum("Connection" in r["error"] for r in failed_attempts)
    assert tally.retries == len(failed_attempts) == (requests_reaching_live - 60) + refused
    assert all(s["answered"] > 0 for s in stats), stats
    endpoints = {r["endpoint"] for r in store.records() if r.get("response")}
    assert endpoints == {servers[0].api_base, servers[1].api_base}


@pytest.mark.slow
def test_three_llama_servers_one_killed_mid_run_and_the_run_completes(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import start_llama_server

    from valuelex_utils.llm.embedded import EMBEDDED

    model_path = EMBEDDED["smollm2-135m-instruct"].locate()
    servers = [start_llama_server(model_path, "smollm2", n_threads=1) for _ in range(3)]
    try:
        data = {"run_name": "scaleout", "seed": 4, "concurrency": 3, "timeout": 120, "retries": 4,
                "respondents": [{"model": "openai/smollm2", "name": "smollm2-x3", "training": "aligned",
                                 "api_base": [base for _, base in servers], "api_key_env": "VALUELEX_LLAMA_KEY"}],
                "elicitation": {"prompts": [1, 2, 3, 4], "samples": 3, "max_tokens": 3}}
        params_file = tmp_path / "scaleout.yaml"
        params_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        run_dir = tmp_path / "run"
        store = run_dir / "responses.jsonl"
        victim_proc, victim_base = servers[0]
        killed_at: list[float] = []

        def kill_after_two_answers() -> None:
            deadline = time.time() + 900
            while time.time() < deadline:
                if store.exists() and store.read_bytes().count(b'"response": {') >= 2:
                    victim_proc.kill()
                    killed_at.append(time.time())
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=kill_after_two_answers, daemon=True)
        watcher.start()
        exe = Path(sys.executable).parent / "valuelex"
        proc = subprocess.run([str(exe), "run", "--params", str(params_file), "--run-dir", str(run_dir), "--steps",
                               "01", "--no-report"], capture_output=True, text=True, timeout=1500,
                              env={**os.environ, "VALUELEX_LLAMA_KEY": "none", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        watcher.join(5)
    finally:
        for p, _ in servers:
            p.kill()
            p.wait(10)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert killed_at, "the server was not killed during the run"
    records = ResponseStore(store).records()
    answered = [r for r in records if r.get("response")]
    wanted = {r.key for r in build_requests(parse_params(data))}
    assert {r["key"] for r in answered} == wanted and len(answered) == len(wanted)
    assert any(r["time"] > killed_at[0] for r in answered), "the run went on after the kill"
    # after the kill the dead server started nothing that succeeded; the others answered
    assert all(r["time"] - r["latency"] < killed_at[0] for r in answered if r.get("endpoint") == victim_base)
    assert len({r.get("endpoint") for r in answered}) >= 2
    # every failed attempt is in the store and counted as a retry in the manifest
    manifest = json.loads((run_dir / "manifest.json").read_text())
    counts = manifest["calls"]["01_elicit"]["openai/smollm2"]
    errors = [r for r in records if r.get("error")]
    assert counts["retries"] == len(errors) and counts["errors"] == 0 and counts["calls"] == len(wanted)
    print(f"\nrouter failover: {len(answered)} answers over {len({r.get('endpoint') for r in answered})} endpoints, "
          f"{len(errors)} failed attempts retried after the kill: "
          f"{[e['error'].splitlines()[0][-30:] for e in errors]}")


def test_dry_run_prints_calls_tokens_and_cost_per_model(tmp_path, capsys):
    import litellm

    data = {"run_name": "dryrun-test", "seed": 0,
            "respondents": [
                {"model": "openai/gpt-4o-mini", "training": "aligned",
                 "configs": [{"temperature": 0.7}, {"temperature": 1.0, "top_p": 0.9}]},
                {"model": "anthropic/claude-haiku-4-5", "training": "aligned", "api_key_env": "UNSET_IN_TEST"},
                {"model": "local/smollm2-135m-instruct", "training": "aligned"},
            ],
            "elicitation": {"samples": 2, "max_tokens": 50},
            "projective": {"samples": 1, "max_tokens": 30},
            "scoring": {"scorer": "llm", "judge": "openai/gpt-4o"}}
    params_file = tmp_path / "p.yaml"
    params_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    run_dir = tmp_path / "run"
    assert cli.main(["run", "--params", str(params_file), "--run-dir", str(run_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not run_dir.exists(), "a dry run writes nothing"
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0] in ("01_elicit", "05_projective", "06_score"):
            rows[(parts[0], parts[1])] = parts[2:]
    params = parse_params(data)
    elicit = build_requests(params)
    for model, n_configs in [("openai/gpt-4o-mini", 2), ("anthropic/claude-haiku-4-5", 1),
                             ("local/smollm2-135m-instruct", 1)]:
        calls, prompt, completion, cost = rows[("01_elicit", model)]
        assert int(calls) == 15 * 2 * n_configs == sum(r.model == model for r in elicit)
        assert int(completion) == int(calls) * 50
        expected_prompt = sum(litellm.token_counter(model=model, messages=r.messages)
                              for r in elicit if r.model == model)
        assert int(prompt) == expected_prompt
        if model.startswith("local/"):
            assert cost == "unknown"
        else:
            price = litellm.model_cost[model.split("/", 1)[1]]
            expected = price["input_cost_per_token"] * int(prompt) + price["output_cost_per_token"] * int(completion)
            assert float(cost) == pytest.approx(expected, abs=1e-4) and float(cost) > 0
        assert int(rows[("05_projective", model)][0]) == 50 * n_configs
    assert ("06_score", "openai/gpt-4o") in rows and float(rows[("06_score", "openai/gpt-4o")][3]) > 0
    assert "total:" in out and "unknown" in out
