"""Safety of a run (issue 20): secrets masked, empty answers refused, a damaged store reported and kept out, one run
per run dir, an unfinished step never read as finished, run names that stay under outputs/.

Fast tests: a testing server on localhost or no endpoint at all; the end-to-end runs are in test_secrets.py,
test_hangs.py and test_crash_safety.py (slow)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from valuelex_utils import scrub
from valuelex_utils.llm import BatchRunner, LLMRequest, ProviderError, response_text
from valuelex_utils.llm.store import ResponseStore
from tests.support.testing_servers import EMPTY_KINDS, start_server

EXE = Path(sys.executable).parent / "valuelex"
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
PARAMS = {"run_name": "safety", "seed": 1, "concurrency": 2,
          "respondents": [{"model": "openai/fake", "name": "fake", "training": "aligned",
                           "api_base": "http://127.0.0.1:9/v1"}],
          "elicitation": {"prompts": [1, 2], "samples": 1, "max_tokens": 8}}


def valuelex(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *argv], capture_output=True, text=True, timeout=300, env=env or ENV)


def write_params(folder: Path, **changes) -> Path:
    path = folder / "params.in.yaml"
    path.write_text(yaml.safe_dump({**PARAMS, **changes}, sort_keys=False), encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


# -- secrets --------------------------------------------------------------------------------------------------------
def test_scrub_masks_provider_keys_api_key_env_values_and_url_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0123456789")
    monkeypatch.setenv("MY_ODD_NAME", "plain-value-98765")  # named by an api_key_env only
    monkeypatch.setenv("SOME_SERVICE_TOKEN", 'tok"en-with-quote-1')
    monkeypatch.setenv("HOME_DIRECTORY", "not-a-secret-value")
    scrub.register_key_env("MY_ODD_NAME")
    scrub.register_url("http://alice:pa%24%24word-42@10.0.0.1:8000/v1")
    text = ('Incorrect API key provided: sk-openai-0123456789 / plain-value-98765; url http://bob:hunter2222@host/v1 '
            'user alice pass pa$$word-42; not-a-secret-value')
    out = scrub.scrub(text)
    for secret in ("sk-openai-0123456789", "plain-value-98765", "hunter2222", "pa$$word-42"):  # ("alice": too short)
        assert secret not in out
    assert "not-a-secret-value" in out and "http://***@host/v1" in out
    # the same key inside a JSON line (a quote in it is escaped there)
    line = json.dumps({"error": 'echo tok"en-with-quote-1'})
    assert "tok" not in scrub.scrub(line).replace("***", "")


def test_masked_urls_are_unmasked_only_in_a_process_given_them(monkeypatch):
    real = "http://user:s3cret-pass@127.0.0.1:1234/v1"
    masked = scrub.mask_url(real)
    assert masked == "http://***@127.0.0.1:1234/v1"
    assert scrub.unmask_url(masked) == masked
    monkeypatch.setenv(*next(iter(scrub.url_secrets_env([real]).items())))
    assert scrub.unmask_url(masked) == real
    assert "s3cret-pass" not in scrub.scrub(f"error at {real} with s3cret-pass")


def test_a_store_line_never_holds_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-000")
    store = ResponseStore(tmp_path / "r.jsonl")
    rec = store.put({"key": "k", "response": None, "error": "401: bad key sk-ant-secret-value-000"})
    assert "sk-ant" not in (tmp_path / "r.jsonl").read_text() and "sk-ant" not in rec["error"]


# -- HTTP 200 without an answer -------------------------------------------------------------------------------------
def _requests(api_base: str, n: int) -> list[LLMRequest]:
    return [LLMRequest(model="openai/fake", messages=[{"role": "user", "content": f"q{i}"}],
                       deployment={"api_base": api_base}) for i in range(n)]


@pytest.mark.parametrize("kind", EMPTY_KINDS)
def test_an_empty_answer_is_retried_and_never_stored_as_an_answer(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-checked")
    with start_server(fault_rate=1.0, faults=(kind,), max_consecutive_faults=1) as server:
        store = ResponseStore(tmp_path / "r.jsonl")
        runner = BatchRunner(store, retries=2, backoff_base=0.01)
        records = runner.run(_requests(server.api_base, 3), progress=False)
        stats = server.stats()
    assert stats["faults"] == {kind: 3}  # each request got one empty answer first
    assert all(response_text(r).startswith("I value") for r in records)
    assert runner.tally.of("openai/fake").retries == 3
    errors = [r["error"] for r in store.records() if r.get("response") is None]
    assert len(errors) == 3 and all(e.startswith("EmptyAnswer: HTTP 200") for e in errors)
    assert all("rejected_response" in r for r in store.records() if r.get("response") is None)
    assert ResponseStore(store.path).health()["wrong_shape_lines"] == []


def test_answers_that_stay_empty_end_as_one_line_and_nothing_answered(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-checked")
    with start_server(fault_rate=1.0, faults=("null",), max_consecutive_faults=100) as server:
        store = ResponseStore(tmp_path / "r.jsonl")
        with pytest.raises(ProviderError, match=r"all 2 calls failed after retries; last error: EmptyAnswer: HTTP 200 "
                                                r"with null content"):
            BatchRunner(store, retries=1, backoff_base=0.01).run(_requests(server.api_base, 2), progress=False)
    assert len(store) == 0 and len(store.records()) == 4  # 2 requests x (1 try + 1 retry), all errors


# -- a damaged store ------------------------------------------------------------------------------------------------
def _req(word: str) -> LLMRequest:
    return LLMRequest(model="m", messages=[{"role": "user", "content": word}])


def _answer(word: str, text: str) -> str:
    return json.dumps({"key": _req(word).key, "model": "m",
                       "response": {"choices": [{"message": {"content": text}}]}})


def test_a_damaged_store_is_counted_by_line_and_kept_out(tmp_path):
    path = tmp_path / "responses.jsonl"
    k = {w: _req(w).key for w in "abcdefg"}
    lines = [_answer("a", "honesty"),                                      # 1 fine
             "}{ garbage",                                                  # 2 unreadable
             json.dumps({"key": k["b"], "response": "oops"}),              # 3 response a string
             json.dumps({"key": k["c"], "response": {"choices": None}}),   # 4 choices null
             json.dumps({"key": k["d"], "response": {}}),                  # 5 empty response
             _answer("e", ""),                                              # 6 empty content
             _answer("f", "care"),                                          # 7 fine...
             _answer("f", "greed"),                                         # 8 ...answered again differently
             _answer("a", "honesty"),                                       # 9 same answer again: harmless
             json.dumps({"key": k["g"], "response": None, "error": "500"})]  # 10 a failed attempt: history
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = ResponseStore(path)
    health = store.health()
    assert health["lines"] == 10 and health["answered"] == 1
    assert health["unreadable_lines"] == [2]
    assert health["wrong_shape_lines"] == [3, 4, 5, 6]
    assert health["conflicting_keys"] == {k["f"]: [7, 8]}
    assert health["duplicate_answers"] == 1
    assert store.keys() == {k["a"]}
    summary = store.damage_summary()
    assert summary.startswith("responses.jsonl: 7 damaged lines kept out of the analysis")
    assert "lines 2)" in summary and "lines 3, 4, 5, 6" in summary and "lines 7, 8" in summary

    calls = []

    def transport(**kwargs):
        calls.append(kwargs["messages"][0]["content"])
        return {"choices": [{"message": {"role": "assistant", "content": "new answer"}}], "usage": {}}

    runner = BatchRunner(store, retries=0, transport=transport, backoff_base=0.01)
    out = runner.run([_req(w) for w in "abf"], progress=False)
    assert calls == ["b"]  # a is answered; b (wrong shape) is asked again; f (two answers) is not
    assert response_text(out[0]) == "honesty" and response_text(out[1]) == "new answer"
    assert out[2]["response"] is None and "different answers" in out[2]["error"] and "lines 7, 8" in out[2]["error"]


def test_a_store_with_only_a_torn_last_line_is_sound(tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_text(_answer("a", "honesty") + "\n" + _answer("b", "care")[:20], encoding="utf-8")
    store = ResponseStore(path)
    assert store.damage_summary() is None and store.health()["torn_last_line"] is True


# -- one run per run dir --------------------------------------------------------------------------------------------
def test_a_second_run_on_a_locked_run_dir_names_the_holder_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    params = write_params(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from valuelex_utils.rundir import "
         "run_dir_lock\nwith run_dir_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(120)",
         str(run)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        proc = valuelex("run", "--params", str(params), "--run-dir", str(run), "--steps", "01", "--no-report")
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert f"in use by another valuelex run (pid {holder.pid} on host {socket.gethostname()}" in lines[0]
        after = snapshot(run)
        assert {k: v for k, v in after.items() if not k.endswith("params.yaml")} == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    # the holder died without letting go: its lock is gone with it
    from valuelex_utils.rundir import run_dir_lock

    with run_dir_lock(run):
        pass


# -- a step that did not finish -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, said", [("running", "was killed while running"), ("failed", "ended failed"),
                                          ("timeout", "ended timeout")])
def test_a_step_refuses_to_read_from_a_step_that_did_not_finish(status, said, tmp_path):
    from valuelex_utils.params import parse_params
    from valuelex_utils.runner import claim_run_dir

    run = tmp_path / "run"
    params = write_params(tmp_path)
    claim_run_dir(run, parse_params(dict(PARAMS)), params)
    steps = {s: {"status": "ok"} for s in ("01", "02", "03", "04", "05")} | {"06": {"status": status}}
    (run / "manifest.json").write_text(json.dumps({"steps": steps}), encoding="utf-8")
    before = snapshot(run)
    proc = valuelex("run", "--params", str(params), "--run-dir", str(run), "--steps", "07", "--no-report")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"valuelex: error: step 07 reads from step 06, which {said} (manifest.json); rerun it first: "
        "valuelex run --steps 06-07"]
    assert snapshot(run) == before


def test_an_unfinished_step_two_steps_back_is_found_too():
    from valuelex_utils.errors import UserError
    from valuelex_utils.runner import check_needs

    recorded = {"01": {"status": "ok"}, "02": {"status": "running"}, "03": {"status": "ok"}}
    with pytest.raises(UserError, match=r"step 04 reads from step 02, which was killed while running"):
        check_needs(["04"], recorded)
    check_needs(["02", "03", "04"], recorded)  # 02 runs first in this invocation
    check_needs(["05"], recorded)  # the projective test reads no earlier step


# -- run names ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["/tmp/elsewhere", "../../escape", "a/../../b", "~/x"])
def test_a_run_name_that_leaves_outputs_is_refused(name, tmp_path):
    params = write_params(tmp_path, run_name=name)
    proc = valuelex("run", "--params", str(params), "--steps", "01", "--no-report")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "run_name" in lines[0] and "one folder name" in lines[0]
    assert not Path("/tmp/elsewhere").exists() or name != "/tmp/elsewhere"
