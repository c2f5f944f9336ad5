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


# -- issue 20: an outside attack's inputs (each rebuilt here from its description, not copied) ----------------------

def _damaged_run(f: Inputs, damage: str) -> str:
    """A small run dir with a valid manifest, notebook and products, then one of them damaged."""
    import pandas as pd

    run = f.root / f"run_{damage}"
    (run / "notebooks").mkdir(parents=True)
    (run / "params.yaml").write_text(yaml.safe_dump(VALID), encoding="utf-8")
    manifest = {"run_name": "x", "params": VALID, "steps": {"01": {"notebook": "notebooks/01_elicit.ipynb",
                                                                   "status": "ok", "seconds": 1.0}}, "calls": {}}
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (run / "notebooks" / "01_elicit.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    pd.DataFrame({"id": ["a", "b"], "score": [1.0, 2.0]}).to_parquet(run / "scores.parquet")
    if damage == "manifest-shape":
        manifest["steps"] = ["01", "02"]
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if damage == "notebook":
        (run / "notebooks" / "01_elicit.ipynb").write_text(json.dumps(nb)[:20], encoding="utf-8")
    if damage == "parquet":
        data = (run / "scores.parquet").read_bytes()
        (run / "scores.parquet").write_bytes(data[: len(data) // 2])
    return str(run)


def _loop(f: Inputs) -> str:
    a, b = f.root / "loop_a.yaml", f.root / "loop_b.yaml"
    a.symlink_to(b)
    b.symlink_to(a)
    return str(a)


def _yaml_with(text: str) -> Callable[[Inputs], str]:
    """VALID with `text` (top-level YAML) prepended: a second key of the same name is then a duplicate."""
    return lambda f: f.text("p.yaml", text + yaml.safe_dump(VALID, sort_keys=False))


JSONL_OK = '{"id": 1, "text": "honesty"}\n'

CASES += [
    ("i20-score-ragged-csv", lambda f: ["score", f.text("c.csv", SCORE_CSV + "2,I value,truth,extra,more\n"),
                                        "--system", "valuelex", "-o", f.out("s.csv")], "line 3 has 5 fields"),
    ("i20-score-semicolons", lambda f: ["score", f.text("c.csv", "id;stem;completion\n1;a;b\n"), "--system",
                                        "valuelex", "-o", f.out("s.csv")], "expected commas"),
    ("i20-score-system-missing", lambda f: ["score", f.text("c.csv", SCORE_CSV), "--system", f.missing("sys.yaml"),
                                            "-o", f.out("s.csv")], "not found"),
    ("i20-score-output-under-a-file", lambda f: ["score", f.text("c.csv", SCORE_CSV), "--system", "valuelex", "-o",
                                                 str(f.other / "notes.txt" / "s.csv")], "not a directory"),
    ("i20-score-into-run-dir", lambda f: ["score", f.text("c.csv", SCORE_CSV), "--system", "valuelex", "-o",
                                          str(f.run / "my.csv")], "--force"),
    ("i20-extract-deep-json", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": ' + "[" * 50000 + "]" * 50000
                                                           + "}\n"), "-o", f.out("out.jsonl")], "nested deeper"),
    ("i20-extract-5001-digit-id", lambda f: ["extract", f.text("in.jsonl", '{"id": ' + "7" * 5001 + ', "text": "x"}\n'),
                                             "-o", f.out("out.jsonl")], "5001 digits"),
    ("i20-extract-long-line", lambda f: ["extract", f.text("in.jsonl", '{"id": 1, "text": "' + "a" * (2 << 20) + '"}\n'),
                                         "-o", f.out("out.jsonl")], "line longer than the limit"),
    ("i20-extract-duplicate-id", lambda f: ["extract", f.text("in.jsonl", JSONL_OK * 2), "-o", f.out("out.jsonl")],
     "already used at line 1"),
    ("i20-extract-into-run-dir", lambda f: ["extract", f.text("in.jsonl", JSONL_OK), "-o", str(f.run / "x.jsonl")],
     "--force"),
    ("i20-extract-cache-in-run-dir", lambda f: ["extract", f.text("in.jsonl", JSONL_OK), "-o", f.out("out.jsonl"),
                                                "--judge", "openai/x", "--cache", str(f.run / "c")], "--force"),
    ("i20-extract-judge-api-base-not-url", lambda f: ["extract", f.text("in.jsonl", JSONL_OK), "-o", f.out("out.jsonl"),
                                                      "--judge", "openai/x", "--api-base", "localhost:8080"], "url"),
    ("i20-factors-into-run-dir", lambda f: ["factors", str(f.run / "matrix.csv"), "-o", str(f.run)], "--force"),
    ("i20-factors-nan-threshold", lambda f: ["factors", str(f.run / "matrix.csv"), "-o", f.out("fa"), "--threshold",
                                             "nan"], "--threshold"),
    ("i20-factors-ragged", lambda f: ["factors", f.text("m.csv", "respondent,a,b,c\nr1,1,0,2,9\n"), "-o", f.out("fa")],
     "fields"),
    ("i20-models-inf-timeout", lambda f: ["models", "--timeout", "inf"], "--timeout"),
    ("i20-base-frame-unknown-placeholder", run_args(lambda f: f.params(_variant(elicitation__base_frame="{oops}"))),
     "{oops}"),
    ("i20-base-frame-positional", run_args(lambda f: f.params(_variant(elicitation__base_frame="Q: {} {prompt}"))),
     "{}"),
    ("i20-chat-frame-unclosed", run_args(lambda f: f.params(_variant(projective={"chat_frame": "Say {stem"}))),
     "projective.chat_frame"),
    ("i20-params-symlink-loop", run_args(_loop), "symbolic link loop"),
    ("i20-params-yaml-is-a-folder", lambda f: ["run", "--params", str(f.valid), "--run-dir",
                                               str((f.root / "rd" / "params.yaml").mkdir(parents=True) or f.root / "rd")],
     "params.yaml"),
    ("i20-run-dir-under-a-file", lambda f: ["run", "--params", str(f.valid), "--run-dir",
                                            str(f.other / "notes.txt" / "run")], "not a directory"),
    ("i20-nul-in-run-name", run_args(lambda f: f.params(_variant(run_name="a\x00b"))), "run_name"),
    ("i20-run-name-a-path", run_args(lambda f: f.params(_variant(run_name="../../elsewhere"))), "run_name"),
    ("i20-params-50mb", run_args(lambda f: f.text("p.yaml", "# " + "x" * (50 << 20) + "\n")), "limit is 1.0 mb"),
    ("i20-k-min-above-k-max", run_args(lambda f: f.params(_variant(taxonomy={"k_min": 5, "k_max": 3}))), "k_min"),
    ("i20-n-factors-absurd", run_args(lambda f: f.params(_variant(factors={"n_factors": 1_000_000}))),
     "factors.n_factors"),
    ("i20-n-factors-above-matrix", run_args(lambda f: f.params(_variant(factors={"n_factors": 3}))),
     "at most 3 rows"),
    ("i20-matrix-too-small", run_args(lambda f: f.params(_variant(respondents=[_respondent(configs=[{}])],
                                                                  lexicon={"min_respondents": 1}))),
     "at least 3"),
    ("i20-seed-true", run_args(lambda f: f.params(_variant(seed=True))), "'seed'"),
    ("i20-seed-10e30", run_args(lambda f: f.params(_variant(seed=10**30))), "'seed'"),
    ("i20-timeout-inf", run_args(lambda f: f.text("p.yaml", "timeout: .inf\n" + yaml.safe_dump(VALID))), "finite"),
    ("i20-duplicate-yaml-key", run_args(_yaml_with("seed: 5\n")), "duplicate key 'seed'"),
    ("i20-duplicate-prompt-ids", run_args(lambda f: f.params(_variant(elicitation__prompts=[1, 2, 1]))),
     "listed twice"),
    ("i20-prompts-true", run_args(lambda f: f.params(_variant(elicitation__prompts=True))), "elicitation.prompts"),
    ("i20-api-base-empty", run_args(lambda f: f.params(_variant(respondents=[_respondent(api_base="")]))), "api_base"),
    ("i20-api-base-not-url", run_args(lambda f: f.params(_variant(respondents=[_respondent(api_base="my-server")]))),
     "url"),
    ("i20-model-provider-only", run_args(lambda f: f.params(_variant(respondents=[_respondent(model="openai/")]))),
     "provider/name"),
    ("i20-model-with-space", run_args(lambda f: f.params(_variant(respondents=[_respondent(model="openai/gpt 4o")]))),
     "without spaces"),
    ("i20-duplicate-decoding-configs",
     run_args(lambda f: f.params(_variant(respondents=[_respondent(configs=[{"temperature": 0.5}] * 3)]))),
     "listed twice"),
    ("i20-steps-repeated", run_args(lambda f: str(f.valid), "--steps", "1,1,1"), "named twice"),
    ("i20-steps-arabic-indic", run_args(lambda f: str(f.valid), "--steps", "\u0660\u0661"), "--steps"),
    ("i20-report-notebook-corrupt", lambda f: ["report", _damaged_run(f, "notebook")], "01_elicit.ipynb: damaged"),
    ("i20-report-manifest-shape", lambda f: ["report", _damaged_run(f, "manifest-shape")], "manifest.json: damaged"),
    ("i20-report-parquet-truncated", lambda f: ["report", _damaged_run(f, "parquet")], "scores.parquet: damaged"),
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
    for damaged in tmp_path.glob("run_*"):
        assert not (damaged / "report").exists(), "report wrote pages for a damaged run"


def test_cases_cover_every_verb(protected, tmp_path):
    verbs = {argv[0] for argv in (_plain(c)[1](Inputs(tmp_path, protected)) for c in CASES) if argv}
    assert len(CASES) >= 100
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


def test_a_bom_and_one_row_are_valid_input(tmp_path):
    """Issue 20: a UTF-8 BOM is accepted (not an error), and a 1-row CSV scores (its sd is undefined: None)."""
    import pandas as pd

    from valuelex_utils.inputs import check_completions_csv
    from valuelex_utils.scoring.reliability import score_distribution

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + SCORE_CSV.encode())
    assert check_completions_csv(bom) == 1
    one = pd.DataFrame({"care": pd.array([4.0], dtype="Float64")})  # the nullable dtype gave pd.NA, then TypeError
    assert score_distribution(one, ["care"])["care"] == {"mean": 4.0, "sd": None, "mean_normalised": 0.6667,
                                                         "missing": 0}


def test_force_lets_a_verb_write_into_a_run_dir(protected, tmp_path):
    """--force is the way past the run-dir refusal (checked at the boundary: no scoring model is loaded here)."""
    from valuelex_utils.errors import UserError
    from valuelex_utils.inputs import enclosing_run_dir, refuse_run_dir_output

    assert enclosing_run_dir(protected["run"] / "sub" / "x.csv") == protected["run"].resolve()
    assert enclosing_run_dir(protected["other"] / "x.csv") is None
    with pytest.raises(UserError, match="--force"):
        refuse_run_dir_output(protected["run"] / "my.csv")
    refuse_run_dir_output(protected["run"] / "my.csv", force=True)
