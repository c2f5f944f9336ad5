"""ipywidgets explorers for the notebooks. Cells that call them are tagged `widget` and left out of the HTML report
(a static page cannot run them)."""
from __future__ import annotations

import html

import pandas as pd

from .tables import TEXT_STYLE, clean_text, fmt_number


def table_browser(df: pd.DataFrame, filters: list[str], text_col: str, extra: list[str] | None = None,
                  limit: int = 20):
    """Dropdowns over `filters` columns; shows up to `limit` matching texts with the `extra` columns."""
    import ipywidgets as w
    from IPython.display import HTML, display

    extra = extra or []
    drops = {c: w.Dropdown(options=["(all)"] + sorted(df[c].dropna().astype(str).unique().tolist()), description=c)
             for c in filters}
    out = w.Output()

    def render(_=None):
        sel = df
        for c, d in drops.items():
            if d.value != "(all)":
                sel = sel[sel[c].astype(str) == d.value]
        out.clear_output()
        with out:
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in [*filters, *extra])
                + f"<td style='{TEXT_STYLE}'>{html.escape(clean_text(r[text_col]))}</td></tr>"
                for _, r in sel.head(limit).iterrows())
            head = "".join(f"<th>{c}</th>" for c in [*filters, *extra, text_col])
            display(HTML(f"<p>{len(sel)} rows</p><table><tr>{head}</tr>{rows}</table>"))

    for d in drops.values():
        d.observe(render, names="value")
    render()
    return w.VBox([w.HBox(list(drops.values())), out])


def extremes_browser(scores: pd.DataFrame, columns: list[str], text_col: str = "completion", n: int = 8):
    """The `n` highest and lowest scored completions of a chosen (sub)dimension."""
    import ipywidgets as w
    from IPython.display import HTML, display

    pick = w.Dropdown(options=columns, description="value")
    out = w.Output()

    def render(_=None):
        col = pick.value
        ranked = scores.dropna(subset=[col]).sort_values(col)
        out.clear_output()
        with out:
            for title, part in (("highest", ranked.tail(n)[::-1]), ("lowest", ranked.head(n))):
                rows = "".join(f"<tr><td>{fmt_number(r[col])}</td><td>{html.escape(str(r['respondent']))}</td>"
                               f"<td>{html.escape(str(r['stem']))}</td><td style='{TEXT_STYLE}'>"
                               f"{html.escape(clean_text(r[text_col]))}</td></tr>" for _, r in part.iterrows())
                display(HTML(f"<h4>{title}</h4><table><tr><th>{col}</th><th>respondent</th><th>stem</th>"
                             f"<th>{text_col}</th></tr>{rows}</table>"))

    pick.observe(render, names="value")
    render()
    return w.VBox([pick, out])
