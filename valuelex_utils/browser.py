"""Open report pages in a real headless Chromium (Debian's, never a downloaded build) with networking off, and say
what a reader would see: figures rendered, JavaScript errors, any attempt to reach the network. Used by the browser
test and handy for a quick look (`python -m valuelex_utils.browser RUN_DIR`)."""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageCheck:
    page: str
    figures: int = 0
    rendered: int = 0
    js_errors: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)
    screenshot: str | None = None

    @property
    def ok(self) -> bool:
        return self.rendered == self.figures and not self.js_errors and not self.network


def check_pages(pages: list[Path], screenshot_dir: Path | None = None) -> list[PageCheck]:
    """Load each page from file:// and count plotly figures with an SVG drawn in them."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium not found (make setup installs Debian's chromium)")
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        for path in pages:
            check = PageCheck(page=str(path))
            page = context.new_page()
            page.on("pageerror", lambda err, c=check: c.js_errors.append(str(err)))
            page.on("console", lambda msg, c=check: c.js_errors.append(msg.text) if msg.type == "error" else None)
            page.on("request", lambda req, c=check: None if req.url.startswith(("file:", "data:", "blob:", "about:"))
                    else c.network.append(req.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(500)
            check.figures = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
            check.rendered = page.evaluate(
                "Array.from(document.querySelectorAll('.js-plotly-plot')).filter(d => d.querySelector('svg.main-svg')).length")
            if screenshot_dir is not None:
                screenshot_dir.mkdir(parents=True, exist_ok=True)
                shot = screenshot_dir / (path.stem + ".png")
                page.screenshot(path=str(shot), full_page=False)
                check.screenshot = str(shot)
            page.close()
            results.append(check)
        browser.close()
    return results


def main(run_dir: str) -> int:
    report = Path(run_dir) / "report"
    pages = [report / "index.html", *sorted(p for p in report.glob("*.html") if p.name != "index.html")]
    bad = 0
    for c in check_pages(pages, Path(run_dir) / "screenshots"):
        bad += not c.ok
        print(f"{Path(c.page).name:32s} figures {c.rendered}/{c.figures}  js errors {len(c.js_errors)}  "
              f"network {len(c.network)}  {c.screenshot}")
        for e in c.js_errors[:3] + c.network[:3]:
            print("   ", e[:200])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
