"""Figures of step 3: the scree plot and the loadings heatmap.

plotly and `valuelex_utils.figures` are imported inside the functions on purpose: plotly is heavy and a fit (or a
bootstrap loop) never draws.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .result import FactorResult


def _rows_said(n_rows: int, rows: Sequence[str] | None) -> str:
    """"360 answers of 12 respondents" when the rows are answers (ids "respondent|prompt|sample"), else
    "12 respondents"; "360 rows" when the ids are not known."""
    if rows is None:
        return f"{n_rows} rows"
    ids = [str(r) for r in rows]
    people = {r.split("|", 1)[0] for r in ids}
    if len(people) < len(ids):
        return f"{len(ids)} answers of {len(people)} respondents"
    return f"{len(ids)} respondents"


def scree_figure(result: FactorResult, max_points: int = 40, rows: Sequence[str] | None = None):
    """Scree plot: observed eigenvalues, the parallel-analysis curve and Kaiser's line at 1, K marked.

    Only the first `max_points` ranks are drawn: beyond that everything is noise and flattens the interesting part.
    `rows`: the matrix's row ids, so the title can say whether its rows are answers or respondents.
    """
    import plotly.graph_objects as go

    from valuelex_utils.figures import captioned

    m = min(len(result.eigenvalues), max_points)
    x = list(range(1, m + 1))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=result.eigenvalues[:m].tolist(), mode="lines+markers", name="observed"))
    if result.pa_threshold is not None:
        fig.add_trace(go.Scatter(x=x, y=result.pa_threshold[:m].tolist(), mode="lines",
                                 line={"dash": "dash"},
                                 name=f"parallel analysis ({result.pa_percentile:g}th pct, {result.pa_iter} perms)"))
    fig.add_hline(y=1.0, line={"dash": "dot", "color": "grey"}, annotation_text="Kaiser: eigenvalue 1",
                  annotation_position="top right")
    if result.n_factors > 0:
        fig.add_vline(x=result.n_factors, line={"color": "firebrick", "width": 1},
                      annotation_text=f"K = {result.n_factors} ({result.k_rule})", annotation_position="top right")
    what = "Pearson correlations of log(1 + count)" if result.transform == "log1p" else f"{result.corr} correlations"
    said = _rows_said(result.n_respondents, rows)
    fig.update_layout(title=f"Scree plot ({what}; {len(result.words)} words, {said})",
                      xaxis_title="factor (rank)", yaxis_title="eigenvalue", template="plotly_white")
    return captioned(fig, f"Eigenvalues of the word x word correlation matrix by rank (first {m} of "
                          f"{len(result.eigenvalues)}); dashed: the same from permuted data (parallel analysis), a "
                          f"factor is kept while the observed line is above it; n = {said}.")


def loadings_heatmap(result: FactorResult, max_words: int = 200):
    """Heatmap of pattern loadings, words grouped by assigned factor (strongest first), unassigned words last; every
    word labelled (18 px a row)."""
    import plotly.graph_objects as go

    from valuelex_utils.figures import captioned

    order: list[str] = []
    for k, ws in result.groups().items():
        if k >= 0:
            order += ws
    order += result.groups().get(-1, [])
    shown = order[:max_words]
    L = result.loadings.loc[shown] if result.n_factors else pd.DataFrame(index=shown)
    fig = go.Figure(go.Heatmap(z=L.to_numpy(), x=list(L.columns), y=shown, colorscale="RdBu", zmid=0, zmin=-1,
                               zmax=1, colorbar={"title": "loading"}))
    fig.update_layout(title=f"Loadings ({result.method}, {result.rotation}); assigned if |loading| >= "
                            f"{result.threshold:g}", template="plotly_white",
                      yaxis={"autorange": "reversed", "tickmode": "array", "tickvals": shown, "ticktext": shown,
                             "tickfont": {"size": 11}},
                      height=max(400, 18 * len(shown) + 200))
    more = f" (the first {len(shown)} of {len(order)} shown)" if len(order) > len(shown) else ""
    return captioned(fig, f"Cell: pattern loading of a word (row) on a factor (column), -1 to 1; words grouped by "
                          f"the factor they load on most, unassigned words last; n = {len(order)} words{more}.")
