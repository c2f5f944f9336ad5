"""Bad input: every malformed input to every verb is one clear line on stderr and exit code 2, with nothing in an
existing run dir changed (bytes and mtimes).

A table of cases, each run through the real CLI entry point (`valuelex_utils.cli.main`); a few are also run as the
installed `valuelex` executable to check the process's own exit code and stderr.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from valuelex_utils import cli
from valuelex_utils.params import parse_params
from valuelex_utils.runner import claim_run_dir

VALID = {
    "run_name": "badinput", "seed": 1, "concurrency": 2,
    "respondents": [{"model": "openai/fake", "name": "fake", "training": "aligned",
                     "api_base": "http://127.0.0.1:9/v1",
                     "configs": [{"temperature": t} for t in (0.2, 0.6, 1.0)]}],  # 3 respondents: a matrix for 03
    "elicitation": {"prompts": [1, 2], "samples": 1, "max_tokens": 8},
}


def _variant(**changes) -> dict:
    data = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split("__")
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return data


_DROP = object()


def _respondent(**changes) -> dict:
    r = {**VALID["respondents"][0], **changes}
    return {k: v for k, v in r.items() if v is not _DROP}


def _snapshot(*roots: Path) -> dict[str, tuple[bytes | None, int]]:
    snap: dict[str, tuple[bytes | None, int]] = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            st = p.stat()
            snap[str(p)] = (p.read_bytes() if p.is_file() else None, st.st_mtime_ns)
        snap[str(root)] = (None, root.stat().st_mtime_ns)
    return snap


@pytest.fixture(scope="module")
def protected(tmp_path_factory) -> dict[str, Path]:
    """An existing run dir with data in it, and a folder that is not a run dir: no bad input may touch either."""
    base = tmp_path_factory.mktemp("protected")
    run = base / "run"
    params = parse_params(copy.deepcopy(VALID), "valid")
    src = base / "valid.yaml"
    src.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    claim_run_dir(run, params, src)
    rec = {"key": "k1", "model": "openai/fake", "response": {"choices": [{"message": {"content": "honesty"}}]}}
    (run / "responses.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    (run / "calls.jsonl").write_text(json.dumps({"step": "01_elicit", "models": {}}) + "\n", encoding="utf-8")
    (run / "manifest.json").write_text(json.dumps({"run_name": "badinput", "steps": {}, "calls": {}}), encoding="utf-8")
    (run / "notebooks").mkdir()
    (run / "notebooks" / "01_elicit.ipynb").write_text("{}", encoding="utf-8")
    (run / "matrix.csv").write_text("respondent,honesty,care,truth\na,1,0,2\nb,0,1,1\nc,2,2,0\n", encoding="utf-8")
    other = base / "not_a_run"
    other.mkdir()
    (other / "notes.txt").write_text("my own notes\n", encoding="utf-8")
    return {"base": base, "run": run, "other": other, "valid": src}


class Inputs:
    """Writes the bad input files of one case into a fresh folder."""

    def __init__(self, root: Path, protected: dict[str, Path]) -> None:
        self.root = root
        self.run = protected["run"]
        self.other = protected["other"]
        self.valid = protected["valid"]

    def text(self, name: str, text: str) -> str:
        p = self.root / name
        p.write_text(text, encoding="utf-8")
        return str(p)

    def raw(self, name: str, data: bytes) -> str:
        p = self.root / name
        p.write_bytes(data)
        return str(p)

    def params(self, data: object) -> str:
        return self.text("params.yaml", yaml.safe_dump(data, sort_keys=False))

    def missing(self, name: str = "missing.yaml") -> str:
        return str(self.root / name)

    def out(self, name: str) -> str:
        return str(self.root / name)


def run_args(params: Callable[[Inputs], str], *extra: str) -> Callable[[Inputs], list[str]]:
    return lambda f: ["run", "--params", params(f), "--run-dir", str(f.run), *extra]


def _broken_run(f: Inputs) -> str:
    run = f.root / "broken_run"
    (run / "notebooks").mkdir(parents=True)
    (run / "manifest.json").write_text('{"run_name": "x", "ste', encoding="utf-8")
    return str(run)


SCORE_CSV = "id,stem,completion\n1,I like...,I like helping people honestly.\n"

# (id, argv builder, a phrase the one line must contain (lower case))
CASES: list = [
    # -- valuelex run: the params file ------------------------------------------------------------------------------
    ("params-missing", run_args(lambda f: f.missing()), "not found"),
    ("params-is-a-folder", run_args(lambda f: str(f.root)), "is a folder"),
    ("yaml-unclosed-bracket", run_args(lambda f: f.text("p.yaml", "run_name: x\nrespondents: [\n")), "yaml syntax"),
    ("yaml-bad-indent", run_args(lambda f: f.text("p.yaml", "run_name: x\n  seed: 1\n bad: [1\n")), "yaml syntax"),
    ("yaml-tab-indent", run_args(lambda f: f.text("p.yaml", "respondents:\n\t- model: openai/x\n")), "yaml syntax"),
    ("yaml-top-level-list", run_args(lambda f: f.text("p.yaml", "- model: openai/x\n")), "mapping"),
    ("yaml-empty-file", run_args(lambda f: f.text("p.yaml", "")), "mapping"),
    ("params-not-utf8", run_args(lambda f: f.raw("p.yaml", b"run_name: caf\xe9\xff\xfe\n")), "utf-8"),
    ("unknown-top-level-key", run_args(lambda f: f.params({**VALID, "respondent": []})), "unknown key 'respondent'"),
    ("mistyped-nested-key", run_args(lambda f: f.params(_variant(elicitation__sample=3))),
     "unknown key 'elicitation.sample'"),
    ("unknown-respondent-key", run_args(lambda f: f.params(_variant(respondents=[_respondent(temprature=0.7)]))),
     "unknown key 'respondents.0.temprature'"),
    ("wrong-type", run_args(lambda f: f.params(_variant(concurrency="four"))), "concurrency"),
    ("out-of-range-temperature",
     run_args(lambda f: f.params(_variant(respondents=[_respondent(configs=[{"temperature": 5.0}])]))), "temperature"),
    ("zero-samples", run_args(lambda f: f.params(_variant(elicitation__samples=0))), "elicitation.samples"),
    ("empty-respondents", run_args(lambda f: f.params(_variant(respondents=[]))), "respondents"),
    ("respondents-missing", run_args(lambda f: f.params(_variant(respondents=_DROP))), "missing required key"),
    ("respondent-without-training", run_args(lambda f: f.params(_variant(respondents=[_respondent(training=_DROP)]))),
     "training"),
    ("unknown-training-type", run_args(lambda f: f.params(_variant(respondents=[_respondent(training="chat")]))),
     "training"),
    ("model-without-provider", run_args(lambda f: f.params(_variant(respondents=[_respondent(model="gpt-4o")]))),
     "provider prefix"),
    ("unknown-embedded-model", run_args(lambda f: f.params(_variant(respondents=[_respondent(model="local/nope")]))),
     "local/nope"),
    ("unknown-provider", run_args(lambda f: f.params(_variant(respondents=[_respondent(model="opnai/gpt-4o-mini")]))),
     "opnai/gpt-4o-mini"),
    ("duplicate-respondent-names",
     run_args(lambda f: f.params(_variant(respondents=[_respondent(), _respondent(model="openai/other")]))),
     "unique"),
    ("key-variable-not-set",
     run_args(lambda f: f.params(_variant(respondents=[_respondent(api_key_env="VALUELEX_TEST_UNSET_KEY")]))),
     "valuelex_test_unset_key"),
    ("unknown-prompt-id", run_args(lambda f: f.params(_variant(elicitation__prompts=[1, 99]))), "99"),
    ("empty-prompt-list", run_args(lambda f: f.params(_variant(elicitation__prompts=[]))), "elicitation.prompts"),
    ("unknown-stem-id", run_args(lambda f: f.params(_variant(projective={"stems": [0, 51]}))), "stem"),
    ("unknown-value-system", run_args(lambda f: f.params(_variant(scoring={"system": "hofstede"}))), "hofstede"),
    ("unknown-judge-model", run_args(lambda f: f.params(_variant(scoring={"scorer": "llm", "judge": "local/judgy"}))),
     "local/judgy"),
    # -- valuelex run: the run dir and the command line ------------------------------------------------------------
    ("run-dir-of-other-params", run_args(lambda f: f.params(_variant(seed=2))), "belongs to other params"),
    ("run-dir-with-other-files", lambda f: ["run", "--params", str(f.valid), "--run-dir", str(f.other)],
     "not a valuelex run dir"),
    ("run-dir-is-a-file", lambda f: ["run", "--params", str(f.valid), "--run-dir", str(f.run / "manifest.json")],
     "is a file"),
    ("bad-steps", run_args(lambda f: str(f.valid), "--steps", "01-09"), "--steps"),
    ("unreadable-steps", run_args(lambda f: str(f.valid), "--steps", "elicit"), "--steps"),
    ("unknown-option", run_args(lambda f: str(f.valid), "--bogus"), "unrecognized arguments"),
    ("unknown-verb", lambda f: ["elicit", "--params", str(f.valid)], "invalid choice"),
    ("no-verb", lambda f: [], "required"),
    # -- valuelex models ------------------------------------------------------------------------------------------
    ("models-params-missing", lambda f: ["models", "--params", f.missing()], "not found"),
    ("models-params-bad-yaml", lambda f: ["models", "--params", f.text("p.yaml", "respondents: [\n")], "yaml syntax"),
    # -- valuelex report ------------------------------------------------------------------------------------------
    ("report-dir-missing", lambda f: ["report", f.missing("no_run")], "not found"),
    ("report-not-a-run-dir", lambda f: ["report", str(f.other)], "manifest.json"),
    ("report-manifest-not-json", lambda f: ["report", _broken_run(f)], "manifest.json"),
    # -- valuelex extract -----------------------------------------------------------------------------------------
    ("extract-input-missing", lambda f: ["extract", f.missing("in.jsonl"), "-o", f.out("out.jsonl")], "not found"),
    ("extract-not-utf8", lambda f: ["extract", f.raw("in.jsonl", b'{"id": 1, "text": "caf\xe9"}\n'), "-o",
                                    f.out("out.jsonl")], "utf-8"),
    ("extract-not-json", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": "ok"}\n{"id": 2, text}\n'), "-o",
                                    f.out("out.jsonl")], "json"),
    ("extract-no-text-field", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "answer": "honesty"}\n'), "-o",
                                         f.out("out.jsonl")], '"text"'),
    ("extract-output-is-a-folder", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": "honesty"}\n'), "-o",
                                              str(f.other)], "directory"),
    ("extract-no-output", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": "honesty"}\n')], "-o"),
    ("extract-judge-no-provider", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": "honesty"}\n'), "-o",
                                             f.out("out.jsonl"), "--judge", "gpt-nothing"], "provider"),
    ("extract-judge-unknown-embedded", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": "honesty"}\n'),
                                                  "-o", f.out("out.jsonl"), "--judge", "local/nope"], "local/nope"),
    # -- valuelex factors -----------------------------------------------------------------------------------------
    ("factors-matrix-missing", lambda f: ["factors", f.missing("m.csv"), "-o", f.out("fa")], "not found"),
    ("factors-empty-csv", lambda f: ["factors", f.text("m.csv", ""), "-o", f.out("fa")], "empty"),
    ("factors-only-one-column", lambda f: ["factors", f.text("m.csv", "respondent\na\nb\n"), "-o", f.out("fa")],
     "column"),
    ("factors-non-numeric", lambda f: ["factors", f.text("m.csv", "respondent,a,b,c\nr1,1,x,2\nr2,0,1,1\nr3,2,2,0\n"),
                                       "-o", f.out("fa")], "numeric"),
    ("factors-not-utf8", lambda f: ["factors", f.raw("m.csv", b"respondent,caf\xe9\nr1,1\n"), "-o", f.out("fa")],
     "utf-8"),
    ("factors-output-is-a-file", lambda f: ["factors", str(f.run / "matrix.csv"), "-o", str(f.other / "notes.txt")],
     "not a directory"),
    ("factors-bad-rotation", lambda f: ["factors", str(f.run / "matrix.csv"), "-o", f.out("fa"), "--rotation", "spin"],
     "invalid choice"),
    # -- valuelex score -------------------------------------------------------------------------------------------
    ("score-input-missing", lambda f: ["score", f.missing("c.csv"), "--system", "valuelex", "-o", f.out("s.csv")],
     "not found"),
    ("score-unknown-system", lambda f: ["score", f.text("c.csv", SCORE_CSV), "--system", "hofstede", "-o",
                                        f.out("s.csv")], "hofstede"),
    ("score-missing-columns", lambda f: ["score", f.text("c.csv", "id,text\n1,I like cats.\n"), "--system", "valuelex",
                                         "-o", f.out("s.csv")], "completion"),
    ("score-empty-csv", lambda f: ["score", f.text("c.csv", ""), "--system", "valuelex", "-o", f.out("s.csv")],
     "empty"),
    ("score-not-utf8", lambda f: ["score", f.raw("c.csv", b"id,stem,completion\n1,I like,caf\xe9\xff\n"), "--system",
                                  "valuelex", "-o", f.out("s.csv")], "utf-8"),
    ("score-header-only", lambda f: ["score", f.text("c.csv", "id,stem,completion\n"), "--system", "valuelex", "-o",
                                     f.out("s.csv")], "no rows"),
    ("score-unknown-judge", lambda f: ["score", f.text("c.csv", SCORE_CSV), "--system", "valuelex",
                                       "--scorer", "llm", "--judge", "local/nope", "-o", f.out("s.csv")],
     "local/nope"),
]


def _verb_ready(argv: list[str]) -> bool:
    """`score` is still being written by others: its cases run once `scoring.score_file` exists."""
    if argv and argv[0] == "score":
        import valuelex_utils.scoring as scoring

        return hasattr(scoring, "score_file")
    return True


def _plain(case) -> tuple:
    return tuple(case.values) if hasattr(case, "values") else case


@pytest.mark.parametrize("case_id, argv_of, phrase", CASES, ids=[_plain(c)[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case_id, argv_of, phrase, protected, tmp_path, capsys,
                                                           monkeypatch):
    monkeypatch.delenv("VALUELEX_TEST_UNSET_KEY", raising=False)
    argv = argv_of(Inputs(tmp_path, protected))
    if not _verb_ready(argv):
        pytest.skip(f"valuelex {argv[0]} is not implemented yet")
    before = _snapshot(protected["run"], protected["other"])
    code = cli.main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {err[-1500:]}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err[-1500:]}"
    assert lines[0].startswith("valuelex: error: ") and "Traceback" not in err
    assert phrase.lower() in lines[0].lower(), lines[0]
    assert len(lines[0]) < 600, "one clear line, not a dump"
    assert _snapshot(protected["run"], protected["other"]) == before, "bad input changed an existing run dir"
    assert not any((tmp_path / name).exists() for name in ("out.jsonl", "fa", "s.csv")), "bad input wrote output"


def test_cases_cover_every_verb(protected, tmp_path):
    verbs = {argv[0] for argv in (_plain(c)[1](Inputs(tmp_path, protected)) for c in CASES) if argv}
    assert len(CASES) >= 30
    assert {"run", "models", "report", "extract", "factors", "score"} <= verbs


@pytest.mark.parametrize("argv_of, phrase", [
    (run_args(lambda f: f.text("p.yaml", "run_name: x\nrespondents: [\n")), "yaml syntax"),
    (run_args(lambda f: f.params(_variant(seed=2))), "belongs to other params"),
    (lambda f: ["extract", f.missing("in.jsonl"), "-o", f.out("out.jsonl")], "not found"),
], ids=["yaml", "other-params", "extract-missing"])
def test_the_installed_executable_exits_2_with_one_line(argv_of, phrase, protected, tmp_path):
    argv = argv_of(Inputs(tmp_path, protected))
    before = _snapshot(protected["run"], protected["other"])
    exe = Path(sys.executable).parent / "valuelex"
    proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 2, proc.stderr[-1500:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0].lower() and proc.stdout == ""
    assert _snapshot(protected["run"], protected["other"]) == before
