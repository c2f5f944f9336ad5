"""Crash safety: `valuelex run --steps 01` killed with SIGKILL at random moments (the CLI and its notebook kernel at
once, as a power cut or the OOM killer would), rerun each time, ends with the same store as an uninterrupted run:
the same keys, the same answers, no key answered twice, no torn line.

The endpoint is a jittery `testing_servers` instrument (answers in 10-70 ms, deterministic per request), so that the
kills land while calls are in flight and writes are happening. Set VALUELEX_CRASH_SEED to replay a sequence of kills.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from valuelex_utils.elicitation import build_requests, run_elicitation
from valuelex_utils.llm import response_text
from valuelex_utils.params import parse_params
from valuelex_utils.llm.store import ResponseStore
from tests.support.testing_servers import start_server

pytestmark = pytest.mark.slow

KEY_ENV = "VALUELEX_CRASH_KEY"
MID_CALL_KILLS = 5


def valuelex_run_args(params: Path, run_dir: Path) -> list[str]:
    exe = Path(sys.executable).parent / "valuelex"
    return [str(exe), "run", "--params", str(params), "--run-dir", str(run_dir), "--steps", "01", "--no-report"]


def line_count(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _children(root: psutil.Process, known: dict) -> list[psutil.Process]:
    """Every descendant of `root` and of the processes already stopped (a stopped parent keeps its children)."""
    out = []
    for p in [root, *known.values()]:
        try:
            out += p.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return out


def kill_tree(proc: subprocess.Popen) -> int:
    """SIGKILL the CLI and every process under it (the papermill kernel) in one sweep; returns how many died."""
    try:
        root = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        return 0
    # Freeze the tree first (SIGSTOP), re-listing until no new process appears, then kill it: a process the CLI or
    # a step spawns between a listing and the kill would otherwise live on, orphaned, holding the run dir's lock
    # (seen on a loaded machine: the next run ended at once with exit 2, "in use").
    victims: dict[int, psutil.Process] = {}
    while True:
        found = [root, *_children(root, victims)]
        new = [p for p in found if p.pid not in victims]
        if not new:
            break
        for p in new:
            victims[p.pid] = p
            try:
                p.send_signal(signal.SIGSTOP)
            except psutil.NoSuchProcess:
                pass
    victims = list(victims.values())
    for p in victims:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait(30)
    gone, alive = psutil.wait_procs(victims, timeout=30)
    assert not alive, f"survivors after SIGKILL: {alive}"
    return len(victims)


def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    seed = int(os.environ.get("VALUELEX_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    print(f"\nVALUELEX_CRASH_SEED={seed}")
    monkeypatch.setenv(KEY_ENV, "sk-crash-test")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with start_server(delay=0.01, jitter=0.06) as server:
        data = {"run_name": "crash", "seed": 3, "concurrency": 4, "timeout": 20, "retries": 3,
                "respondents": [{"model": f"openai/fake-{c}", "training": "aligned", "api_base": server.api_base,
                                 "api_key_env": KEY_ENV} for c in "abc"],
                "elicitation": {"samples": 4, "max_tokens": 16}}
        params = parse_params(data)
        total = len(build_requests(params))  # 3 models x 15 prompts x 4 samples = 180
        params_file = tmp_path / "crash.yaml"
        params_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

        # the uninterrupted run: the same step code, start to end
        asyncio.run(run_elicitation(params, str(tmp_path / "reference"), progress=False))

        run_dir = tmp_path / "run"
        store = run_dir / "responses.jsonl"
        kills = []
        # one kill at a random moment of start-up (before or around the first call), then kills mid-calls
        plan = ["startup"] + ["mid-calls"] * MID_CALL_KILLS
        for moment in plan:
            before = line_count(store)
            err = tmp_path / f"kill{len(kills)}.err"  # what a run that ends by itself said (exit 2: why)
            proc = subprocess.Popen(valuelex_run_args(params_file, run_dir), stdout=subprocess.DEVNULL,
                                    stderr=err.open("w"), env=env)
            if moment == "startup":
                time.sleep(rng.uniform(0.2, 4.0))
            else:
                target = before + rng.randint(1, 25)
                deadline = time.time() + 300
                while line_count(store) < target and proc.poll() is None and time.time() < deadline:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.05))
            assert proc.poll() is None, (f"the run ended by itself before the {moment} kill (exit {proc.returncode}): "
                                         f"{err.read_text()[-1500:]}")
            killed = kill_tree(proc)
            assert proc.returncode == -signal.SIGKILL
            kills.append({"moment": moment, "lines_before": before, "lines_after": line_count(store),
                          "processes": killed})
        assert all(k["lines_after"] > k["lines_before"] for k in kills if k["moment"] == "mid-calls")
        assert line_count(store) < total, "the kills should leave work for the rerun"

        answered_before_rerun = len(ResponseStore(store))
        final = subprocess.run(valuelex_run_args(params_file, run_dir), capture_output=True, text=True, env=env,
                               timeout=900)
        assert final.returncode == 0, final.stderr[-3000:]

    # no torn line anywhere: every line of every append-only file is one whole JSON object
    for name in ("responses.jsonl", "calls.jsonl"):
        raw = (run_dir / name).read_bytes()
        assert raw.endswith(b"\n")
        for line in raw.splitlines():
            json.loads(line)
    json.loads((run_dir / "manifest.json").read_text())
    yaml.safe_load((run_dir / "params.yaml").read_text())

    ref_records = [r for r in ResponseStore(tmp_path / "reference" / "responses.jsonl").records() if r.get("response")]
    records = [r for r in ResponseStore(store).records() if r.get("response")]
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)), "a key was answered twice"
    assert set(keys) == {r["key"] for r in ref_records} == {r.key for r in build_requests(params)}
    assert {r["key"]: response_text(r) for r in records} == {r["key"]: response_text(r) for r in ref_records}

    # the step's table is the same as the uninterrupted run's
    cols = ["respondent", "prompt_id", "sample", "key", "text"]
    got = pd.read_parquet(run_dir / "elicitation.parquet")[cols].sort_values("key").reset_index(drop=True)
    ref = pd.read_parquet(tmp_path / "reference" / "elicitation.parquet")[cols]
    ref = ref.sort_values("key").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref)

    # the last run called only for what the killed runs had not stored
    last = json.loads((run_dir / "calls.jsonl").read_text().splitlines()[-1])["models"]
    assert sum(m["calls"] for m in last.values()) == total - answered_before_rerun
    assert sum(m["cached"] for m in last.values()) == answered_before_rerun
    print(f"kills survived: {len(kills)} ({sum(k['moment'] == 'mid-calls' for k in kills)} mid-calls); "
          f"answers stored before the rerun {answered_before_rerun}/{total}; {kills}")


def test_a_step_killed_midway_is_recorded_as_running_and_a_later_step_refuses_it(tmp_path):
    """Issue 20: kill -9 during a step used to leave the "ok" of an earlier run in the manifest, and the next step then
    read a half-written product. Now: the manifest says "running", `--steps 02` refuses in one line naming step 01,
    and the rerun of 01 counts the calls the killed run made (`unlogged_calls`, from the store) in the manifest."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", KEY_ENV: "sk-crash-test"}
    with start_server(delay=0.05, jitter=0.1) as server:
        data = {"run_name": "killed", "seed": 3, "concurrency": 2, "timeout": 20, "retries": 1, "step_timeout": 600,
                "respondents": [{"model": "openai/fake-k", "training": "aligned", "api_base": server.api_base,
                                 "api_key_env": KEY_ENV}],
                "elicitation": {"samples": 4, "max_tokens": 16},
                "lexicon": {"min_respondents": 1}}  # one respondent: else the checks between steps refuse step 02
        params_file = tmp_path / "killed.yaml"
        params_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        run_dir = tmp_path / "run"
        store = run_dir / "responses.jsonl"
        proc = subprocess.Popen(valuelex_run_args(params_file, run_dir), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 600
        while line_count(store) < 5 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "step 01 ended before the kill"
        kill_tree(proc)
        killed_lines = line_count(store)
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["steps"]["01"]["status"] == "running"

        exe = Path(sys.executable).parent / "valuelex"
        refused = subprocess.run([str(exe), "run", "--params", str(params_file), "--run-dir", str(run_dir), "--steps",
                                  "02", "--no-report"], capture_output=True, text=True, env=env, timeout=300)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [
            "valuelex: error: step 02 reads from step 01, which was killed while running (manifest.json); "
            "rerun it first: valuelex run --steps 01-02"]

        rerun = subprocess.run(valuelex_run_args(params_file, run_dir), capture_output=True, text=True, env=env,
                               timeout=900)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["steps"]["01"]["status"] == "ok"
    counts = manifest["calls"]["01_elicit"]["openai/fake-k"]
    killed_answers = sum(1 for r in ResponseStore(store).records()[:killed_lines] if r.get("response") is not None)
    assert counts["unlogged_calls"] == killed_answers > 0
    assert counts["calls"] + counts["unlogged_calls"] == 60  # 15 prompts x 4 samples, each paid for once
    assert manifest["store"]["responses.jsonl"]["answered"] == 60


PRODUCTS = {"02": ["descriptors.parquet", "lexicon.csv", "matrix.csv"], "03": ["factors.json", "loadings.csv"],
            "04": ["taxonomy.yaml", "clusters.csv"], "05": ["completions.parquet"],
            "06": ["scores.parquet", "value_profiles.csv", "reliability.json"], "07": ["comparison.csv"]}


def _readable(path: Path) -> None:
    if path.suffix == ".parquet":
        pd.read_parquet(path)
    elif path.suffix == ".csv":
        pd.read_csv(path)
    elif path.suffix == ".yaml":
        yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        json.loads(path.read_text(encoding="utf-8"))


def test_sigkill_at_a_random_moment_of_every_step_and_the_report_then_rerun_completes(tmp_path):
    """Issue 20, point 6: after step 01, each of steps 02-07 is killed (CLI, step process and kernel) at a random
    moment, then rerun: it completes, its products are readable, the manifest says ok, and the store holds each key
    once (no call repeated). Then `valuelex report` is killed at a random moment: the report folder is either the old
    one or absent, never half-written, and a rerun builds it. VALUELEX_CRASH_SEED replays the moments."""
    seed = int(os.environ.get("VALUELEX_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    print(f"\nVALUELEX_CRASH_SEED={seed}")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", KEY_ENV: "sk-crash-test"}
    exe = Path(sys.executable).parent / "valuelex"
    with start_server(delay=0.01) as server:
        data = {"run_name": "later", "seed": 3, "concurrency": 4, "timeout": 20, "retries": 1, "step_timeout": 900,
                "respondents": [{"model": f"openai/fake-{c}", "training": "aligned", "api_base": server.api_base,
                                 "api_key_env": KEY_ENV} for c in "abc"],
                "elicitation": {"samples": 2, "max_tokens": 16},
                "lexicon": {"min_frequency": 2, "min_respondents": 1, "unit": "answer"},
                # the fake answers have no structure: K fixed, so that 04-07 have a taxonomy to work on
                "factors": {"pa_iter": 5, "n_factors": 2, "threshold": 0.05}}
        params_file = tmp_path / "later.yaml"
        params_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        run_dir = tmp_path / "run"

        def run(step: str) -> subprocess.Popen:
            return subprocess.Popen([str(exe), "run", "--params", str(params_file), "--run-dir", str(run_dir),
                                     "--steps", step, "--no-report"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, env=env)

        first = run("01")
        assert first.wait(900) == 0, first.stderr.read()[-2000:]
        kills = []
        for step in ("02", "03", "04", "05", "06", "07"):
            proc = run(step)
            delay = rng.uniform(1.0, 20.0)
            time.sleep(delay)
            ended_first = proc.poll() is not None
            if not ended_first:
                kill_tree(proc)
            steps_done = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["steps"]
            assert step in steps_done, (step, proc.returncode, proc.stderr.read()[-1500:] if ended_first else "")
            status = steps_done[step]["status"]
            kills.append({"step": step, "delay": round(delay, 1), "killed": not ended_first, "status": status})
            assert status == ("ok" if ended_first else "running")
            rerun = subprocess.run([str(exe), "run", "--params", str(params_file), "--run-dir", str(run_dir),
                                    "--steps", step, "--no-report"], capture_output=True, text=True, env=env,
                                   timeout=900)
            assert rerun.returncode == 0, (kills, rerun.stderr[-2000:])
            manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["steps"][step]["status"] == "ok"
            for name in PRODUCTS[step]:
                _readable(run_dir / name)
        report = [str(exe), "report", str(run_dir)]
        first_report = subprocess.run(report, capture_output=True, text=True, env=env, timeout=900)
        assert first_report.returncode == 0, first_report.stderr[-2000:]
        before = sorted(p.name for p in (run_dir / "report").iterdir())
        proc = subprocess.Popen(report, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        delay = rng.uniform(0.5, 8.0)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            kill_tree(proc)
        kills.append({"step": "report", "delay": round(delay, 1), "killed": killed})
        left = run_dir / "report"  # the old report whole, or (killed between the two renames of the swap) none
        assert not left.exists() or sorted(p.name for p in left.iterdir()) == before
        again = subprocess.run(report, capture_output=True, text=True, env=env, timeout=900)
        assert again.returncode == 0, again.stderr[-2000:]
        assert sorted(p.name for p in (run_dir / "report").iterdir()) == before
        assert not list(run_dir.glob(".report.*.tmp"))  # the killed build's staging folder is cleaned up
        print("kills:", kills)
    for name in ("responses.jsonl", "completions.jsonl"):
        lines = (run_dir / name).read_text(encoding="utf-8").splitlines()
        keys = [json.loads(ln)["key"] for ln in lines if json.loads(ln).get("response") is not None]
        assert keys and len(keys) == len(set(keys)), name  # every answer stored once: no call repeated
    assert len([1 for ln in (run_dir / "responses.jsonl").read_text(encoding="utf-8").splitlines()
                if json.loads(ln).get("response") is not None]) == 90  # 3 models x 15 prompts x 2 samples
