"""Notebook 04's figures: sunburst, UMAP view, silhouette per k, similarity heatmap.

plotly is imported inside each function on purpose (heavy; a build or a stability loop never draws).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from valuelex_utils.errors import UserError

from .build import TaxonomyResult
from .clusters import Clustering

UNASSIGNED = "(unassigned)"


def _definitions(taxonomy: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in (taxonomy or {}).get("dimensions", []):
        out[d["name"]] = d.get("definition", "")
        for s in d.get("subdimensions") or []:
            out[s["name"]] = s.get("definition", "")
    return out


def sunburst_figure(clusters: pd.DataFrame, taxonomy: dict[str, Any] | None = None, kind: str = "sunburst",
                    include_unassigned: bool = False, title: str | None = None, height: int = 650):
    """The taxonomy as a sunburst (or `kind="treemap"`): dimension -> subdimension -> word, three rings (an unsplit
    dimension has one "(not split)" subdimension). Hover shows the definition when `taxonomy` is given."""
    import plotly.graph_objects as go

    if kind not in ("sunburst", "treemap"):
        raise UserError("kind must be 'sunburst' or 'treemap'")
    defs = _definitions(taxonomy)
    df = clusters.copy()
    assigned = df["dimension"].notna() & (df["dimension"].astype(str) != "")
    if include_unassigned:
        df.loc[~assigned, "dimension"] = UNASSIGNED
        df.loc[~assigned, "subdimension"] = None
    else:
        df = df[assigned]
    ids, labels, parents, values, hover = [], [], [], [], []

    def add(i: str, label: str, parent: str, value: int, text: str) -> None:
        ids.append(i), labels.append(label), parents.append(parent), values.append(value), hover.append(text)

    for dim, g in df.groupby("dimension", sort=False):
        add(f"d:{dim}", str(dim), "", len(g), defs.get(dim, "words no factor took" if dim == UNASSIGNED else ""))
        subs = g["subdimension"].where(g["subdimension"].notna() & (g["subdimension"].astype(str) != ""))
        if subs.notna().any():
            for sub, gs in g.assign(_s=subs).dropna(subset=["_s"]).groupby("_s", sort=False):
                add(f"s:{dim}/{sub}", str(sub), f"d:{dim}", len(gs), defs.get(sub, ""))
                for w in gs["word"]:
                    add(f"w:{dim}/{sub}/{w}", str(w), f"s:{dim}/{sub}", 1, "")
        else:  # an unsplit dimension keeps all three rings (no hole): one subdimension segment, said so
            add(f"s:{dim}/", "(not split)", f"d:{dim}", len(g), "this dimension is not split into subdimensions")
            for w in g["word"]:
                add(f"w:{dim}//{w}", str(w), f"s:{dim}/", 1, "")
    kw: dict[str, Any] = dict(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                              customdata=hover,
                              hovertemplate="<b>%{label}</b><br>%{value} word(s)<br>%{customdata}<extra></extra>")
    fig = go.Figure(go.Sunburst(**kw, insidetextorientation="radial") if kind == "sunburst" else go.Treemap(**kw))
    return fig.update_layout(title=title or "Value taxonomy: dimension > subdimension > word", height=height,
                             margin={"t": 60, "l": 10, "r": 10, "b": 10})


def umap_figure(clusters: pd.DataFrame, title: str | None = None, show_labels: bool | None = None, height: int = 600):
    """UMAP 2-D scatter of the words (paper Fig. 2 a/c): colour = dimension (factor), symbol = subcluster, hover =
    the word with its subdimension, loading and silhouette. Unassigned words are grey."""
    import plotly.express as px

    df = clusters.copy()
    if df[["umap_x", "umap_y"]].isna().all().all():
        raise UserError("the clusters table has no 2-D coordinates (built with project=False)")
    assigned = df["dimension"].notna() & (df["dimension"].astype(str) != "")
    df["dimension"] = df["dimension"].where(assigned, UNASSIGNED).astype(str)
    df["subdimension"] = df["subdimension"].where(df["subdimension"].notna(), "").astype(str)
    df["subcluster"] = df["subcluster"].astype(int).astype(str).replace({"-1": "none"})
    order = list(dict.fromkeys(df.loc[assigned, "dimension"])) + ([UNASSIGNED] if (~assigned).any() else [])
    colors = px.colors.qualitative.Plotly
    cmap = {d: colors[i % len(colors)] for i, d in enumerate(order) if d != UNASSIGNED}
    cmap[UNASSIGNED] = "#bbbbbb"
    labels = len(df) <= 80 if show_labels is None else show_labels
    fig = px.scatter(df, x="umap_x", y="umap_y", color="dimension", symbol="subcluster", hover_name="word",
                     hover_data={"subdimension": True, "loading": ":.2f", "silhouette": ":.2f", "umap_x": False,
                                 "umap_y": False, "dimension": True, "subcluster": True},
                     text="word" if labels else None, color_discrete_map=cmap,
                     category_orders={"dimension": order}, title=title or "Value words in 2-D (UMAP of MiniLM embeddings)")
    if labels:
        fig.update_traces(textposition="top center", textfont_size=9)
    fig.update_traces(marker={"size": 9})
    return fig.update_layout(height=height, xaxis_title="UMAP 1", yaxis_title="UMAP 2", legend_title="dimension, subcluster")


def silhouette_figure(silhouette_by_k: pd.DataFrame | Clustering | TaxonomyResult):
    """Mean cosine silhouette per k and factor; the chosen k marked."""
    import plotly.graph_objects as go

    if isinstance(silhouette_by_k, TaxonomyResult):
        silhouette_by_k = silhouette_by_k.clustering
    if isinstance(silhouette_by_k, Clustering):
        silhouette_by_k = silhouette_by_k.silhouette_by_k
    df = silhouette_by_k[silhouette_by_k["k"] > 1]
    fig = go.Figure()
    for f, g in df.groupby("factor"):
        fig.add_trace(go.Scatter(x=g["k"], y=g["silhouette"], mode="lines+markers", name=f"factor {f}"))
        ch = g[g["chosen"]]
        fig.add_trace(go.Scatter(x=ch["k"], y=ch["silhouette"], mode="markers", showlegend=False,
                                 marker={"size": 14, "symbol": "circle-open", "color": "black"}, hoverinfo="skip"))
    return fig.update_layout(title="k inside each factor: mean cosine silhouette (circled: chosen)", xaxis_title="k",
                             yaxis_title="silhouette", xaxis={"dtick": 1})


def similarity_heatmap(similarity: pd.DataFrame, title: str | None = None):
    """Heatmap of `clusters.paper_similarity(...)`: our clusters (rows) vs the value system's columns."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=similarity.to_numpy(), x=list(map(str, similarity.columns)),
                               y=list(map(str, similarity.index)), colorscale="Viridis",
                               text=np.round(similarity.to_numpy(), 2), texttemplate="%{text}",
                               colorbar={"title": "cosine"}))
    return fig.update_layout(title=title or "Our clusters vs the paper's subdimensions (cosine of embedding centroids)",
                             yaxis={"autorange": "reversed"}, height=max(350, 40 * len(similarity) + 150))
