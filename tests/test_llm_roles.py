"""The role models (extraction judgment, namer, LLM judge) call through the same layer as the respondents.

Against real endpoints: the `testing_servers` instrument (a deterministic judge: verdicts for judge prompts, JSON
lists for judgment prompts) and, in the slow tests, a real llama-cpp-python server and the embedded models. No mock
objects: what is checked is what reached the endpoint, what the store holds and what the tally says.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from valuelex_utils import cli
from valuelex_utils.llm import response_text
from valuelex_utils.params import parse_params
from valuelex_utils.rundir import REPO_ROOT
from valuelex_utils.llm.store import ResponseStore
from tests.support.testing_servers import start_server

SCORE_ROWS = [("a", "I like...", "helping people learn new things."), ("b", "Trust is...", "earned by keeping promises."),
              ("c", "I hate...", "liars who cheat their friends."), ("d", "My goal...", "to be accurate and fair.")]


def _completions_csv(path: Path) -> Path:
    pd.DataFrame(SCORE_ROWS, columns=["id", "stem", "completion"]).to_csv(path, index=False)
    return path


def _role_records(store: Path, role: str) -> list[dict]:
    return [r for r in ResponseStore(store).records() if (r.get("meta") or {}).get("role") == role]


def test_dry_run_of_the_paper_study_prints_the_role_models_calls_and_cost_per_step(capsys):
    assert cli.main(["run", "--params", str(REPO_ROOT / "params" / "paper_models.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0][:2] in ("02", "04", "06", "07"):
            rows[parts[0]] = parts[1:]
    assert set(rows) == {"02_lexicon", "04_taxonomy", "06_score", "07_compare_mft_schwartz"}, out
    for step, (model, calls, prompt, completion, cost) in rows.items():
        assert model == "openai/gpt-4o" and int(calls) > 0 and int(prompt) > int(calls) * 100
        assert float(cost) > 0, f"{step} has no price"
    # the judge scores every completion once per system (06: the listed ones, 07: the rest), plus the 30 annotated items
    # of the reliability check and a 10% retest
    from valuelex_utils.params import load_params
    from valuelex_utils.projective import build_requests

    n = len(build_requests(load_params(REPO_ROOT / "params" / "paper_models.yaml")))
    systems = load_params(REPO_ROOT / "params" / "paper_models.yaml").scoring.systems  # the run's own and the paper's
    with_labels = sum(s != "run" for s in systems)  # only a shipped system has labels to check the judge against
    assert int(rows["06_score"][1]) == len(systems) * (n + round(0.1 * n)) + 30 * with_labels
    rest = [s for s in ("schwartz", "valuelex", "mft") if s not in systems]  # 07 reuses 06's and adds these
    assert int(rows["07_compare_mft_schwartz"][1]) == len(rest) * (n + round(0.1 * n) + 30)
    assert "note: 02_lexicon" in out and "estimated" in out


def test_score_and_extract_cli_cache_beside_the_output_so_a_rerun_sends_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-local")  # the OpenAI client wants some key, even for a local server
    inp = _completions_csv(tmp_path / "in.csv")
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in
                               enumerate(["Honesty, Carrots, Respect", "I value fairness and kindness."])))
    with start_server() as server:
        score = ["score", str(inp), "--system", "mft", "--scorer", "llm", "--judge", "openai/judge",
                 "--api-base", server.api_base, "--api-key-env", "JUDGE_KEY", "-o", str(tmp_path / "out" / "scores.csv")]
        extract = ["extract", str(answers), "-o", str(tmp_path / "out" / "words.jsonl"), "--judge", "openai/judge",
                   "--api-base", server.api_base, "--api-key-env", "JUDGE_KEY"]
        assert cli.main(score) == 0 and cli.main(extract) == 0
        first = server.stats()
        capsys.readouterr()
        assert cli.main(score) == 0 and cli.main(extract) == 0
        again = server.stats()
    err = capsys.readouterr().err
    assert first["requests"] > len(SCORE_ROWS) and again["requests"] == first["requests"], "a rerun sent a request"
    assert "judge openai/judge: 0 calls" in err and "extraction judge openai/judge: 0 calls" in err
    cache = tmp_path / "out" / "valuelex-cache"
    judged = _role_records(cache / "responses.jsonl", "judge")
    assert len(judged) == len({r["key"] for r in judged}) == first["answered"] - 1  # the other one: the judgment
    words = [json.loads(line)["descriptors"] for line in (tmp_path / "out" / "words.jsonl").read_text().splitlines()]
    assert words == [["honesty", "respect"], ["fairness", "kindness"]]  # the instrument keeps its VALUE_WORDS
    steps = [json.loads(line)["step"] for line in (cache / "calls.jsonl").read_text().splitlines()]
    assert set(steps) == {"score", "extract"}
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert scores["judge"].eq("openai/judge").all() and scores["Care"].between(0, 6).all()


def test_role_models_served_behind_a_router_get_the_studys_endpoints(tmp_path, monkeypatch):
    """`endpoints` with two api_bases: the namer's and the judge's calls are load-balanced by the Router, stored in the
    run's store and tallied in its calls.jsonl under their steps."""
    from valuelex_utils.evaluation import score_run
    from valuelex_utils.taxonomy.naming import build_messages, namer_from_params
    from valuelex_utils.runner import call_counts
    from valuelex_utils.rundir import RunDir

    monkeypatch.setenv("JUDGE_KEY", "sk-local")
    with start_server() as s1, start_server() as s2:
        params = parse_params({
            "run_name": "roles", "seed": 1, "concurrency": 4,
            "respondents": [{"model": "openai/fake", "training": "aligned", "api_base": s1.api_base}],
            "taxonomy": {"namer": "openai/judge"},
            "scoring": {"scorer": "llm", "judge": "openai/judge", "judge_reliability_items": 4},
            "endpoints": {"openai/judge": {"api_base": [s1.api_base, s2.api_base], "api_key_env": "JUDGE_KEY"}}})
        rd = RunDir.at(tmp_path)
        pd.DataFrame({"key": [f"k{i}" for i in range(12)], "respondent": "fake", "stem": "I like...",
                      "completion": [f"helping person {i}" for i in range(12)]}).to_parquet(rd.completions)
        namer = namer_from_params(params, tmp_path)
        names = namer.batch([build_messages("dimension", [f"word{i}", "honesty"]) for i in range(6)])
        run = score_run(params, str(tmp_path))
        per_server = [s.stats()["per_model"].get("judge", 0) for s in (s1, s2)]
    assert len(names) == 6 and all(names)
    assert min(per_server) > 0, f"the Router sent every call to one endpoint: {per_server}"
    judged = _role_records(rd.responses, "judge")
    assert sum(per_server) == len(judged) + len(_role_records(rd.responses, "namer"))
    assert run.scores["judge"].eq("openai/judge").all() and len(run.scores) == 12
    counts = call_counts(rd)
    assert counts["04_taxonomy"]["openai/judge"]["calls"] == 6
    assert counts["06_score"]["openai/judge"]["calls"] == len(judged)


def test_step_02_applies_the_judgment_to_the_rules_words_and_keeps_what_it_dropped(tmp_path, monkeypatch):
    """The paper's f: the rules, then the judge. The lexicon and matrix hold what the judge kept; descriptors.parquet
    every word of the rules with the verdict; the verdicts are stored raw and asked once."""
    from valuelex_utils import lexicon
    from valuelex_utils.extraction import extract_descriptors
    from valuelex_utils.responses import respondent_table
    from valuelex_utils.rundir import RunDir

    monkeypatch.setenv("JUDGE_KEY", "sk-local")
    texts = ["1. Honesty\n2. Loyalty\n3. Frugality\n4. Patience", "Honesty, Carrots, Respect",
             "I value honesty, thoroughness and kindness.", "- Integrity\n- Wisdom\n- Punctuality\n- Courage"]
    with start_server() as server:
        params = parse_params({
            "run_name": "judged", "seed": 2, "respondents": [
                {"model": f"openai/fake-{c}", "name": f"fake-{c}", "training": t} for c, t in
                (("a", "aligned"), ("b", "pretrained"))],
            "extraction": {"llm_judge": "openai/judge"}, "lexicon": {"min_frequency": 1, "min_respondents": 1},
            "endpoints": {"openai/judge": {"api_base": server.api_base, "api_key_env": "JUDGE_KEY"}}})
        rd = RunDir.at(tmp_path)
        people = respondent_table(params)
        rows = [{**person, "prompt_id": p, "sample": 0, "key": f"{person['respondent']}-{p}", "text": text}
                for person in people.to_dict("records") for p, text in enumerate(texts)]
        pd.DataFrame(rows).to_parquet(rd.elicitation)
        step = lexicon.run_lexicon(params, str(tmp_path), extract_descriptors)
        again = lexicon.run_lexicon(params, str(tmp_path), extract_descriptors)
        stats = server.stats()
    dropped = {"frugality", "carrots", "thoroughness", "punctuality"}
    saved = pd.read_parquet(rd.descriptors)
    assert set(saved.loc[saved["judge_verdict"] == "dropped", "word"]) == dropped
    assert set(saved.loc[saved["judge_kept"], "word"]).isdisjoint(dropped) and len(saved) == len(step.rules_descriptors)
    assert dropped <= set(step.rules_lexicon["word"]) and dropped.isdisjoint(pd.read_csv(rd.lexicon)["word"])
    assert dropped.isdisjoint(pd.read_csv(rd.matrix, index_col=0).columns)
    assert set(lexicon.dropped_words(step.rules_descriptors)["word"]) == dropped
    table = lexicon.side_by_side(step.rules_lexicon, step.lexicon, n=5)
    assert list(table.columns) == ["rank", "rules_only", "rules_frequency", "judge_kept", "with_judgment",
                                   "judged_frequency"]
    assert step.counts["unique_words_dropped_by_judge"] == 4 and "dropped 4" in lexicon.judgment_summary(step)
    assert stats["answered"] == 1 and again.counts == step.counts, "the rerun asked the judge again"
    verdicts = _role_records(rd.responses, "extraction judge")
    assert len(verdicts) == 1 and json.loads(response_text(verdicts[0])) == sorted(
        set(step.rules_lexicon["word"]) - dropped, key=list(step.rules_descriptors["word"].drop_duplicates()).index)
    steps = [json.loads(line)["step"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert steps == ["02_lexicon", "02_lexicon"]


def test_a_batch_without_a_readable_verdict_keeps_its_words_and_says_so():
    from valuelex_utils import lexicon

    rules = pd.DataFrame({"respondent": ["r"] * 3, "word": ["honesty", "spoon", "care"], "key": ["k"] * 3})
    judged = lexicon.judge_descriptors(rules, {"honesty": True, "spoon": False, "care": None})
    assert judged["judge_verdict"].tolist() == ["kept", "dropped", "unreadable"]
    assert judged["judge_kept"].tolist() == [True, False, True]
    assert lexicon.judge_descriptors(rules, None)["judge_verdict"].eq("not asked").all()


# -- kill -9 during step 06 with the LLM judge ----------------------------------------------------------------------
def _judge_study(respondent_base: str, judge_base: str) -> dict:
    return {"run_name": "judge-crash", "seed": 5, "concurrency": 4, "timeout": 20, "retries": 2,
            "respondents": [{"model": f"openai/fake-{c}", "name": f"fake-{c}", "training": "aligned",
                             "api_base": respondent_base, "api_key_env": "JUDGE_KEY"} for c in "ab"],
            "projective": {"samples": 2, "max_tokens": 16},
            "scoring": {"scorer": "llm", "judge": "openai/judge", "judge_reliability_items": 10, "n_bootstrap": 20},
            "endpoints": {"openai/judge": {"api_base": judge_base, "api_key_env": "JUDGE_KEY"}}}


def _prepare_step_05(tmp_path: Path, name: str, data: dict) -> tuple[Path, Path]:
    """A run dir with its params and step 05 done (fake respondents: fast), ready for step 06."""
    import asyncio

    from valuelex_utils.projective import run_projective
    from valuelex_utils.runner import claim_run_dir

    params_file = tmp_path / f"{name}.yaml"
    params_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    run_dir = tmp_path / name
    claim_run_dir(run_dir, parse_params(data), params_file)
    asyncio.run(run_projective(parse_params(data), str(run_dir), progress=False))
    return params_file, run_dir


def _step_06(params_file: Path, run_dir: Path) -> list[str]:
    import sys

    exe = Path(sys.executable).parent / "valuelex"
    return [str(exe), "run", "--params", str(params_file), "--run-dir", str(run_dir), "--steps", "06", "--no-report"]


@pytest.mark.slow
def test_kill_9_during_step_06_with_the_llm_judge_then_rerun_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """Step 06 killed with SIGKILL (CLI and kernel) while judge calls are in flight, three times, then rerun: the
    judge's answers in the store are those of an uninterrupted run, one per key; the endpoint answered a request a
    second time only when its first answer was in flight at a kill (never one that was stored)."""
    import os
    import random
    import signal
    import subprocess
    import time

    from test_crash_safety import kill_tree, line_count

    seed = int(os.environ.get("VALUELEX_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    print(f"\nVALUELEX_CRASH_SEED={seed}")
    monkeypatch.setenv("JUDGE_KEY", "sk-local")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with start_server() as respondents, start_server(delay=0.03, jitter=0.08) as ref_judge, \
            start_server(delay=0.03, jitter=0.08) as judge:
        ref_file, ref_dir = _prepare_step_05(tmp_path, "reference", _judge_study(respondents.api_base,
                                                                                 ref_judge.api_base))
        done = subprocess.run(_step_06(ref_file, ref_dir), capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        reference = ref_judge.stats()

        params_file, run_dir = _prepare_step_05(tmp_path, "killed", _judge_study(respondents.api_base,
                                                                                judge.api_base))
        store = run_dir / "responses.jsonl"
        kills = []
        for _ in range(3):
            before = line_count(store)
            proc = subprocess.Popen(_step_06(params_file, run_dir), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=env)
            target = before + rng.randint(1, 40)
            deadline = time.time() + 600
            while line_count(store) < target and proc.poll() is None and time.time() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, f"step 06 ended by itself before the kill (exit {proc.returncode})"
            kill_tree(proc)
            assert proc.returncode == -signal.SIGKILL
            time.sleep(0.5)  # answers already on their way are counted by the endpoint
            seen = judge.stats()
            stored = len(_role_records(store, "judge"))
            kills.append({"stored": stored, "answered_by_endpoint": seen["answered"]})
        stored_before_rerun = kills[-1]["stored"]
        lost_in_flight = kills[-1]["answered_by_endpoint"] - stored_before_rerun
        final = subprocess.run(_step_06(params_file, run_dir), capture_output=True, text=True, env=env, timeout=900)
        assert final.returncode == 0, final.stderr[-3000:]
        after = judge.stats()

    got = _role_records(store, "judge")
    ref = _role_records(ref_dir / "responses.jsonl", "judge")
    keys = [r["key"] for r in got if r.get("response") is not None]
    assert len(keys) == len(set(keys)), "a judge request was answered (stored) twice"
    assert set(keys) == {r["key"] for r in ref}
    assert {r["key"]: response_text(r) for r in got} == {r["key"]: response_text(r) for r in ref}
    # the uninterrupted run asked each request once; the killed runs asked again only what was in flight at a kill
    assert reference["answered"] == reference["distinct_answered"] == len(ref)
    assert after["distinct_answered"] == len(keys)
    assert after["answered_again"] <= lost_in_flight <= 3 * 4, (after, kills)
    assert stored_before_rerun < len(keys), "the kills should leave judge calls for the rerun"
    last = json.loads((run_dir / "calls.jsonl").read_text().splitlines()[-1])
    assert last["step"] == "06_score"
    judge_tally = {k: v for k, v in last["models"].items() if k == "openai/judge"}
    cols = ["key", "Competence", "Character", "Integrity"]
    a = pd.read_parquet(run_dir / "scores.parquet")
    b = pd.read_parquet(ref_dir / "scores.parquet")
    pd.testing.assert_frame_equal(a.sort_values("key")[[c for c in cols if c in a]].reset_index(drop=True),
                                  b.sort_values("key")[[c for c in cols if c in b]].reset_index(drop=True))
    print(f"judge calls: uninterrupted {reference['answered']}; killed x3 then rerun: {len(keys)} keys, "
          f"{stored_before_rerun} stored before the rerun, {lost_in_flight} answered but lost in flight at the kills, "
          f"{after['answered_again']} answered twice; last batch tally {judge_tally}; kills {kills}")


# -- the same roles against a real llama-cpp-python server ----------------------------------------------------------
@pytest.mark.slow
def test_judgment_namer_and_judge_on_a_real_llama_cpp_server_then_a_rerun_calls_nothing(tmp_path, monkeypatch):
    """`extraction.llm_judge`, `taxonomy.namer` and `scoring.judge` all `openai/smollm2` served by llama-cpp-python's
    OpenAI-compatible server (`endpoints`): steps 02 and 06 through `valuelex run`, the namer through the caller
    notebook 04 uses; every answer lands in the run's store, each step's calls in the manifest, and a rerun of the
    same steps sends the server nothing."""
    import subprocess
    import sys

    from conftest import start_llama_server

    from valuelex_utils.llm.embedded import EMBEDDED
    from valuelex_utils.taxonomy.naming import ClusterSpec, name_clusters, namer_from_params

    monkeypatch.setenv("JUDGE_KEY", "sk-local")
    env = {**__import__("os").environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc, llama = start_llama_server(EMBEDDED["smollm2-135m-instruct"].locate(), "smollm2", n_ctx=4096)
    try:
        with start_server() as respondents:
            data = {"run_name": "llama-roles", "seed": 3, "concurrency": 4, "timeout": 300, "retries": 1,
                    "respondents": [{"model": f"openai/fake-{c}", "name": f"fake-{c}", "training": "aligned",
                                     "api_base": respondents.api_base, "api_key_env": "JUDGE_KEY"} for c in "ab"],
                    "elicitation": {"prompts": [1, 2], "samples": 1, "max_tokens": 16},
                    "extraction": {"llm_judge": "openai/smollm2"},
                    "taxonomy": {"namer": "openai/smollm2"},
                    "projective": {"stems": [1], "samples": 1, "max_tokens": 16},
                    "scoring": {"scorer": "llm", "judge": "openai/smollm2", "judge_max_tokens": 48,
                                "judge_reliability_items": 1, "n_bootstrap": 10},
                    "endpoints": {"openai/smollm2": {"api_base": llama, "api_key_env": "JUDGE_KEY"}}}
            params_file = tmp_path / "p.yaml"
            params_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            run_dir = tmp_path / "run"
            exe = Path(sys.executable).parent / "valuelex"
            args = [str(exe), "run", "--params", str(params_file), "--run-dir", str(run_dir), "--steps", "01,02,05,06",
                    "--no-report"]
            first = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
            assert first.returncode == 0, first.stderr[-3000:]
            params = parse_params(data)
            naming = name_clusters([ClusterSpec(0, ["honesty", "truthfulness", "candor"])],
                                   namer_from_params(params, run_dir))
            manifest = json.loads((run_dir / "manifest.json").read_text())["calls"]
            lines_before = (run_dir / "responses.jsonl").read_text().count("\n")
            tallies_before = (run_dir / "calls.jsonl").read_text().count("\n")
            again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
            assert again.returncode == 0, again.stderr[-3000:]
            naming_again = name_clusters([ClusterSpec(0, ["honesty", "truthfulness", "candor"])],
                                         namer_from_params(params, run_dir))
    finally:
        proc.terminate()
        proc.wait(30)
    store = run_dir / "responses.jsonl"
    for role in ("extraction judge", "namer", "judge"):
        records = _role_records(store, role)
        assert records and all(r["model"] == "openai/smollm2" and r["response"] for r in records), role
        assert len({r["key"] for r in records}) == len(records)
    assert manifest["02_lexicon"]["openai/smollm2"]["calls"] >= 1
    assert manifest["06_score"]["openai/smollm2"]["calls"] >= 4  # 2 completions, 1 annotated item, 1 retest
    assert naming.get(0).model == "openai/smollm2" and naming_again.get(0).name == naming.get(0).name
    assert store.read_text().count("\n") == lines_before, "the rerun stored new answers"
    rerun = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()[tallies_before:]]
    assert {e["step"] for e in rerun} >= {"01_elicit", "02_lexicon", "04_taxonomy", "05_projective", "06_score"}
    assert sum(m["calls"] for e in rerun for m in e["models"].values()) == 0
    assert sum(m["cached"] for e in rerun for m in e["models"].values()) > 0
    descriptors = pd.read_parquet(run_dir / "descriptors.parquet")
    assert "judge_kept" in descriptors and len(descriptors)
    print(f"\nllama server roles: manifest calls {json.dumps(manifest)}; "
          f"judge kept {int(descriptors.judge_kept.sum())}/{len(descriptors)} word uses; name {naming.get(0).name!r}")
