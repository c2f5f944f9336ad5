"""Open report pages in a real headless Chromium (Debian's, never a downloaded build) with networking off, and say
what a reader would see: figures rendered, JavaScript errors, any attempt to reach the network, and the faults a
reader notices that counting figures misses: tick labels drawn over each other, a category axis that labels only some
of its categories, a heading with nothing under it, HTML tags or escape sequences shown as text, a tab titled
"Notebook". Used by the report test and handy for a look (`python -m tests.support.browser RUN_DIR [SHOT_DIR]`, from the repo root).
"""
from __future__ import annotations

import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
WIDTH = 1400  # a laptop browser window: the width every screenshot and layout check uses

#: text a reader should never see on a page: markup or escapes shown literally, a model's special tokens
SHOWN_AS_TEXT = [re.compile(p) for p in (
    r"</?(?:strong|em|b|i|u|br|p|div|span|table|tr|td|th|ul|ol|li|h[1-6]|sup|sub|code|pre)\b[^<>]{0,80}>",
    r"<(?:start|end)_of_[a-z_]+>", r"<\|[a-z_]+\|>", r"\\n", r"&lt;|&gt;|&amp;[a-z]+;", r"\bnan\b|\bNaN\b")]
TAB_TITLES_REFUSED = {"", "Notebook", "Untitled"}

# For each plotly figure: its rendered state and, per axis, overlapping tick labels and categories left unlabelled.
_FIGURE_JS = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const rect = e => e.getBoundingClientRect();
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const problems = [];
  const fl = gd._fullLayout || {};
  const title = (fl.title && fl.title.text || '').replace(/<[^>]+>/g, ' ').slice(0, 80);
  const groups = [];
  gd.querySelectorAll('g.xaxislayer-above, g.yaxislayer-above').forEach(g => groups.push(['axis', g]));
  gd.querySelectorAll('g.colorbar g.cbaxis, g.colorbar .cbaxis').forEach(g => groups.push(['colour bar', g]));
  for (const [kind, g] of groups) {
    const ticks = Array.from(g.querySelectorAll('text')).filter(t => t.textContent.trim() && rect(t).width > 0);
    for (let i = 0; i < ticks.length; i++) for (let j = i + 1; j < ticks.length; j++) {
      // rotated labels: their boxes overlap anyway; what matters is the gap across the slant vs the font size
      const angle = +(((ticks[i].getAttribute('transform') || '').match(/rotate\((-?[\d.]+)/) || [0, 0])[1]);
      let hit;
      if (angle % 180) {
        const a = rect(ticks[i]), b = rect(ticks[j]);
        const gap = Math.abs(((a.left + a.right) - (b.left + b.right)) / 2) * Math.abs(Math.sin(angle * Math.PI / 180));
        hit = gap < 0.8 * parseFloat(getComputedStyle(ticks[i]).fontSize) && overlap(a, b);
      } else hit = overlap(rect(ticks[i]), rect(ticks[j]));
      if (hit) problems.push(`${kind} labels overlap: "${ticks[i].textContent}" / "${ticks[j].textContent}"`);
    }
  }
  for (const key of Object.keys(fl)) {
    const ax = fl[key];
    if (!/^[xy]axis\d*$/.test(key) || !ax || ax.type !== 'category' || !ax.visible || ax.showticklabels === false) continue;
    const cats = (ax._categories || []).length;
    const shown = (ax._vals || []).filter(v => v.text !== undefined && v.text !== '').length;
    if (cats > 0 && shown > 0 && shown < cats && ax.tickmode !== 'array')
      problems.push(`${key} labels ${shown} of its ${cats} categories`);
  }
  return {title, drawn: !!gd.querySelector('svg.main-svg'), height: Math.round(rect(gd).height), problems};
})
"""

# Sections (an h2 of a notebook page, up to the next h1/h2) that run code yet show no output.
_EMPTY_JS = r"""
() => {
  const empty = [];
  let head = null, code = 0, seen = 0;
  const close = () => { if (head && code && !seen) empty.push(head); };
  for (const c of document.querySelectorAll('.jp-Cell')) {
    const h = c.classList.contains('jp-MarkdownCell') ? c.querySelector('h1, h2') : null;
    if (h) { close(); head = h.tagName === 'H2' ? h.textContent.replace('\u00b6', '').trim() : null; code = 0; seen = 0; }
    if (!c.classList.contains('jp-CodeCell')) continue;
    code += 1;
    seen += Array.from(c.querySelectorAll('.jp-OutputArea-output'))
      .filter(o => o.innerText.trim() || o.querySelector('svg, img, table, .js-plotly-plot')).length;
  }
  close();
  return empty;
}
"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageCheck:
    page: str
    title: str = ""
    figures: int = 0
    rendered: int = 0
    js_errors: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)
    screenshot: str | None = None
    problems: list[str] = field(default_factory=list)  # what a reader would trip over, in words

    @property
    def ok(self) -> bool:
        return self.rendered == self.figures and not self.js_errors and not self.network


def shown_as_text(text: str) -> list[str]:
    """Markup, escapes, special tokens or NaN that a page shows a reader literally (from its visible text)."""
    hits = []
    for pattern in SHOWN_AS_TEXT:
        for m in pattern.finditer(text):
            hits.append(text[max(0, m.start() - 30):m.end() + 30].replace("\n", " "))
            break
    return hits


def _inspect(page, check: PageCheck, root_selector: str | None = None) -> None:
    figs = page.evaluate(_FIGURE_JS)
    check.figures = len(figs)
    check.rendered = sum(f["drawn"] for f in figs)
    for f in figs:
        check.problems += [f"figure '{f['title']}': {p}" for p in f["problems"]]
    check.problems += [f"heading '{h}' has no output under it" for h in page.evaluate(_EMPTY_JS)]
    text = page.evaluate("document.body.innerText")
    check.problems += [f"shown as text: ...{h}..." for h in shown_as_text(text)]
    if page.evaluate("!!document.getElementById('vl-missing-plotly')"):
        check.problems.append("figures cannot be drawn: plotly.min.js is not beside the page (the page says so)")
    if check.title.strip() in TAB_TITLES_REFUSED:
        check.problems.append(f"tab title is '{check.title}'")


def check_pages(pages: list[Path], screenshot_dir: Path | None = None, full_page: bool = True) -> list[PageCheck]:
    """Load each page from file:// at 1400 px, count plotly figures with an SVG drawn in them, list what a reader
    would trip over, and take a full-page screenshot."""
    results = []
    with _offline_browser() as context:
        for path in pages:
            check = PageCheck(page=str(path))
            page = context.new_page()
            _listen(page, check)
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(300)
            check.title = page.title()
            _inspect(page, check)
            if screenshot_dir is not None:
                screenshot_dir.mkdir(parents=True, exist_ok=True)
                shot = screenshot_dir / (path.stem + ".png")
                page.screenshot(path=str(shot), full_page=full_page)
                check.screenshot = str(shot)
            page.close()
            results.append(check)
    return results


def check_single_file(path: Path, screenshot_dir: Path | None = None) -> list[PageCheck]:
    """The one-file report: one check per section (the summary and each step), each with its own screenshot."""
    results = []
    with _offline_browser() as context:
        page = context.new_page()
        whole = PageCheck(page=str(path))
        _listen(page, whole)
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(300)
        whole.title = page.title()
        _inspect(page, whole)
        results.append(whole)
        page.add_style_tag(content="#vl-bar { display: none !important; }")  # the sticky bar would cover shots
        for sid in page.evaluate("Array.from(document.querySelectorAll('section.vl-section')).map(s => s.id)"):
            sec = PageCheck(page=f"{path.name}#{sid}", title=whole.title)
            loc = page.locator(f"section[id='{sid}']")
            sec.figures = loc.evaluate("s => s.querySelectorAll('.js-plotly-plot').length")
            sec.rendered = loc.evaluate("s => Array.from(s.querySelectorAll('.js-plotly-plot'))"
                                        ".filter(d => d.querySelector('svg.main-svg')).length")
            if not loc.evaluate("s => s.innerText.trim().length"):
                sec.problems.append("section is empty")
            if screenshot_dir is not None:
                screenshot_dir.mkdir(parents=True, exist_ok=True)
                shot = screenshot_dir / f"{sid}.png"
                loc.screenshot(path=str(shot))
                sec.screenshot = str(shot)
            results.append(sec)
    return results


@contextmanager
def _offline_browser() -> Iterator[Any]:
    """Debian's headless Chromium with networking off, as a 1400 px browser context."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium not found (make setup installs Debian's chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_context(offline=True, viewport={"width": WIDTH, "height": 900})
        finally:
            browser.close()


def _listen(page, check: PageCheck) -> None:
    page.on("pageerror", lambda err, c=check: c.js_errors.append(str(err)))
    page.on("console", lambda msg, c=check: c.js_errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda req, c=check: None if req.url.startswith(("file:", "data:", "blob:", "about:"))
            else c.network.append(req.url))


def main(run_dir: str, shots: str | None = None) -> int:
    from valuelex_utils.report import shareable_report

    report = Path(run_dir) / "report"
    shot_dir = Path(shots) if shots else Path(run_dir) / "screenshots"
    single = shareable_report(run_dir)
    bad = 0
    for c in check_single_file(single, shot_dir):
        bad += not c.ok
        print(f"{Path(c.page).name:48s} figures {c.rendered}/{c.figures}  js errors {len(c.js_errors)}  "
              f"network {len(c.network)}  {c.screenshot or ''}")
        for e in c.js_errors[:3] + c.network[:3] + c.problems:
            print("   ", e[:200])
    print(f"{single.name}: {single.stat().st_size / 1e6:.1f} MB; report folder "
          f"{sum(p.stat().st_size for p in report.iterdir()) / 1e6:.1f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
