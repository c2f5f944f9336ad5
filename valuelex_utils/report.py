"""`valuelex report RUN_DIR`: an HTML report of a run that colleagues without Python or internet can open.

One page per executed notebook (code hidden behind a toggle, widget cells left out) and `report/index.html` with the
run summary from manifest.json and the key figures rebuilt from the run dir's files. Every page works from `file://`
with networking off: plotly.js is inlined (notebook pages) or one local copy is shared (index), and nbconvert's CDN
scripts (require.js, MathJax), which no page here needs, are removed.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .rundir import RunDir, atomic_write_text

_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.I)
_REMOTE_LINK = re.compile(r"<link[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)

TOGGLE = """
<style>
  body.vl-hide-code .jp-CodeCell .jp-Cell-inputWrapper, body.vl-hide-code .jp-CodeCell .jp-InputArea,
  body.vl-hide-code .jp-OutputPrompt { display: none !important; }
  #vl-bar { position: fixed; top: 8px; right: 12px; z-index: 1000; font: 13px sans-serif; }
  #vl-bar button, #vl-bar a { margin-left: 6px; padding: 4px 10px; border: 1px solid #999; border-radius: 4px;
                              background: #fff; cursor: pointer; color: #222; text-decoration: none; }
</style>
<div id="vl-bar"><a href="index.html">&#8592; report</a><button id="vl-toggle" type="button">show code</button></div>
<script>
  document.body.classList.add("vl-hide-code");
  document.getElementById("vl-toggle").addEventListener("click", function () {
    var hidden = document.body.classList.toggle("vl-hide-code");
    this.textContent = hidden ? "show code" : "hide code";
  });
</script>
"""


def offline_html(page: str) -> str:
    """Remove every reference to a remote script or stylesheet (nbconvert's CDN require.js and MathJax)."""
    page = _MATHJAX_CONFIG.sub("", page)
    page = _REMOTE_SCRIPT.sub("", page)
    return _REMOTE_LINK.sub("", page)


def notebook_page(notebook: Path, out: Path) -> Path:
    """Convert one executed notebook: widget cells removed, code hidden by default, offline."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    _drop_widget_state(nb)
    exporter = HTMLExporter(template_name="lab")
    remover = TagRemovePreprocessor(remove_cell_tags={"widget"}, enabled=True)
    exporter.register_preprocessor(remover, enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    body = offline_html(body).replace("</body>", TOGGLE + "</body>", 1)
    atomic_write_text(out, body)  # (scrubbed)
    return out


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
body { font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; max-width: 1200px; margin: 24px auto;
       padding: 0 16px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
th { background: #f4f4f4; }
nav a { margin-right: 14px; }
.figure { margin: 12px 0 28px; }
.vl-signal { font-size: 14px; margin: 4px 0 8px; }
p.vl-little { background: #fff6e0; border-left: 4px solid #e0a100; padding: 6px 10px; }
p.vl-note { background: #fdecea; border-left: 4px solid #d9534f; padding: 6px 10px; }
"""


def build_report(run_dir: str | Path) -> Path:
    """Write `RUN_DIR/report/` (index.html, one page per notebook, plotly.min.js) and return index.html's path."""
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
    pages = []
    for nb in sorted(rd.notebooks.glob("*.ipynb")):
        pages.append(notebook_page(nb, out / (nb.stem + ".html")))
    _copy_plotly_js(out)
    figs = key_figures(rd)
    nav = "".join(f'<a href="{p.name}">{html.escape(p.stem)}</a>' for p in pages)
    fig_html = "".join(f'<div class="figure"><h3>{html.escape(t)}</h3>{note}'
                       f'{f.to_html(full_html=False, include_plotlyjs=False)}</div>' for t, f, note in figs)
    index = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ValueLex report: "
             f"{html.escape(str(manifest.get('run_name')))}</title><style>{INDEX_STYLE}</style>"
             f"<script src='plotly.min.js'></script></head><body>"
             f"<h1>ValueLex report: {html.escape(str(manifest.get('run_name')))}</h1><nav>{nav}</nav>"
             f"<h2>Run summary</h2>{summary_html(manifest)}"
             f"<h2>Key figures</h2>{fig_html or '<p>No figures yet: run more steps.</p>'}</body></html>")
    atomic_write_text(out / "index.html", index)


def _copy_plotly_js(out: Path) -> None:
    """One local copy of plotly.js shared by the index page (the notebook pages inline their own)."""
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    dst = out / "plotly.min.js"
    if not dst.exists() or dst.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dst)
