"""Fuzz the input boundary: a seeded, generated table of bad (and some good) inputs to every verb.

Random bytes, truncations, byte flips, duplicated and dropped lines, and type swaps of params YAML, completion CSVs,
answer JSONL, matrix CSVs and run-dir products, given to `run --dry-run`, `models`, `score`, `extract`, `factors`
and `report`. The property, for every case: the CLI returns 2 with exactly one stderr line starting
`valuelex: error:` (or 0 when the mutated input happens to be valid), no traceback, no exception escapes `main`, and
an existing run dir is byte-for-byte and mtime-for-mtime unchanged. Cases that are bad by construction (random bytes,
an output inside a run dir or under a file) must give 2.

Calls are in-process (`cli.main`) to stay fast; a few run as a subprocess for the real exit code. Two stand-ins keep
the table fast and are the only thing not real: `valuelex score`'s scorer (its input is still read by the real
`scoring.read_completions`; the embedding model is not loaded) and `valuelex report`'s page builder (the checks of
every product it reads run for real; nbconvert does not). Everything else (params, steps, dry run, extraction rules,
factor analysis) runs as shipped.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from valuelex_utils import cli
from valuelex_utils.params import parse_params
from valuelex_utils.runner import claim_run_dir

SEED = 20
STUDY = {
    "run_name": "fuzz", "seed": 3, "concurrency": 2,
    "respondents": [{"model": "openai/fake", "name": "fake", "training": "aligned", "api_base": "http://127.0.0.1:9/v1",
                     "configs": [{"temperature": 0.2}, {"temperature": 0.6}, {"temperature": 1.0}]}],
    "elicitation": {"prompts": [1, 2], "samples": 1, "max_tokens": 8, "base_frame": "Q: {prompt}\nA:"},
    "lexicon": {"min_frequency": 2, "min_respondents": 1, "unit": "answer"},
    "factors": {"n_iter": 10, "threshold": 0.3}, "taxonomy": {"k_min": 2, "k_max": 3},
    "projective": {"stems": [1, 2], "samples": 1, "chat_frame": "Complete: {stem}"},
}
COMPLETIONS = ("id,stem,completion\n1,I like...,I like helping people honestly.\n"
               "2,I value...,I value truth and care.\n3,I think...,\"I think fairness, yes.\"\n")
ANSWERS = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in
                  enumerate(["Honesty, care and fairness.", "1. Respect\n2. Truth", "I value kindness."], start=1))
SWAPS: list[Any] = [True, False, None, "x", "", "{oops}", "a\x00b", 10**30, -1, 0, 2.5, float("inf"), float("nan"),
                    [], {}, [1, 1], {"k": [1]}, "9" * 300]
CELL_SWAPS = ["", '"', "x", "-1", "inf", "nan", "1e400", "\x00", "9" * 300, "a,b", "\u0660", " "]


def _matrix_text(rng: random.Random) -> str:
    words = ["honesty", "care", "truth", "fairness", "respect", "kindness"]
    rows = [",".join(["respondent", *words])]
    for r in range(14):
        base = rng.randint(0, 2)
        rows.append(",".join([f"r{r}", *(str(max(0, base + rng.randint(-1, 2))) for _ in words)]))
    return "\n".join(rows) + "\n"


# -- mutations of bytes and of structures ---------------------------------------------------------------------------

def random_bytes(rng: random.Random, _: bytes) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(0, max(1, len(data) - 1))]


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def dup_line(rng: random.Random, data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    i = rng.randrange(len(lines))
    return b"".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])


def drop_line(rng: random.Random, data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def junk_line(rng: random.Random, data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    junk = rng.choice([b"{", b"]]]", b"key: [", b"\xff\xfe", b",,,,,,", b"\x00\x00", b"- - -", b'"', b"\t\tx"]) + b"\n"
    lines.insert(rng.randrange(len(lines) + 1), junk)
    return b"".join(lines)


BYTE_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [random_bytes, truncate, flip, dup_line, drop_line,
                                                                  junk_line]


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [path] + [p for k, v in node.items() for p in _leaves(v, path + (k,))]
    if isinstance(node, list):
        return [path] + [p for i, v in enumerate(node) for p in _leaves(v, path + (i,))]
    return [path]


def swap_type(rng: random.Random, data: Any) -> Any:
    """Replace one value anywhere in the structure (or drop its key) with a value of another type."""
    data = copy.deepcopy(data)
    path = rng.choice([p for p in _leaves(data) if p])
    node = data
    for part in path[:-1]:
        node = node[part]
    if isinstance(node, dict) and rng.random() < 0.15:
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(rng.choice(SWAPS))
    return data


def swap_cell(rng: random.Random, text: str) -> str:
    rows = [r.split(",") for r in text.strip("\n").split("\n")]
    r, c = rng.randrange(len(rows)), None
    c = rng.randrange(len(rows[r]))
    rows[r][c] = rng.choice(CELL_SWAPS)
    return "\n".join(",".join(row) for row in rows) + "\n"


# -- the table ------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    verb: str
    build: Callable[["Workspace"], list[str]]
    must_fail: bool = False


class Workspace:
    """The folder of one case, and the protected run dir no case may change."""

    def __init__(self, root: Path, run: Path, afile: Path) -> None:
        self.root, self.run, self.afile = root, run, afile

    def file(self, name: str, data: bytes | str) -> str:
        p = self.root / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        return str(p)

    def output(self, kind: int, name: str) -> str:
        """0: a fresh path, 1: inside the protected run dir, 2: under a regular file."""
        return [str(self.root / "out" / name), str(self.run / name), str(self.afile / name)][kind]


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _report_run(ws: Workspace, product: str, data: bytes) -> str:
    """A small but complete run dir for `valuelex report`, with `product` replaced by `data`."""
    import pandas as pd

    run = ws.root / "reportrun"
    (run / "notebooks").mkdir(parents=True)
    (run / "params.yaml").write_text(_yaml(STUDY), encoding="utf-8")
    files = {
        "manifest.json": json.dumps({"run_name": "fuzz", "params": STUDY, "calls": {}, "started": 1.0,
                                     "steps": {"01": {"notebook": "notebooks/01_elicit.ipynb", "status": "ok",
                                                      "seconds": 1.0}}}).encode(),
        "notebooks/01_elicit.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                 "nbformat_minor": 5}).encode(),
        "factors.json": json.dumps({"n_factors": 2, "words": ["a", "b"]}).encode(),
        "clusters.csv": b"word,factor,subcluster\nhonesty,0,0\ncare,1,0\n",
        "taxonomy.yaml": b"name: fuzz\ndimensions:\n  - name: A\n    markers: [honesty]\n",
    }
    for name, content in files.items():
        (run / name).write_bytes(content)
    pd.DataFrame({"id": ["1", "2"], "score": [1.0, 2.0]}).to_parquet(run / "scores.parquet")
    (run / product).write_bytes(data)
    return str(run)


REPORT_PRODUCTS = ["manifest.json", "notebooks/01_elicit.ipynb", "scores.parquet", "factors.json", "clusters.csv",
                   "taxonomy.yaml"]


def build_cases(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    params_text = _yaml(STUDY).encode()
    matrix = _matrix_text(rng)

    def params_case(i: int) -> Case:
        kind = i % 3
        if kind == 0:
            data = _yaml(swap_type(rng, STUDY)).encode()
            label = "type-swap"
        else:
            mut = rng.choice(BYTE_MUTATIONS)
            data, label = mut(rng, params_text), mut.__name__
        extra = rng.choice([[], ["--steps", rng.choice(["01-07", "1,1", "03", "\u0661", "8", "02-01"])]])
        with_run = rng.random() < 0.5
        return Case(f"run-dry-{i:03d}-{label}", "run",
                    lambda ws, d=data, e=extra, r=with_run: ["run", "--params", ws.file("p.yaml", d), "--dry-run", *e,
                                                             *(["--run-dir", str(ws.run)] if r else [])],
                    must_fail=label == "random_bytes")

    cases += [params_case(i) for i in range(48)]
    for i in range(6):  # `models` pings what it finds: only inputs that cannot be a study
        data = random_bytes(rng, b"")
        cases.append(Case(f"models-{i:03d}-random_bytes", "models",
                          lambda ws, d=data: ["models", "--params", ws.file("p.yaml", d)], must_fail=True))

    for i in range(28):
        out = rng.choice([0, 0, 0, 1, 2])
        if i % 2:
            data, label = swap_cell(rng, COMPLETIONS).encode("utf-8", "surrogatepass"), "cell-swap"
        else:
            mut = rng.choice(BYTE_MUTATIONS)
            data, label = mut(rng, COMPLETIONS.encode()), mut.__name__
        system = rng.choice(["valuelex", "valuelex", "mft", "nope", "a/b.yaml"])
        cases.append(Case(f"score-{i:03d}-{label}-out{out}", "score",
                          lambda ws, d=data, o=out, s=system: ["score", ws.file("c.csv", d), "--system", s, "-o",
                                                               ws.output(o, "s.csv")],
                          must_fail=out != 0 or label == "random_bytes"))

    for i in range(28):
        out = rng.choice([0, 0, 0, 1, 2])
        if i % 2:
            records = [json.loads(line) for line in ANSWERS.splitlines()]
            data, label = "".join(json.dumps(r) + "\n" for r in swap_type(rng, records)).encode(), "type-swap"
        else:
            mut = rng.choice(BYTE_MUTATIONS)
            data, label = mut(rng, ANSWERS.encode()), mut.__name__
        cases.append(Case(f"extract-{i:03d}-{label}-out{out}", "extract",
                          lambda ws, d=data, o=out: ["extract", ws.file("a.jsonl", d), "-o", ws.output(o, "x.jsonl")],
                          must_fail=out != 0 or label == "random_bytes"))

    for i in range(24):
        out = rng.choice([0, 0, 0, 1, 2])
        if i % 2:
            data, label = swap_cell(rng, matrix).encode("utf-8", "surrogatepass"), "cell-swap"
        else:
            mut = rng.choice(BYTE_MUTATIONS)
            data, label = mut(rng, matrix.encode()), mut.__name__
        opts = rng.choice([[], ["--n-factors", rng.choice(["2", "0", "1000", "-3"])], ["--threshold", "nan"],
                           ["--seed", "99999999999"], ["--rotation", "varimax"]])
        cases.append(Case(f"factors-{i:03d}-{label}-out{out}", "factors",
                          lambda ws, d=data, o=out, x=opts: ["factors", ws.file("m.csv", d), "-o",
                                                             ws.output(o, "fa"), *x],
                          must_fail=out != 0 or label == "random_bytes"))

    for i in range(24):
        product = REPORT_PRODUCTS[i % len(REPORT_PRODUCTS)]
        if product == "manifest.json" and i % 4 == 0:
            base = {"run_name": "fuzz", "params": STUDY, "calls": {}, "steps": {"01": {"status": "ok"}}}
            data, label = json.dumps(swap_type(rng, base)).encode(), "type-swap"
        else:
            mut = rng.choice([random_bytes, truncate, flip])
            original = {"scores.parquet": b"PAR1" + bytes(range(200)) + b"PAR1"}.get(product, b'{"cells": []}')
            data, label = mut(rng, original), mut.__name__
        cases.append(Case(f"report-{i:03d}-{product.replace('/', '-')}-{label}", "report",
                          lambda ws, p=product, d=data: ["report", _report_run(ws, p, d)]))
    return cases


CASES = build_cases()


# -- the property ---------------------------------------------------------------------------------------------------

def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(root)}|{st.st_mtime_ns}|{st.st_size}\n".encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def protected(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fuzz")
    run = base / "run"
    src = base / "study.yaml"
    src.write_text(_yaml(STUDY), encoding="utf-8")
    claim_run_dir(run, parse_params(copy.deepcopy(STUDY), "study"), src)
    (run / "responses.jsonl").write_text('{"key": "k", "response": {"choices": []}}\n', encoding="utf-8")
    (run / "manifest.json").write_text(json.dumps({"run_name": "fuzz", "steps": {}, "calls": {}}), encoding="utf-8")
    (run / "matrix.csv").write_text(_matrix_text(random.Random(1)), encoding="utf-8")
    (run / "factors.json").write_text('{"n_factors": 2}', encoding="utf-8")
    afile = base / "afile"
    afile.write_text("a regular file\n", encoding="utf-8")
    return {"run": run, "afile": afile}


@pytest.fixture
def stand_ins(monkeypatch):
    """The scorer and the report's page builder (see the module docstring): everything before them is real."""
    import valuelex_utils.report as report
    import valuelex_utils.scoring as scoring

    def score_file(in_csv, system="valuelex", scorer="embedding", judge=None, out_csv="scores.csv", **_: Any) -> Path:
        df = scoring.read_completions(in_csv)
        scoring.load_system(system)
        out = Path(out_csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        df[["id"]].to_csv(out, index=False)
        return out

    monkeypatch.setattr(scoring, "score_file", score_file)
    monkeypatch.setattr(report, "build_report", lambda run_dir: Path(run_dir) / "report" / "index.html")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_input_is_refused_in_one_line_or_accepted(case, protected, stand_ins, tmp_path, capsys):
    ws = Workspace(tmp_path, protected["run"], protected["afile"])
    argv = case.build(ws)
    before = _tree_hash(protected["run"])
    try:
        code = cli.main(argv)
    except BaseException as err:  # noqa: BLE001 - the property is that nothing escapes
        pytest.fail(f"{case.id}: {type(err).__name__} escaped main: {str(err)[:300]}")
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err[-2000:]
    assert code in ((2,) if case.must_fail else (0, 2)), f"{case.id}: exit {code}; stderr: {err[-1500:]}"
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("valuelex: error: "), f"{case.id}: {err[-1500:]}"
        assert len(lines[0]) < 600
    assert _tree_hash(protected["run"]) == before, f"{case.id} changed the run dir"


def test_the_table_is_large_and_covers_every_verb():
    assert len(CASES) >= 150
    assert {c.verb for c in CASES} >= {"run", "models", "score", "extract", "factors", "report"}
    assert len({c.id for c in CASES}) == len(CASES)
    assert [c.id for c in build_cases()] == [c.id for c in CASES], "the table is seeded: the same every run"


SUBPROCESS = [c for c in CASES if c.must_fail][:: max(1, len([c for c in CASES if c.must_fail]) // 4)][:4]


@pytest.mark.parametrize("case", SUBPROCESS, ids=[c.id for c in SUBPROCESS])
def test_the_process_exits_2_with_one_line(case, protected, tmp_path):
    """The real process: its exit code and its whole stderr (warnings at import included)."""
    ws = Workspace(tmp_path, protected["run"], protected["afile"])
    argv = case.build(ws)
    before = _tree_hash(protected["run"])
    proc = subprocess.run([sys.executable, "-m", "valuelex_utils.cli", *argv], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("valuelex: error: "), proc.stderr[-1500:]
    assert _tree_hash(protected["run"]) == before
