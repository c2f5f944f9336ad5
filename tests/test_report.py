"""The report a researcher reads and shares, the tables and figures in it, and notebooks that are safe to explore.

Fast: a small run dir is built here by hand (a short executed notebook with what real runs put in one: plotly's
4.8 MB bundle, llama.cpp's stderr line, a widget cell and its heading, markup in an answer), so the report and a real
headless Chromium are exercised in seconds; the full smoke study's report is looked at in test_pipeline.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import yaml

from valuelex_utils import tables
from tests.support.browser import check_pages, check_single_file, chromium_path, shown_as_text
from valuelex_utils.report import build_report, shareable_report
from valuelex_utils.rundir import REPO_ROOT

SMOKE = REPO_ROOT / "params" / "smoke.yaml"
LLAMA_LINE = "llama_kv_cache_iswa: using full-size SWA cache (ref: https://github.com/ggml-org/llama.cpp/pull/13194)\n"


def _plotly_outputs(fig: go.Figure, first: bool) -> list:
    """What plotly's `notebook` renderer leaves in a cell: the bundle once per page, then the figure's div."""
    from plotly.offline import get_plotlyjs

    outs = []
    if first:
        outs.append(nbformat.v4.new_output("display_data", data={"text/html": (
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n<script>" + get_plotlyjs()
            + "</script>")}))
    outs.append(nbformat.v4.new_output("display_data", data={
        "text/html": fig.to_html(full_html=False, include_plotlyjs=False), "text/plain": "Figure"}))
    return outs


def _notebook(path: Path, title: str, answers: pd.DataFrame) -> None:
    nb = nbformat.v4.new_notebook()
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout={"title": {"text": f"{title} bars"}})
    code = nbformat.v4.new_code_cell("answers = run()")
    code.outputs = [nbformat.v4.new_output("stream", name="stderr", text=LLAMA_LINE * 3),
                    nbformat.v4.new_output("stream", name="stdout", text="12 answers\n")]
    figure = nbformat.v4.new_code_cell("fig")
    figure.outputs = _plotly_outputs(fig, first=True)
    table = nbformat.v4.new_code_cell("tables.table(answers)")
    table.outputs = [nbformat.v4.new_output("execute_result", data={
        "text/html": tables.table(answers, text_cols=["text"])._repr_html_(), "text/plain": "table"})]
    widget = nbformat.v4.new_code_cell("widgets.table_browser(answers)", metadata={"tags": ["widget"]})
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\nWhat this step does."), code,
                nbformat.v4.new_markdown_cell("## A figure"), figure, nbformat.v4.new_markdown_cell("## Answers"), table,
                nbformat.v4.new_markdown_cell("## Browse the answers\n(interactive; not part of the HTML report)"),
                widget]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run") / "tiny"
    (root / "notebooks").mkdir(parents=True)
    answers = pd.DataFrame({"respondent": ["a", "b"], "n": [267.0, 3.0], "p": [0.02244, 0.5123],
                            "text": ["Values:\\n\\n1. <strong>Honesty</strong> <start_of_image>", "Kindness &amp; care"]})
    _notebook(root / "notebooks" / "01_elicit.ipynb", "01 · Value elicitation", answers)
    _notebook(root / "notebooks" / "02_lexicon.ipynb", "02 · The value lexicon", answers)
    params = yaml.safe_load(SMOKE.read_text())
    (root / "manifest.json").write_text(json.dumps({"run_name": "tiny", "params": params, "steps": {}, "calls": {}}))
    build_report(root)
    return root


def test_one_file_to_share_with_plotly_once_and_a_per_page_view_sharing_one_copy(small_run):
    report = small_run / "report"
    single = shareable_report(small_run)
    assert single == report / "valuelex-report-tiny.html"
    text = single.read_text()
    assert text.count("* plotly.js v") == 1  # inlined once, not once per page
    assert 'id="01_elicit"' in text.replace("'", '"') and 'id="02_lexicon"' in text.replace("'", '"')
    assert 'href="#02_lexicon"' in text  # the bar jumps between sections
    assert single.stat().st_size < 8e6
    for page in ("01_elicit.html", "02_lexicon.html", "index.html"):
        body = (report / page).read_text()
        assert "* plotly.js v" not in body and "<script src='plotly.min.js'>" in body
    assert (report / "plotly.min.js").exists()


def test_pages_have_tab_titles_and_leave_out_widgets_and_native_noise(small_run):
    page = (small_run / "report" / "01_elicit.html").read_text()
    assert "<title>01 · Value elicitation · ValueLex report: tiny</title>" in page
    assert "Browse the answers" not in page and "table_browser" not in page
    assert "llama_kv_cache_iswa" not in page and "12 answers" in page


@pytest.mark.skipif(chromium_path() is None, reason="Debian chromium not installed (make setup installs it)")
def test_the_report_looks_right_in_a_browser(small_run, tmp_path):
    checks = check_single_file(shareable_report(small_run), tmp_path / "shots")
    whole, sections = checks[0], checks[1:]
    assert whole.ok, (whole.js_errors, whole.network)
    assert whole.figures == 2 + 0 and whole.rendered == 2  # each notebook's figure (the tiny run has no key figures)
    assert whole.problems == [], whole.problems
    assert [s.page.split("#")[1] for s in sections] == ["vl-index", "01_elicit", "02_lexicon"]
    for s in sections:
        assert not s.problems and Path(s.screenshot).stat().st_size > 5_000
    # index.html alone, copied elsewhere, says why its figures are missing instead of staying blank
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(small_run / "report" / "01_elicit.html", lone)
    [page] = check_pages([lone / "01_elicit.html"])
    assert page.title == "01 · Value elicitation · ValueLex report: tiny"
    assert any("plotly.min.js is not beside the page" in p for p in page.problems), page.problems


def test_the_browser_checks_catch_what_a_reader_trips_over(tmp_path):
    """Each check fires on a page that has the fault (a test of the tests)."""
    assert shown_as_text("1. <strong>Honesty</strong>") and shown_as_text("a\\n\\nb") and shown_as_text("x NaN y")
    assert shown_as_text("<start_of_image> yes") and not shown_as_text("w < 0.5 and w > 0.4")
    if chromium_path() is None:
        pytest.skip("Debian chromium not installed")
    from plotly.offline import get_plotlyjs

    words = [f"word{i}" for i in range(40)]
    crowded = go.Figure(go.Heatmap(z=np.random.default_rng(0).random((40, 2)), y=words), layout={"height": 250})
    bad = tmp_path / "bad.html"
    bad.write_text("<html><head><title>Notebook</title><script>" + get_plotlyjs() + "</script></head><body>"
                   + crowded.to_html(full_html=False, include_plotlyjs=False)
                   + "<p>answer: &lt;strong&gt;x&lt;/strong&gt;</p></body></html>")
    [c] = check_pages([bad])
    assert any("tab title" in p for p in c.problems)
    assert any("shown as text" in p for p in c.problems)
    assert any("labels" in p and "of its 40 categories" in p or "overlap" in p for p in c.problems), c.problems


def test_numbers_and_answers_are_formatted_for_people():
    assert [tables.fmt_number(v) for v in (267.0, 0.02244, 0.5123, 12345.0, float("nan"))] == \
        ["267", "0.0224", "0.512", "12,345", "—"]
    assert tables.clean_text("Values:\\n\\n1. <strong>Honesty</strong> <start_of_image>") == "Values:\n\n1. Honesty"
    html = tables.table(pd.DataFrame({"text": ["<script>x</script> a < b"], "n": [3.0]}), text_cols=["text"])
    shown = html._repr_html_()
    assert "<script>" not in shown and "a &lt; b" in shown and ">3<" in shown
    long = tables.table(pd.DataFrame({"text": ["word " * 400]}), text_cols=["text"], max_chars=100)._repr_html_()
    assert "more characters)" in long  # never cut silently


def test_thin_data_and_unstable_k_are_said_in_words():
    summary = pd.DataFrame({"metric": ["resamples", "K (full data)", "share of resamples with a different K", "K counts"],
                            "value": [20, 3, 0.8, '{"2": 8, "3": 4, "4": 8}']})
    said = tables.stability_warning(summary)
    assert said and "80% of 20 resamples" in said and "not stable" in said
    assert tables.stability_warning(summary.assign(value=[20, 3, 0.05, "{}"])) is None
    assert "Only 12 completions" in tables.thin_data_warning(12, "completions")
    assert tables.thin_data_warning(300, "completions") is None


def test_figures_fit_their_data_and_label_every_word():
    from valuelex_utils.comparison import figure4
    from valuelex_utils.factors.figures import _rows_said
    from valuelex_utils.figures import growth, profile_heatmap

    table = pd.DataFrame({"system": ["valuelex"] * 4, "model": ["a", "a", "b", "b"], "column": ["X", "Y"] * 2,
                          "w": [0.51, 0.53, 0.50, 0.52], "lo": [0.49, 0.52, 0.49, 0.50],
                          "hi": [0.53, 0.54, 0.51, 0.54], "n": [300] * 4})
    fig = figure4(table)
    lo, hi = fig.layout.yaxis.range
    assert 0.4 < lo < 0.49 and 0.54 < hi < 0.6  # fitted to 0.49-0.54, neutral 0.5 inside
    assert "n = 300 completions" in fig.layout.title.subtitle.text and "whisker" in fig.layout.title.subtitle.text
    prof = pd.DataFrame({"system": "run", "level": "model", "id": ["a", "a", "b", "b"], "training": "aligned",
                         "column": ["X", "Y"] * 2, "parent": [None, "X"] * 2, "w": [0.51, 0.53, 0.50, 0.52],
                         "lo": [0.49, 0.52, 0.49, 0.50], "hi": [0.53, 0.54, 0.51, 0.54], "n": [297, 300, 300, 300]})
    heat = profile_heatmap(prof)
    assert "[0.52, 0.54]" in heat.data[0].text[0][1]  # the interval is in the cell, not only on hover
    assert "n = 297-300 completions per cell" in heat.layout.title.subtitle.text and heat.layout.height >= 300
    curve = pd.DataFrame({"respondents": [1, 2, 3], "mean": [3, 5, 6], "lo": [2, 4, 6], "hi": [4, 6, 6]})
    assert [t.mode for t in growth(curve).data] == ["lines", "lines", "lines+markers"]  # no dots on the band
    assert _rows_said(360, [f"r{i % 12}|p{i}|s0" for i in range(360)]) == "360 answers of 12 respondents"
    assert _rows_said(12, [f"r{i}" for i in range(12)]) == "12 respondents"


def test_the_loadings_heatmap_labels_every_word_and_the_sunburst_has_no_hole():
    from valuelex_utils import factors, taxonomy

    rng = np.random.default_rng(1)
    latent = rng.normal(size=(200, 2))
    words = [f"w{i}" for i in range(38)]
    counts = np.clip(np.round(latent @ rng.normal(size=(2, 38)) + rng.normal(size=(200, 38)) + 2), 0, None)
    result = factors.fit_factors(pd.DataFrame(counts, columns=words), n_factors=2, seed=0, pa_iter=5)
    heat = factors.loadings_heatmap(result)
    assert list(heat.layout.yaxis.tickvals) == list(heat.data[0].y) and len(heat.data[0].y) == len(result.words)
    assert heat.layout.height >= 18 * len(result.words)
    clusters = pd.DataFrame({"word": ["a", "b", "c"], "dimension": ["D1", "D1", "D2"],
                             "subdimension": ["S1", "S1", None]})
    sb = taxonomy.sunburst_figure(clusters).data[0]
    parents = dict(zip(sb.ids, sb.parents))

    def level(i: str) -> int:
        return 0 if not parents[i] else 1 + level(parents[i])
    assert all(level(i) == 2 for i, lab in zip(sb.ids, sb.labels) if i.startswith("w:"))  # every word on ring 3
    assert "(not split)" in sb.labels


def test_exploring_a_run_writes_into_scratch_and_never_over_its_products(tmp_path, monkeypatch):
    from valuelex_utils.notebook import setup_notebook

    run = tmp_path / "run"
    monkeypatch.delenv("VALUELEX_WRITE_PRODUCTS", raising=False)
    first = setup_notebook(str(run), str(SMOKE), write_products=True)  # as `valuelex run` would
    assert first.rd.root == run.resolve()
    (run / "value_profiles.csv").write_text("finished run\n")
    ctx = setup_notebook(str(run), str(SMOKE))  # by hand, e.g. in JupyterLab
    assert ctx.rd.root == run.resolve() / "scratch" and ctx.run.root == run.resolve()
    assert (ctx.rd.profiles).read_text() == "finished run\n"  # reads see the run's products
    ctx.rd.profiles.write_text("explored\n")
    assert (run / "value_profiles.csv").read_text() == "finished run\n"
    again = setup_notebook(str(run), str(SMOKE))
    assert again.rd.profiles.read_text() == "explored\n"  # an exploration's own newer product is kept
    monkeypatch.setenv("VALUELEX_WRITE_PRODUCTS", "1")
    assert setup_notebook(str(run), str(SMOKE)).rd.root == run.resolve()


def test_explorers_are_widgets_in_jupyterlab_and_static_html_in_batch(monkeypatch):
    """In batch (`valuelex run`, nbval) no widget is created: Output widgets have hung batch runs with the kernel idle;
    the first view is shown as HTML. Interactively the same view sits under a dropdown."""
    import ipywidgets

    from valuelex_utils import widgets

    df = pd.DataFrame({"respondent": ["m1", "m2"], "stem": ["I like...", "I hate..."], "a": [5.0, 1.0],
                       "b": [2.0, 4.0], "completion": ["helping <b>people</b>", "lying"]})
    monkeypatch.setenv("VALUELEX_HEADLESS", "1")
    static = widgets.extremes_browser(df, ["a", "b"], n=1)
    assert not isinstance(static, ipywidgets.Widget)
    assert "<h4>highest</h4>" in static.data and "helping people" in static.data and "<b>" not in static.data
    listing = widgets.table_browser(df, ["respondent"], "completion")
    assert "2 rows" in listing.data
    monkeypatch.setenv("VALUELEX_HEADLESS", "0")
    live = widgets.extremes_browser(df, ["a", "b"], n=1)
    assert isinstance(live, ipywidgets.VBox)
    assert [d.options for d in live.children[0].children] == [("a", "b")]
