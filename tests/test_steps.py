"""valuelex_utils.steps: one entry point per notebook, of one shape, writing what the notebook's inline code wrote.

Steps 03 and 04 are checked against the code the notebooks ran inline before `steps` existed, on a planted matrix
(no model calls; step 04's embeddings are faked so MiniLM is not loaded). The other steps are checked end to end by
the smoke run (tests/test_pipeline.py), whose notebooks call them."""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))

from valuelex_utils import embeddings, factors, steps, taxonomy  # noqa: E402
from valuelex_utils.errors import UserError  # noqa: E402
from valuelex_utils.taxonomy.naming import namer_from_params  # noqa: E402
from valuelex_utils.params import parse_params  # noqa: E402
from tests.support.planted import make_planted  # noqa: E402
from valuelex_utils.rundir import REPO_ROOT, RunDir  # noqa: E402

PARAMS = {"run_name": "steps", "seed": 3, "factors": {"pa_iter": 20},
          "respondents": [{"model": "local/smollm2-135m-instruct", "training": "aligned"}]}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _without_plotly_ids(html: bytes) -> bytes:
    """plotly's to_html names its div with a fresh uuid4 on every call: the one part of scree.html that is not data."""
    import re

    ids = set(re.findall(rb'id="([0-9a-f-]{36})"', html))
    for i in ids:
        html = html.replace(i, b"<div-id>")
    return html


def _planted_run(folder: Path) -> RunDir:
    matrix, _ = make_planted(n_respondents=120, n_factors=2, words_per_factor=[6, 5], n_noise_words=3, seed=5)
    matrix.index = [f"r{i}" for i in range(len(matrix))]
    matrix.index.name = "respondent"
    rd = RunDir.at(folder)
    matrix.to_csv(rd.matrix)
    return rd


def _fake_embed(words):
    out = []
    for w in words:
        rng = np.random.default_rng(int(hashlib.md5(w.encode()).hexdigest()[:8], 16))
        v = rng.normal(size=16)
        out.append(v / np.linalg.norm(v))
    return np.array(out)


def test_every_notebook_has_one_step_function_of_the_same_shape():
    stems = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(steps.STEPS) == stems
    for stem, fn in steps.STEPS.items():
        assert list(inspect.signature(fn).parameters) == ["params", "run_dir", "progress"], stem
        assert steps.step_function(stem) is fn and steps.step_function(stem[:2]) is fn
    assert inspect.iscoroutinefunction(steps.STEPS["01_elicit"])
    assert inspect.iscoroutinefunction(steps.STEPS["05_projective"])
    assert steps.step_function("3") is steps.run_factors
    with pytest.raises(UserError, match="unknown step"):
        steps.step_function("08")


def test_run_factors_writes_what_the_notebook_wrote(tmp_path):
    params = parse_params(PARAMS)
    old, new = _planted_run(tmp_path / "old"), _planted_run(tmp_path / "new")
    # what 03_factors.ipynb ran inline before steps.py
    matrix = factors.load_matrix(old.require(old.matrix, "02"))
    result = factors.fit_factors(matrix, **params.factors.fit_kwargs(params.seed))
    factors.write_factor_outputs(result, str(old.root))

    step = steps.run_step("03", params, str(new.root))
    assert isinstance(step, steps.FactorsStep) and step.result.n_factors == result.n_factors
    assert step.matrix.equals(matrix)
    before, after = _files(old.root), _files(new.root)
    assert sorted(before) == sorted(after) and {"factors.json", "loadings.csv"} <= set(after)
    for name in before:
        if name.endswith(".html"):
            assert _without_plotly_ids(before[name]) == _without_plotly_ids(after[name]), name
        else:
            assert before[name] == after[name], name


def test_run_taxonomy_writes_what_the_notebook_wrote(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "embed", _fake_embed)
    params = parse_params(PARAMS)
    old, new = _planted_run(tmp_path / "old"), _planted_run(tmp_path / "new")
    for rd in (old, new):
        steps.run_factors(params, rd.root)
    # what 04_taxonomy.ipynb ran inline before steps.py
    tp = params.taxonomy
    assignment, loadings, meta = taxonomy.read_factor_outputs(old.require(old.factors_json, "03"), old.loadings)
    result = taxonomy.build_taxonomy(assignment, loadings, k_min=tp.k_min, k_max=tp.k_max, seed=params.seed,
                                     call=namer_from_params(params, str(old.root)), model=tp.namer,
                                     name=f"{params.run_name}_taxonomy", method={"factors": meta})
    result.write(str(old.root))

    step = steps.run_taxonomy(params, str(new.root))
    assert step.result.taxonomy == result.taxonomy
    for name in ("taxonomy.yaml", "clusters.csv"):
        assert (new.root / name).read_bytes() == (old.root / name).read_bytes(), name


def test_a_step_says_which_earlier_step_it_needs(tmp_path):
    params = parse_params(PARAMS)
    with pytest.raises(UserError, match="run step 02 first"):
        steps.run_factors(params, tmp_path)
    with pytest.raises(UserError, match="run step 03 first"):
        steps.run_taxonomy(params, tmp_path)


def test_run_step_runs_a_coroutine_step_from_synchronous_code(tmp_path, monkeypatch):
    seen = {}

    async def fake(params, run_dir, progress=False):
        await asyncio.sleep(0)
        seen["args"] = (params, run_dir, progress)
        return "done"

    monkeypatch.setitem(steps.STEPS, "01_elicit", fake)
    monkeypatch.setattr(embeddings, "clear_memory_cache", lambda: seen.setdefault("cleared", True))
    assert steps.run_step("01", "p", tmp_path, progress=True) == "done"
    assert seen == {"args": ("p", tmp_path, True), "cleared": True}  # a step starts as in a fresh kernel
