"""The whole smoke study through the CLI (papermill), its manifest, the HTML report in a real headless Chromium."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.browser import check_pages, check_single_file, chromium_path
from valuelex_utils.params import load_params, parse_params
from valuelex_utils.rundir import REPO_ROOT
from valuelex_utils.runner import notebook_for

SMOKE = REPO_ROOT / "params" / "smoke.yaml"
RUN = REPO_ROOT / "outputs" / "smoke"   # the same dir the notebooks' parameters cells use: nbval then runs from cache
PRODUCTS = {"01": ["responses.jsonl", "elicitation.parquet"], "02": ["descriptors.parquet", "lexicon.csv", "matrix.csv"],
            "03": ["factors.json", "loadings.csv"], "04": ["taxonomy.yaml", "clusters.csv"],
            "05": ["completions.jsonl", "completions.parquet"],
            "06": ["scores.parquet", "value_profiles.csv", "reliability.json"], "07": ["comparison.csv"]}


def _valuelex(*args: str, **kw) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "valuelex"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def smoke_run() -> Path:
    copy = RUN / "params.yaml"
    if copy.exists():
        old = parse_params(yaml.safe_load(copy.read_text()), str(copy))
        if old.fingerprint() != load_params(SMOKE).fingerprint():
            shutil.rmtree(RUN)  # a run of an older smoke.yaml: this test owns outputs/smoke
    proc = _valuelex("run", "--params", str(SMOKE), "--run-dir", str(RUN), timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return RUN


def test_every_step_writes_its_products(smoke_run):
    for step, files in PRODUCTS.items():
        if notebook_for(step) is None:
            continue
        for name in files:
            assert (smoke_run / name).exists(), f"step {step} did not write {name}"
        assert (smoke_run / "notebooks" / notebook_for(step).name).exists()


def test_manifest_records_params_versions_timings_and_calls(smoke_run):
    m = json.loads((smoke_run / "manifest.json").read_text())
    assert m["params"]["run_name"] == "smoke" and m["versions"]["litellm"]
    assert "commit" in m["git"]
    assert all(s["status"] == "ok" and s["seconds"] > 0 for s in m["steps"].values())
    elicit = m["calls"]["01_elicit"]
    answered = sum(c["calls"] + c["cached"] for c in elicit.values())
    assert answered >= 32 * 1  # smoke: 4 respondents x 4 prompts x 2 samples per run of step 01


def test_rerun_is_served_from_the_cache(smoke_run):
    lines_before = (smoke_run / "responses.jsonl").read_text().count("\n")
    proc = _valuelex("run", "--params", str(SMOKE), "--run-dir", str(smoke_run), "--steps", "01", "--no-report",
                     timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (smoke_run / "responses.jsonl").read_text().count("\n") == lines_before
    last = json.loads((smoke_run / "calls.jsonl").read_text().splitlines()[-1])
    assert sum(c["calls"] for c in last["models"].values()) == 0


def test_run_dir_of_other_params_is_refused_and_untouched(smoke_run, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(SMOKE.read_text().replace("seed: 7", "seed: 8"))
    before = {p: p.stat().st_mtime for p in smoke_run.iterdir()}
    proc = _valuelex("run", "--params", str(other), "--run-dir", str(smoke_run), timeout=120)
    assert proc.returncode == 2 and "belongs to other params" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert {p: p.stat().st_mtime for p in smoke_run.iterdir()} == before


def test_profiles_are_on_the_runs_own_system_and_the_papers(smoke_run):
    import pandas as pd

    from valuelex_utils.systems import load_system

    own, paper = load_system(smoke_run / "taxonomy.yaml"), load_system("valuelex")
    prof = pd.read_csv(smoke_run / "value_profiles.csv")
    assert list(dict.fromkeys(prof["system"])) == ["run", "valuelex"]  # the run's own first
    assert set(prof.loc[prof.system == "run", "column"]) == set(own.columns())
    assert set(prof.loc[prof.system == "valuelex", "column"]) == set(paper.columns())
    assert prof["neutral_share"].between(0, 1).all()
    scores = pd.read_parquet(smoke_run / "scores.parquet")
    assert scores.groupby("system").size().to_dict() == {"run": len(scores) // 2, "valuelex": len(scores) // 2}
    rel = json.loads((smoke_run / "reliability.json").read_text())
    assert list(rel["systems"]) == ["run", "valuelex"] and rel["notes"] == []
    assert set(pd.read_csv(smoke_run / "comparison.csv")["system"]) == {"run", "valuelex", "schwartz", "mft"}
    index = (smoke_run / "report" / "index.html").read_text()
    first, second = index.find("on this run&#x27;s own value system"), index.find("on the paper&#x27;s value system")
    assert 0 < first < second  # the index leads with the run's own system
    assert index.count('class="vl-signal') >= 2  # each profile says in words how much it shows
    page = (smoke_run / "report" / "06_score.html").read_text()
    assert "of the scores are the neutral 3" in page and page.count("Value orientation per model: ") >= 2


@pytest.mark.skipif(chromium_path() is None, reason="Debian chromium not installed (make setup installs it)")
def test_report_renders_offline_in_headless_chromium(smoke_run):
    report = smoke_run / "report"
    pages = [report / "index.html", *sorted(p for p in report.glob("*.html") if p.name != "index.html")]
    assert len(pages) >= 2
    checks = check_pages(pages)
    for c in checks:
        assert c.rendered == c.figures, f"{c.page}: {c.rendered}/{c.figures} figures rendered"
        assert not c.js_errors, f"{c.page}: {c.js_errors[:3]}"
        assert not c.network, f"{c.page} fetched {c.network[:3]}"
        assert c.title and c.title != "Notebook"
    assert sum(c.figures for c in checks) >= 5


@pytest.mark.skipif(chromium_path() is None, reason="Debian chromium not installed (make setup installs it)")
def test_the_one_file_report_looks_right_at_1400_px(smoke_run):
    """The file to send: plotly.js once, under 8 MB, every section drawn and screenshotted, and none of what a
    reader trips over (overlapping labels, unlabelled words, empty sections, markup shown as text, NaN)."""
    from valuelex_utils.report import shareable_report

    single = shareable_report(smoke_run)
    assert single.stat().st_size < 8e6 and single.read_text().count("* plotly.js v") == 1
    checks = check_single_file(single, smoke_run / "screenshots")
    whole, sections = checks[0], checks[1:]
    assert whole.ok and whole.figures >= 10, (whole.rendered, whole.figures, whole.js_errors[:3], whole.network[:3])
    assert whole.problems == [], whole.problems
    steps = sorted(p.stem for p in (smoke_run / "notebooks").glob("*.ipynb"))
    assert [s.page.split("#")[1] for s in sections] == ["vl-index", *steps]
    for s in sections:
        assert s.rendered == s.figures and not s.problems, (s.page, s.problems)
        assert Path(s.screenshot).stat().st_size > 10_000
