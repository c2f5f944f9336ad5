"""`valuelex report RUN_DIR`: an HTML report of a run that colleagues without Python or internet can open.

Two views of the same content, both working from `file://` with networking off:
- `report/valuelex-report-<run>.html`: ONE self-contained file (summary, key figures, every step, plotly.js inlined
  once, a bar to jump between sections): the file to send; about 5-6 MB, 4.8 MB of it plotly.js.
- `report/index.html` + one page per notebook + one shared `plotly.min.js` beside them, for browsing in place; a page
  opened without that file says so instead of showing blank figures.
Code is hidden behind a toggle, widget cells (and the headings that only introduce them) are left out, native
libraries' stderr noise is dropped, and nbconvert's CDN scripts (require.js, MathJax, mermaid) are removed.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .rundir import RunDir, atomic_write_text

_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.I)
_REMOTE_LINK = re.compile(r"<link[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>", re.I)
_REMOTE_MODULE = re.compile(r"<script type=\"module\">(?:(?!</script>).)*https?://(?:(?!</script>).)*</script>", re.S)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)

#: stderr lines of native libraries that say nothing to a reader (llama.cpp's KV-cache notes): left out of the report
NATIVE_NOISE = [re.compile(p) for p in (r"^llama_", r"^ggml_", r"^gguf_", r"^load_tensors:", r"^print_info:")]
#: the bundle plotly's `notebook` renderer puts into a page's first figure output, about 4.8 MB each time
_PLOTLY_BUNDLE = re.compile(r"<script[^>]*>\s*/\*\*\s*\*\s*plotly\.js v.*?</script>", re.S)
PLOTLY_CONFIG = "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"

@dataclass
class Page:
    """One executed notebook, converted: its tab title, the lab template's styles, and the body's inner HTML."""
    stem: str
    title: str
    styles: str
    body: str


def offline_html(page: str) -> str:
    """Remove every reference to a remote script or stylesheet (nbconvert's CDN require.js, MathJax, mermaid)."""
    page = _MATHJAX_CONFIG.sub("", page)
    page = _REMOTE_SCRIPT.sub("", page)
    page = _REMOTE_MODULE.sub("", page)
    return _REMOTE_LINK.sub("", page)


def notebook_title(nb: Any, fallback: str) -> str:
    """The notebook's first heading ("01 · Value elicitation"), the name a reader sees on the tab."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def convert_notebook(notebook: Path) -> Page:
    """One executed notebook as report HTML: widget cells and the headings that only introduce them removed, native
    libraries' stderr noise and the per-page plotly.js bundle dropped (the report loads plotly.js once), offline."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    _drop_widget_state(nb)
    _drop_widget_cells(nb)
    _drop_noise_and_bundles(nb)
    title = notebook_title(nb, notebook.stem)
    exporter = HTMLExporter(template_name="lab")
    page, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    page = offline_html(page)
    head, _, rest = page.partition("<body")
    body = rest[rest.index(">") + 1:rest.rindex("</body>")]
    styles = "".join(re.findall(r"<style[^>]*>.*?</style>", head, re.S))
    return Page(stem=notebook.stem, title=title, styles=styles, body=body)


def _drop_widget_cells(nb: Any) -> None:
    """Cells tagged `widget` need a live kernel; so does the markdown cell just before one (its heading would stand
    empty on a static page)."""
    keep = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        if "widget" in cell.metadata.get("tags", []):
            continue
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if cell.cell_type == "markdown" and nxt is not None and "widget" in nxt.metadata.get("tags", []):
            continue
        keep.append(cell)
    nb.cells = keep


def _drop_noise_and_bundles(nb: Any) -> None:
    for cell in nb.cells:
        outs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(line for line in out.get("text", "").splitlines(keepends=True)
                               if not any(p.search(line) for p in NATIVE_NOISE))
                if not text.strip():
                    continue
                out["text"] = text
            data = out.get("data") or {}
            page = data.get("text/html")
            if isinstance(page, list):
                page = "".join(page)
            if isinstance(page, str) and _PLOTLY_BUNDLE.search(page):
                continue  # the renderer's init output: plotly.js itself, loaded once per report instead
            outs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outs


def _bar(pages: list[Page], here: str | None, single: bool) -> str:
    """The navigation bar: the index and every step, and the show-code toggle."""
    links = [("index", "report", "#vl-index" if single else "index.html")]
    links += [(p.stem, p.stem[:2], f"#{p.stem}" if single else f"{p.stem}.html") for p in pages]
    items = "".join(f'<a href="{href}" title="{html.escape(t)}"{" class=vl-here" if key == here else ""}>'
                    f"{html.escape(label)}</a>" for key, label, href in links
                    for t in [next((p.title for p in pages if p.stem == key), "summary and key figures")])
    return f'<div id="vl-bar">{items}<button id="vl-toggle" type="button">show code</button></div>'


def _drop_widget_state(nb: Any) -> None:
    """Widget views need a live kernel (or a widget manager from a CDN): drop them, keep their text fallback."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
                if not data:
                    data["text/plain"] = ""


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def summary_html(manifest: dict[str, Any]) -> str:
    """Run summary: params, respondents, steps and timings, calls, tokens, cache hits."""
    params = manifest.get("params", {})
    people = [[r["model"], r.get("name") or "", r.get("training"), r.get("size") if r.get("size") is not None else "NA",
               len(r.get("configs", []))] for r in params.get("respondents", [])]
    steps = [[k, Path(v.get("notebook", "")).name, v.get("status"), _fmt_seconds(v.get("seconds"))]
             for k, v in manifest.get("steps", {}).items()]
    calls = []
    for step, models in manifest.get("calls", {}).items():
        for model, c in models.items():
            calls.append([step, model, int(c.get("calls", 0)), int(c.get("cached", 0)), int(c.get("retries", 0)),
                          int(c.get("errors", 0)), int(c.get("prompt_tokens", 0)), int(c.get("completion_tokens", 0)),
                          f"{c.get('cost_usd', 0.0):.4f}"])
    git = manifest.get("git", {})
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(manifest.get("started", 0)))
    total = (manifest.get("finished") or 0) - (manifest.get("started") or 0)
    meta = (f"<p>Run <b>{html.escape(str(manifest.get('run_name')))}</b>, started {started}, "
            f"{_fmt_seconds(total)} in the last invocation; ValueLex {manifest.get('valuelex_version')}, "
            f"git {str(git.get('commit') or '-')[:10]}{' (dirty)' if git.get('dirty') else ''}, "
            f"seed {params.get('seed')}, params {html.escape(str(manifest.get('params_file')))}.</p>")
    return (meta + "<h3>Respondents</h3>" + _table(people, ["model", "name", "training", "size (B)", "configs"])
            + "<h3>Steps</h3>" + _table(steps, ["step", "notebook", "status", "time"])
            + "<h3>LLM calls</h3>" + _table(calls, ["step", "model", "calls", "cached", "retries", "errors",
                                                     "prompt tokens", "completion tokens", "cost USD"])
            + "<details><summary>All parameters</summary><pre>"
            + html.escape(json.dumps(params, indent=2)) + "</pre></details>")


def key_figures(rd: RunDir) -> list[tuple[str, Any, str]]:
    """The figures a reader wants first, each built only when its inputs exist in the run dir: (title, figure, a
    note in HTML shown with it, e.g. how much a profile says)."""
    builders: list[tuple[str, Callable[[RunDir], Any]]] = []
    try:
        from . import report_figures

        builders = report_figures.BUILDERS
    except ImportError:
        pass
    out = []
    for title, build in builders:
        try:
            fig = build(rd)
        except FileNotFoundError:
            continue
        if isinstance(fig, list):
            out.extend(fig)
        elif fig is not None:
            out.append((title, fig, ""))
    return out


INDEX_STYLE = """
.vl-index { font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; max-width: 1200px; margin: 16px auto;
            padding: 0 16px; color: #222; font-size: 14px; }
.vl-index table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
.vl-index th, .vl-index td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
.vl-index th { background: #f4f4f4; }
.vl-index td.vl-num { text-align: right; font-variant-numeric: tabular-nums; }
.vl-index .figure { margin: 12px 0 28px; }
.vl-index .vl-signal { font-size: 14px; margin: 4px 0 8px; }
.vl-index p.vl-caption { font-size: 13px; color: #444; margin: 2px 0 6px; max-width: 1100px; }
p.vl-little { background: #fff6e0; border-left: 4px solid #e0a100; padding: 6px 10px; }
p.vl-note, div.vl-note { background: #fdecea; border-left: 4px solid #d9534f; padding: 6px 10px; }
#vl-bar { position: sticky; top: 0; z-index: 1000; font: 13px sans-serif; background: #fafafa; padding: 6px 12px;
          border-bottom: 1px solid #ddd; }
#vl-bar a, #vl-bar button { margin-right: 4px; padding: 3px 8px; border: 1px solid #aaa; border-radius: 4px;
                            background: #fff; cursor: pointer; color: #222; text-decoration: none; font: 13px sans-serif; }
#vl-bar a.vl-here { background: #dde6f3; }
#vl-bar button { margin-left: 12px; }
.vl-section { scroll-margin-top: 44px; border-bottom: 3px solid #ccc; padding-bottom: 24px; margin-bottom: 24px; }
body.vl-hide-code .jp-CodeCell .jp-Cell-inputWrapper, body.vl-hide-code .jp-CodeCell .jp-InputArea,
body.vl-hide-code .jp-OutputPrompt { display: none !important; }
"""
TOGGLE_SCRIPT = """<script>
  document.body.classList.add("vl-hide-code");
  document.getElementById("vl-toggle").addEventListener("click", function () {
    var hidden = document.body.classList.toggle("vl-hide-code");
    this.textContent = hidden ? "show code" : "hide code";
  });
</script>"""
#: said on a per-page view opened without its plotly.min.js (e.g. index.html alone, mailed): never a silent blank
MISSING_PLOTLY = """<script>
  if (typeof Plotly === "undefined") {
    document.body.insertAdjacentHTML("afterbegin", "<div class='vl-note' id='vl-missing-plotly'><b>The figures cannot "
      + "be drawn:</b> plotly.min.js is not next to this page. Open the one-file report %s instead "
      + "(everything inside; that is the file to send).</div>");
  }
</script>"""


def share_name(run_name: Any) -> str:
    """The one self-contained file of a run's report: the file to send to a colleague."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(run_name or "run")).strip("-") or "run"
    return f"valuelex-report-{slug}.html"


def index_body(manifest: dict[str, Any], figs: list[tuple[str, Any, str]], pages: list[Page], single: bool) -> str:
    """The summary and key figures, the same in index.html and the one-file report."""
    run = html.escape(str(manifest.get("run_name")))
    steps = "".join(f'<li><a href="{f"#{p.stem}" if single else f"{p.stem}.html"}">{html.escape(p.title)}</a></li>'
                    for p in pages)
    fig_html = "".join(f'<div class="figure"><h3>{html.escape(t)}</h3>{note}'
                       f'{f.to_html(full_html=False, include_plotlyjs=False)}</div>' for t, f, note in figs)
    return (f"<h1>ValueLex report: {run}</h1><h2>Steps</h2><ol class='vl-steps'>{steps}</ol>"
            f"<h2>Run summary</h2>{summary_html(manifest)}"
            f"<h2>Key figures</h2>{fig_html or '<p>No figures yet: run more steps.</p>'}")


def build_report(run_dir: str | Path) -> Path:
    """Write `RUN_DIR/report/`: the one-file report to share (`share_name`), and the per-page view (index.html, one
    page per notebook, one shared plotly.min.js beside them); return index.html's path."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run dir not found: {run_dir}")
    rd = RunDir(root.resolve())
    if not rd.manifest.exists():
        raise UserError(f"{root} has no manifest.json: not a ValueLex run dir (run `valuelex run` first)")
    try:
        manifest = json.loads(rd.manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{rd.manifest}: not valid JSON (a damaged run dir?)") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{rd.manifest}: expected a JSON object")
    # built in a staging folder and swapped in whole: a failure (or a kill) leaves the previous report as it was
    for stale in rd.root.glob(".report.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    out = Path(tempfile.mkdtemp(dir=rd.root, prefix=".report.", suffix=".tmp"))
    try:
        os.chmod(out, 0o755)
        _write_pages(rd, manifest, out)
        _swap_in(out, rd.report)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return rd.report / "index.html"


def _swap_in(staging: Path, final: Path) -> None:
    """Replace the folder `final` with `staging` (two renames; the old folder is removed after)."""
    old = None
    if final.exists():
        old = final.with_name(f".report.old-{os.getpid()}.tmp")
        os.rename(final, old)
    os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_pages(rd: RunDir, manifest: dict[str, Any], out: Path) -> None:
    """Every page (scrubbed writes: `atomic_write_text`), the shared plotly.min.js and the one-file report."""
    pages = [convert_notebook(nb) for nb in sorted(rd.notebooks.glob("*.ipynb"))]
    plotly_js = _copy_plotly_js(out)
    figs = key_figures(rd)
    run = html.escape(str(manifest.get("run_name")))
    share = share_name(manifest.get("run_name"))
    missing = MISSING_PLOTLY % html.escape(share)
    for p in pages:
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(p.title)} · ValueLex report: "
                f"{run}</title>{p.styles}<style>{INDEX_STYLE}</style>{PLOTLY_CONFIG}"
                f"<script src='plotly.min.js'></script></head>"
                f"<body class='jp-Notebook' data-jp-theme-light='true' data-jp-theme-name='JupyterLab Light'>"
                f"{_bar(pages, p.stem, single=False)}{p.body}{TOGGLE_SCRIPT}{missing}</body></html>")
        atomic_write_text(out / f"{p.stem}.html", page)
    index = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ValueLex report: {run}</title>"
             f"<style>{INDEX_STYLE}</style><script src='plotly.min.js'></script></head><body>"
             f"{_bar(pages, 'index', single=False)}<div class='vl-index'>"
             f"{index_body(manifest, figs, pages, single=False)}</div>{TOGGLE_SCRIPT}{missing}</body></html>")
    atomic_write_text(out / "index.html", index)
    styles = pages[0].styles if pages else ""
    sections = "".join(f"<section class='vl-section' id='{p.stem}'>{p.body}</section>" for p in pages)
    one = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ValueLex report: {run}</title>{styles}"
           f"<style>{INDEX_STYLE}</style>{PLOTLY_CONFIG}<script>{plotly_js}</script></head>"
           f"<body class='jp-Notebook' data-jp-theme-light='true' data-jp-theme-name='JupyterLab Light'>"
           f"{_bar(pages, None, single=True)}<section class='vl-section vl-index' id='vl-index'>"
           f"{index_body(manifest, figs, pages, single=True)}</section>{sections}{TOGGLE_SCRIPT}</body></html>")
    atomic_write_text(out / share, one)


def shareable_report(run_dir: str | Path) -> Path:
    """The path of a built report's one self-contained file (the file to send)."""
    rd = RunDir(Path(run_dir).resolve())
    manifest = json.loads(rd.manifest.read_text(encoding="utf-8"))
    return rd.report / share_name(manifest.get("run_name"))


def _copy_plotly_js(out: Path) -> str:
    """One local copy of plotly.js shared by every per-page view; returns its text for the one-file report."""
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    dst = out / "plotly.min.js"
    if not dst.exists() or dst.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dst)
    return src.read_text(encoding="utf-8")
