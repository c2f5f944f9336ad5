"""ipywidgets explorers for the notebooks. Cells that call them are tagged `widget` and left out of the HTML report
(a static page cannot run them).

In batch execution (`valuelex run`, nbval: `VALUELEX_HEADLESS=1`) no frontend renders a widget, and nbclient's
handling of Output widgets has hung such runs with the kernel idle after the cell (seen with ipykernel 7.4 and 6.31;
nbclient#312): there the explorers show their first view as static HTML and create no widget.
"""
from __future__ import annotations

import html
import os
from typing import Any, Callable

import pandas as pd

from .tables import TEXT_STYLE, clean_text, fmt_number


def interactive() -> bool:
    """True unless the notebook runs in batch (`VALUELEX_HEADLESS=1`, set by `valuelex run` and the test suite)."""
    return os.environ.get("VALUELEX_HEADLESS") != "1"


def table_browser(df: pd.DataFrame, filters: list[str], text_col: str, extra: list[str] | None = None,
                  limit: int = 20) -> Any:
    """Dropdowns over `filters` columns; shows up to `limit` matching texts with the `extra` columns."""
    extra = extra or []
    choices = {c: ["(all)"] + sorted(df[c].dropna().astype(str).unique().tolist()) for c in filters}

    def view(values: dict[str, str]) -> str:
        sel = df
        for c, v in values.items():
            if v != "(all)":
                sel = sel[sel[c].astype(str) == v]
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in [*filters, *extra])
            + f"<td style='{TEXT_STYLE}'>{html.escape(clean_text(r[text_col]))}</td></tr>"
            for _, r in sel.head(limit).iterrows())
        head = "".join(f"<th>{c}</th>" for c in [*filters, *extra, text_col])
        return f"<p>{len(sel)} rows</p><table><tr>{head}</tr>{rows}</table>"

    return _explorer(choices, view)


def extremes_browser(scores: pd.DataFrame, columns: list[str], text_col: str = "completion", n: int = 8) -> Any:
    """The `n` highest and lowest scored completions of a chosen (sub)dimension."""

    def view(values: dict[str, str]) -> str:
        col = values["value"]
        ranked = scores.dropna(subset=[col]).sort_values(col)
        out = []
        for title, part in (("highest", ranked.tail(n)[::-1]), ("lowest", ranked.head(n))):
            rows = "".join(f"<tr><td>{fmt_number(r[col])}</td><td>{html.escape(str(r['respondent']))}</td>"
                           f"<td>{html.escape(str(r['stem']))}</td><td style='{TEXT_STYLE}'>"
                           f"{html.escape(clean_text(r[text_col]))}</td></tr>" for _, r in part.iterrows())
            out.append(f"<h4>{title}</h4><table><tr><th>{col}</th><th>respondent</th><th>stem</th>"
                       f"<th>{text_col}</th></tr>{rows}</table>")
        return "".join(out)

    return _explorer({"value": list(columns)}, view)


def _explorer(choices: dict[str, list[str]], view: Callable[[dict[str, str]], str]) -> Any:
    """One dropdown per entry of `choices`; `view(selected values)` is the HTML shown below them. In batch, the first
    view as static HTML."""
    from IPython.display import HTML

    if not interactive():
        return HTML(view({k: opts[0] for k, opts in choices.items()}))
    import ipywidgets as w
    from IPython.display import display

    drops = {k: w.Dropdown(options=opts, description=k) for k, opts in choices.items()}
    out = w.Output()

    def render(_: Any = None) -> None:
        out.clear_output()
        with out:
            display(HTML(view({k: d.value for k, d in drops.items()})))

    for d in drops.values():
        d.observe(render, names="value")
    render()
    return w.VBox([w.HBox(list(drops.values())), out])
