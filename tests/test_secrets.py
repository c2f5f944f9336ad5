"""Secrets: API keys come from the environment only and end up nowhere in a run dir.

A random fake key is planted in the environment; respondents name it with `api_key_env` (one endpoint, and two
endpoints behind LiteLLM's Router, which holds the key in its deployment list). The endpoints refuse any other key, so
a run that completes proves the key was sent. Then every file of the run dir (store, calls, manifest, params copy,
executed notebooks, HTML report, parquet) is searched for the key, and the notebook's papermill parameters are
checked to be only the run dir and the params file.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.testing_servers import start_server

pytestmark = pytest.mark.slow

KEY_ENV = "VALUELEX_FAKE_KEY"


def test_a_planted_key_is_used_but_never_written(tmp_path):
    key = f"sk-test-{secrets.token_hex(20)}"
    other_key = f"sk-openai-{secrets.token_hex(20)}"  # a key LiteLLM could pick up by default: must not leak either
    env = {**os.environ, KEY_ENV: key, "OPENAI_API_KEY": other_key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    servers = [start_server(delay=0.01, require_key_env=KEY_ENV, env={KEY_ENV: key}) for _ in range(3)]
    try:
        data = {"run_name": "secrets", "seed": 2, "concurrency": 4, "timeout": 30, "retries": 2,
                "respondents": [
                    {"model": "openai/fake-single", "training": "aligned", "api_base": servers[0].api_base,
                     "api_key_env": KEY_ENV},
                    {"model": "openai/fake-routed", "training": "aligned", "api_key_env": KEY_ENV,
                     "api_base": [servers[1].api_base, servers[2].api_base]},
                ],
                "elicitation": {"prompts": [1, 6, 13], "samples": 2, "max_tokens": 16}}
        params = tmp_path / "secrets.yaml"
        params.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        run_dir = tmp_path / "run"
        exe = Path(sys.executable).parent / "valuelex"
        proc = subprocess.run([str(exe), "run", "--params", str(params), "--run-dir", str(run_dir), "--steps", "01"],
                              capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = subprocess.run([str(exe), "report", str(run_dir)], capture_output=True, text=True, env=env,
                                timeout=900)
        assert report.returncode == 0, report.stderr[-3000:]
        stats = [s.stats() for s in servers]
    finally:
        for s in servers:
            s.stop()
    assert all(s["rejected"] == {} for s in stats), stats  # the right key reached every endpoint
    assert stats[0]["answered"] == 6 and stats[1]["answered"] + stats[2]["answered"] == 6, stats

    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.relative_to(run_dir).as_posix() for p in files}
    assert {"responses.jsonl", "calls.jsonl", "manifest.json", "params.yaml", "elicitation.parquet",
            "notebooks/01_elicit.ipynb", "report/index.html"} <= names, names
    for p in files:
        blob = p.read_bytes()
        for secret in (key, other_key):
            assert secret.encode() not in blob, f"{p.relative_to(run_dir)} holds a key"
            assert secret[-12:].encode() not in blob, f"{p.relative_to(run_dir)} holds part of a key"
    assert key not in proc.stdout + proc.stderr + report.stdout + report.stderr

    # raw records hold the request and the response, never request headers
    for line in (run_dir / "responses.jsonl").read_text(encoding="utf-8").splitlines():
        text = line.lower()
        assert "authorization" not in text and "bearer" not in text and "api_key" not in text

    # papermill records its parameters in the notebook: only the run dir and the params file cross over
    nb = json.loads((run_dir / "notebooks" / "01_elicit.ipynb").read_text(encoding="utf-8"))
    injected = [c for c in nb["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(injected) == 1
    assigned = {ln.split("=", 1)[0].strip() for ln in "".join(injected[0]["source"]).splitlines()
                if "=" in ln and not ln.lstrip().startswith("#")}
    assert assigned == {"run_dir", "params_file"}
    assert nb["metadata"]["papermill"]["parameters"].keys() == {"run_dir", "params_file"}


@pytest.mark.parametrize("server_answer", ["500-then-answer", "401"])
def test_keys_a_provider_echoes_are_masked_everywhere(server_answer, tmp_path):
    """Issue 20: an OpenAI-compatible endpoint on localhost repeats the credentials it received in its error bodies.
    Three keys are planted: `OPENAI_API_KEY` (read by LiteLLM itself, no `api_key_env`), a variable named only by
    `api_key_env` (a name no rule would guess), and a password in an `api_base` URL (of a role model's endpoint:
    LiteLLM's async client does not connect to a URL with credentials, so no call can use it). "500-then-answer": each
    call fails once with the echo, is retried and answered, and the report is built; "401": the endpoint refuses the
    key with the echo, the step fails with one line. No key may appear in any file of the run dir (store, calls,
    manifest, params copy, notebooks, report) nor in anything printed."""
    keys = {"env": f"sk-env-{secrets.token_hex(16)}", "named": f"named-{secrets.token_hex(16)}",
            "url": f"urlpw-{secrets.token_hex(16)}"}
    env = {**os.environ, "OPENAI_API_KEY": keys["env"], "PLANTED_CREDENTIAL_VAR": keys["named"],
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    refuse = server_answer == "401"
    server = start_server(echo_key=True, fault_rate=0.0 if refuse else 1.0, faults=("500",), max_consecutive_faults=1,
                          require_key_env="SERVER_ONLY_KEY" if refuse else None,
                          env={"SERVER_ONLY_KEY": "the-key-the-server-wants"})
    try:
        url = server.api_base.replace("http://", f"http://someone:{keys['url']}@")
        data = {"run_name": "echo", "seed": 2, "concurrency": 2, "timeout": 20, "retries": 2, "step_timeout": 900,
                "respondents": [{"model": "openai/fake-env", "training": "aligned", "api_base": server.api_base},
                                {"model": "openai/fake-named", "training": "aligned", "api_base": server.api_base,
                                 "api_key_env": "PLANTED_CREDENTIAL_VAR"}],
                "taxonomy": {"namer": "openai/fake-url"}, "endpoints": {"openai/fake-url": {"api_base": url}},
                "elicitation": {"prompts": [1, 6], "samples": 1, "max_tokens": 16}}
        params = tmp_path / "echo.yaml"
        params.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        run_dir = tmp_path / "run"
        exe = Path(sys.executable).parent / "valuelex"
        run = subprocess.run([str(exe), "run", "--params", str(params), "--run-dir", str(run_dir), "--steps", "01"],
                             capture_output=True, text=True, env=env, timeout=900)
        report = subprocess.run([str(exe), "report", str(run_dir)], capture_output=True, text=True, env=env,
                                timeout=900)
        stats = server.stats()
    finally:
        server.stop()
    if refuse:
        assert run.returncode == 2 and stats["rejected"] == {"bad_key": 2}, (run.stderr, stats)
        errors = [ln for ln in run.stderr.splitlines() if ln.startswith("valuelex: error:")]
        assert len(errors) == 1 and "Incorrect API key provided. (received: Bearer ***)" in errors[0]
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert stats["faults"] == {"500": 4} and stats["answered"] == 4, stats
        assert (run_dir / "report" / "01_elicit.html").exists()
    assert report.returncode == 0, report.stderr[-2000:]

    store = [json.loads(ln) for ln in (run_dir / "responses.jsonl").read_text(encoding="utf-8").splitlines()]
    echoed = [r["error"] for r in store if r.get("error")]
    assert echoed and all("(received: Bearer ***)" in e for e in echoed)  # the echo happened, and was masked
    assert "http://***@127.0.0.1" in (run_dir / "params.yaml").read_text(encoding="utf-8")
    if refuse:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        assert "(received: Bearer ***)" in manifest["steps"]["01"]["error"]["evalue"]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".ipynb" for p in files) and any(p.suffix == ".html" for p in files)
    printed = run.stdout + run.stderr + report.stdout + report.stderr
    for name, key in keys.items():
        for p in files:
            assert key.encode() not in p.read_bytes(), f"{name} key in {p.relative_to(run_dir)}"
        assert key not in printed, f"{name} key printed"
