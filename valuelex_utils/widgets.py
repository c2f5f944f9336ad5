"""ipywidgets explorers for the notebooks. Cells that call them are tagged `widget` and left out of the HTML report
(a static page cannot run them)."""
from __future__ import annotations

import html

import pandas as pd


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
                + f"<td style='text-align:left'>{html.escape(str(r[text_col]))}</td></tr>"
                for _, r in sel.head(limit).iterrows())
            head = "".join(f"<th>{c}</th>" for c in [*filters, *extra, text_col])
            display(HTML(f"<p>{len(sel)} rows</p><table><tr>{head}</tr>{rows}</table>"))

    for d in drops.values():
        d.observe(render, names="value")
    render()
    return w.VBox([w.HBox(list(drops.values())), out])
