"""Step 4 of ValueLex: from factors to a named taxonomy (paper Sec. 3.2 step 2, Alg. 1 lines 6-8, Sec. 4.1, Fig. 2).

`build_taxonomy(factors)` runs the step: subclusters inside each factor (clusters.py), names (naming.py), a 2-D view,
and returns a `TaxonomyResult` whose `write(dir)` produces

* `taxonomy.yaml`, in the schema of params/taxonomies/*.yaml (name, title, source, dimensions -> subdimensions, each
  with name, definition and markers = its words), so `systems.load_system(<run>/taxonomy.yaml)` scores with a run's
  own value system; extra keys: `method` (how it was built), per node `words`, `naming_method`, `factor` /
  `subcluster`, and `unassigned` (words no factor took). A factor that is not split (fewer than 4 words, or k = 1) is a
  dimension without subdimensions, like MFT's foundations: its own leaf.
* `clusters.csv`: word, factor, dimension, subcluster, subdimension, silhouette, umap_x, umap_y, loading; unassigned
  words have factor -1, subcluster -1 and empty dimension/subdimension.

Notebook 04 helpers (each returns a DataFrame or a plotly figure): `taxonomy_table`, `sunburst_figure`,
`umap_figure`, `silhouette_figure`, `similarity_heatmap`, `taxonomy_stability` + `stability_summary` +
`stability_figure` (bootstrap of respondents, refit EFA + clustering, adjusted Rand index, how often K changes), and
`taxonomies_by_training` + `training_summary` + `compare_sunbursts` (paper Fig. 2 c/d: pretrained vs aligned alone).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from .clusters import Clustering, cluster_factors, project_2d
from .errors import UserError
from .naming import Naming, name_clusters

__all__ = [
    "CLUSTER_COLUMNS",
    "TaxonomyResult",
    "build_taxonomy",
    "taxonomy_dict",
    "clusters_frame",
    "write_taxonomy",
    "write_clusters",
    "load_clusters",
    "read_factor_outputs",
    "taxonomy_table",
    "sunburst_figure",
    "umap_figure",
    "silhouette_figure",
    "similarity_heatmap",
    "taxonomy_stability",
    "stability_summary",
    "stability_figure",
    "respondent_of",
    "split_by_training",
    "taxonomies_by_training",
    "training_summary",
    "compare_sunbursts",
]

CLUSTER_COLUMNS = ["word", "factor", "dimension", "subcluster", "subdimension", "silhouette", "umap_x", "umap_y",
                   "loading"]
UNASSIGNED = "(unassigned)"


def _num(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return round(x, 4) if math.isfinite(x) else None


# --------------------------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class TaxonomyResult:
    clustering: Clustering
    naming: Naming
    clusters: pd.DataFrame
    taxonomy: dict[str, Any]
    projection: str
    notes: list[str] = field(default_factory=list)

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write taxonomy.yaml and clusters.csv into `out_dir` (atomically); returns their paths."""
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise UserError(f"output path exists and is not a directory: {out}")
        out.mkdir(parents=True, exist_ok=True)
        return {"taxonomy": write_taxonomy(self.taxonomy, out / "taxonomy.yaml"),
                "clusters": write_clusters(self.clusters, out / "clusters.csv")}

    def system(self) -> Any:
        """The taxonomy as a `systems.ValueSystem` (validated as the scorer would)."""
        from .systems import parse_system

        return parse_system(self.taxonomy, path="<taxonomy>", default_name=self.taxonomy.get("name", "run"))

    def table(self) -> pd.DataFrame:
        return taxonomy_table(self.taxonomy)


def clusters_frame(clustering: Clustering, naming: Naming, coords: np.ndarray | None = None) -> pd.DataFrame:
    """The clusters.csv table (columns `CLUSTER_COLUMNS`)."""
    t = clustering.table()
    dim_name = {n.factor: n.name for n in naming.nodes if n.level == "dimension"}
    sub_name = {(n.factor, n.subcluster): n.name for n in naming.nodes if n.level == "subdimension"}
    t["dimension"] = [dim_name.get(f) if f >= 0 else None for f in t["factor"]]
    t["subdimension"] = [sub_name.get((f, s)) for f, s in zip(t["factor"], t["subcluster"])]
    if coords is None or len(coords) != len(t):
        coords = np.full((len(t), 2), np.nan)
    t["umap_x"], t["umap_y"] = coords[:, 0], coords[:, 1]
    t = t[CLUSTER_COLUMNS]
    t["dimension"] = t["dimension"].astype(object)
    t["subdimension"] = t["subdimension"].astype(object)
    return t


def taxonomy_dict(clustering: Clustering, naming: Naming, *, name: str = "run_taxonomy", title: str | None = None,
                  source: str | None = None, method: dict[str, Any] | None = None) -> dict[str, Any]:
    """taxonomy.yaml as a dict, in the schema of params/taxonomies/*.yaml (plus `words`, `naming_method`, `method`)."""
    dims = []
    for f in clustering.factors:
        d = naming.get(f)
        subs = []
        if clustering.k_by_factor[f] > 1:
            for s in range(clustering.k_by_factor[f]):
                n = naming.get(f, s)
                words = clustering.members(f, s)
                subs.append({"name": n.name, "definition": n.definition, "markers": list(words), "words": list(words),
                             "subcluster": s, "naming_method": n.method,
                             "silhouette": _num(clustering.mean_silhouette(f, s))})
        words = clustering.members(f)
        dims.append({"name": d.name, "definition": d.definition, "markers": list(words), "words": list(words),
                     "factor": int(f),
                     "naming_method": d.method, "subdimensions": subs})
    n_subs = sum(len(d["subdimensions"]) for d in dims)
    meth = {
        "clustering": {"algorithm": "kmeans inside each factor", "embeddings": _model_id(),
                       "k_selection": "mean cosine silhouette", "k_min": clustering.k_min, "k_max": clustering.k_max,
                       "seed": clustering.seed, "k_by_factor": {int(k): int(v) for k, v in clustering.k_by_factor.items()}},
        "naming": naming.method,
        "naming_model": naming.model,
        **(method or {}),
    }
    return {
        "name": name,
        "title": title or f"Value system reconstructed by ValueLex ({len(dims)} dimension(s), {n_subs} subdimension(s))",
        "source": source or ("ValueLex pipeline (Biedma et al., Sec. 3.2): exploratory factor analysis of the "
                             "respondent x word matrix, KMeans on MiniLM embeddings inside each factor, "
                             f"names by {'an LLM (' + str(naming.model) + ')' if naming.model else 'the medoid word'}"),
        "method": meth,
        "dimensions": dims,
        "unassigned": clustering.unassigned(),
    }


def _model_id() -> str:
    from .embeddings import MODEL_ID

    return MODEL_ID


def build_taxonomy(factors: Any, loadings: pd.DataFrame | None = None, *, k_min: int = 2, k_max: int = 4,
                   min_words: int = 4, seed: int = 0, call: Any = None, model: str | None = None,
                   name: str = "run_taxonomy", title: str | None = None, source: str | None = None,
                   embed_fn: Callable[[Sequence[str]], np.ndarray] | None = None, project: bool = True,
                   umap_min_points: int = 10, method: dict[str, Any] | None = None) -> TaxonomyResult:
    """Cluster, name and lay out: the whole of step 4.

    `factors`: a `FactorResult` or a mapping word -> factor (-1 unassigned) with `loadings`. `call`: the namer's LLM
    (`naming.litellm_caller(...)`, or any `call(messages) -> str`); None = medoid names. `project=False` skips the
    2-D view (umap_x/umap_y NaN). `method` adds entries to the YAML's `method` (e.g. the factor-analysis options).
    """
    clustering = cluster_factors(factors, loadings, k_min=k_min, k_max=k_max, seed=seed, min_words=min_words,
                                 embed_fn=embed_fn)
    naming = name_clusters(clustering.specs(), call, model=model)
    coords, projection = (project_2d(clustering.embeddings, seed=seed, umap_min_points=umap_min_points)
                          if project else (None, "none"))
    fa_meta = dict(method or {})
    if hasattr(factors, "n_factors") and "factors" not in fa_meta:
        fa_meta["factors"] = {"n_factors": int(factors.n_factors), "k_rule": factors.k_rule,
                              "method": factors.method, "rotation": factors.rotation, "corr": factors.corr,
                              "threshold": float(factors.threshold), "n_respondents": int(factors.n_respondents)}
    fa_meta["projection"] = projection
    tax = taxonomy_dict(clustering, naming, name=name, title=title, source=source, method=fa_meta)
    return TaxonomyResult(clustering=clustering, naming=naming, clusters=clusters_frame(clustering, naming, coords),
                          taxonomy=tax, projection=projection, notes=list(clustering.notes))


# --------------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------------
from .rundir import atomic_write_text as _atomic_write  # noqa: E402


def write_taxonomy(taxonomy: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    header = ("# ValueLex taxonomy reconstructed by a run (same schema as params/taxonomies/*.yaml; usable with\n"
              "# `valuelex score --system <this file>`). markers = the words of each (sub)dimension, most central "
              "first.\n")
    text = yaml.safe_dump(taxonomy, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    return _atomic_write(Path(path), header + text)


def write_clusters(clusters: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    missing = [c for c in CLUSTER_COLUMNS if c not in clusters.columns]
    if missing:
        raise UserError(f"clusters table lacks column(s) {', '.join(missing)}")
    return _atomic_write(Path(path), clusters[CLUSTER_COLUMNS].to_csv(index=False, float_format="%.6g",
                                                                        lineterminator="\n"))


def load_clusters(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a clusters.csv (empty dimension/subdimension -> None)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"clusters file not found: {p}")
    try:
        df = pd.read_csv(p, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - any parse problem is bad input
        raise UserError(f"{p}: not a readable CSV ({type(exc).__name__})") from None
    missing = [c for c in CLUSTER_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{p}: missing column(s) {', '.join(missing)}")
    df["word"] = df["word"].astype(str)
    for c in ("dimension", "subdimension"):
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def read_factor_outputs(factors_json: str | os.PathLike[str], loadings_csv: str | os.PathLike[str] | None = None
                        ) -> tuple[dict[str, int], pd.DataFrame | None, dict[str, Any]]:
    """(assignment, loadings, meta) from step 3's factors.json and loadings.csv; meta holds n_factors, method, ..."""
    p = Path(factors_json)
    if not p.is_file():
        raise UserError(f"{p} is missing: run step 03 first (valuelex run --steps 03)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{p}: not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("assignment"), dict):
        raise UserError(f"{p}: no 'assignment' mapping")
    assignment = {str(w): int(a) for w, a in data["assignment"].items()}
    loadings = None
    if loadings_csv is not None and Path(loadings_csv).is_file():
        loadings = pd.read_csv(loadings_csv, index_col=0)
        loadings.index = loadings.index.astype(str)
    meta = {k: data[k] for k in ("n_factors", "method", "k_rule", "rotation", "corr", "threshold") if k in data}
    return assignment, loadings, meta


# --------------------------------------------------------------------------------------------------------------------
# Tables and figures
# --------------------------------------------------------------------------------------------------------------------
def taxonomy_table(taxonomy: dict[str, Any] | TaxonomyResult, max_words: int = 12) -> pd.DataFrame:
    """One row per leaf: dimension, subdimension (None for an unsplit dimension), definition, naming_method,
    n_words, words (most central first)."""
    tax = taxonomy.taxonomy if isinstance(taxonomy, TaxonomyResult) else taxonomy
    rows = []
    for d in tax.get("dimensions", []):
        nodes = d.get("subdimensions") or [None]
        for s in nodes:
            node = s or d
            words = node.get("words") or node.get("markers") or []
            rows.append({"dimension": d["name"], "subdimension": s["name"] if s else None,
                         "definition": node.get("definition", ""), "naming_method": node.get("naming_method"),
                         "n_words": len(words),
                         "words": ", ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")})
    return pd.DataFrame(rows, columns=["dimension", "subdimension", "definition", "naming_method", "n_words", "words"])


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


# --------------------------------------------------------------------------------------------------------------------
# Stability: bootstrap of respondents
# --------------------------------------------------------------------------------------------------------------------
def respondent_of(index: Sequence[Any]) -> pd.Index:
    """The respondent of each matrix row: the row id itself, or its part before '|' for answer-level rows
    (`respondent|p<prompt>|s<sample>`, lexicon.unit = answer)."""
    return pd.Index([str(i).split("|", 1)[0] for i in index])


def _leaf_assignment(cl: Clustering) -> dict[str, str]:
    return {w: f"{f}.{s}" for w, f, s in zip(cl.words, cl.factor, cl.subcluster) if f >= 0}


def taxonomy_stability(matrix: pd.DataFrame, *, n_boot: int = 20, seed: int = 0, fit_opts: dict[str, Any] | None = None,
                       k_min: int = 2, k_max: int = 4, min_words: int = 4, scheme: str = "subsample",
                       fraction: float = 0.8, by_respondent: bool = True,
                       embed_fn: Callable[[Sequence[str]], np.ndarray] | None = None,
                       progress: bool = False) -> pd.DataFrame:
    """Refit factors and subclusters on `n_boot` resamples of the respondents and compare with the full fit.

    Per resample: K and whether it differs from the full fit's K (`k_changed`), the words assigned in both fits
    (`n_common`), and the adjusted Rand index over those words of the factor assignment (`ari_factor`) and of the leaf
    assignment, factor x subcluster (`ari_subdimension`). A resample that cannot be fitted has status "failed: ...".
    `df.attrs` holds k_full, the full fit's leaf count and the scheme.

    `scheme="subsample"` (default) draws `fraction` of the respondents without replacement; `scheme="bootstrap"` draws
    all n with replacement. Why subsampling by default: a bootstrap sample repeats about a third of its rows, and
    Horn's parallel analysis (which permutes columns, destroying the repeats) then takes the repeats' shared noise for
    structure and over-extracts: on a planted 3-factor matrix (200 respondents, 24 signal + 8 noise words) bootstrap
    refits gave K = 4-8 (K changed in 24 of 24 resamples) while 80% subsamples gave K = 3 in 20 of 24. With a fixed
    `n_factors` in `fit_opts` both schemes are fine. Rows are drawn per respondent (all answer-level rows of a
    respondent together) unless `by_respondent=False`.
    """
    from sklearn.metrics import adjusted_rand_score

    from .factors import fit_factors

    if n_boot < 1:
        raise UserError("taxonomy_stability: n_boot must be >= 1")
    if scheme not in ("subsample", "bootstrap"):
        raise UserError(f"taxonomy_stability: scheme must be 'subsample' or 'bootstrap', not {scheme!r}")
    if scheme == "subsample" and not 0 < fraction < 1:
        raise UserError("taxonomy_stability: fraction must lie in (0, 1)")
    # only K and the assignment are compared across resamples: skip the table of K candidates and loading intervals
    opts = {**dict(fit_opts or {}), "max_k": 0, "n_boot": 0}
    fit_seed = opts.pop("seed", seed)
    data = matrix.reset_index(drop=True)
    full = fit_factors(data, seed=fit_seed, **opts)
    full_cl = cluster_factors(full, k_min=k_min, k_max=k_max, seed=seed, min_words=min_words, embed_fn=embed_fn)
    full_f = {w: a for w, a in full.assignment.items() if a >= 0}
    full_leaf = _leaf_assignment(full_cl)
    groups = respondent_of(matrix.index) if by_respondent else pd.Index([str(i) for i in range(len(matrix))])
    uniq = pd.unique(groups)
    rows_of = {g: np.flatnonzero(groups == g) for g in uniq}
    rng_root = np.random.SeedSequence(seed)
    rows = []
    from tqdm.auto import tqdm

    for b, child in enumerate(tqdm(rng_root.spawn(n_boot), disable=not progress, desc=scheme)):
        rng = np.random.default_rng(child)
        if scheme == "bootstrap":
            pick = rng.choice(len(uniq), size=len(uniq), replace=True)
        else:
            pick = rng.choice(len(uniq), size=max(3, int(round(fraction * len(uniq)))), replace=False)
        idx = np.concatenate([rows_of[uniq[i]] for i in pick])
        sample = data.iloc[idx].reset_index(drop=True)
        sample = sample.loc[:, sample.std(axis=0, ddof=0) > 0]
        row: dict[str, Any] = {"boot": b, "n_rows": len(sample), "n_words": sample.shape[1], "k": np.nan,
                               "k_full": full.n_factors, "k_changed": np.nan, "n_common": 0,
                               "ari_factor": np.nan, "ari_subdimension": np.nan, "n_leaves": np.nan, "status": "ok"}
        try:
            res = fit_factors(sample, seed=fit_seed, **opts)
            row["k"] = res.n_factors
            row["k_changed"] = bool(res.n_factors != full.n_factors)
            cl = cluster_factors(res, k_min=k_min, k_max=k_max, seed=seed, min_words=min_words, embed_fn=embed_fn)
            leaf = _leaf_assignment(cl)
            row["n_leaves"] = len(set(leaf.values()))
        except UserError as err:
            row["status"] = f"failed: {err}"[:200]
            rows.append(row)
            continue
        common = [w for w in full_f if res.assignment.get(w, -1) >= 0]
        row["n_common"] = len(common)
        if len(common) >= 2:
            row["ari_factor"] = float(adjusted_rand_score([full_f[w] for w in common],
                                                          [res.assignment[w] for w in common]))
            row["ari_subdimension"] = float(adjusted_rand_score([full_leaf[w] for w in common],
                                                                [leaf[w] for w in common]))
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update({"k_full": int(full.n_factors), "n_leaves_full": len(set(full_leaf.values())),
                      "n_assigned_full": len(full_f),
                      "scheme": scheme, "fraction": fraction if scheme == "subsample" else 1.0})
    return out


def stability_summary(per_boot: pd.DataFrame) -> pd.DataFrame:
    """metric / value: scheme, resamples, failures, K of the full fit, share of resamples where K changed, K counts, and
    mean / median / 5-95% of both adjusted Rand indexes."""
    ok = per_boot[per_boot["status"] == "ok"]
    scheme = per_boot.attrs.get("scheme", "?")
    if scheme == "subsample":
        scheme = f"subsample {per_boot.attrs.get('fraction', 0.8):.0%} of respondents"
    rows = [("scheme", scheme), ("resamples", len(per_boot)), ("failed", int((per_boot["status"] != "ok").sum())),
            ("K (full data)", per_boot.attrs.get("k_full", per_boot["k_full"].iloc[0] if len(per_boot) else None)),
            ("share of resamples with a different K", float(ok["k_changed"].astype(float).mean()) if len(ok) else np.nan),
            ("K counts", json.dumps({int(k): int(v) for k, v in ok["k"].value_counts().sort_index().items()}))]
    for col in ("ari_factor", "ari_subdimension"):
        v = ok[col].dropna().to_numpy(float)
        label = "ARI factor assignment" if col == "ari_factor" else "ARI subdimension assignment"
        rows += [(f"{label}: mean", float(v.mean()) if v.size else np.nan),
                 (f"{label}: median", float(np.median(v)) if v.size else np.nan),
                 (f"{label}: 5%", float(np.percentile(v, 5)) if v.size else np.nan),
                 (f"{label}: 95%", float(np.percentile(v, 95)) if v.size else np.nan)]
    return pd.DataFrame(rows, columns=["metric", "value"])


def stability_figure(per_boot: pd.DataFrame):
    """Left: distribution of the two adjusted Rand indexes; right: K over resamples (full-data K marked)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ok = per_boot[per_boot["status"] == "ok"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Adjusted Rand index vs the full fit", "K over resamples"))
    for col, name in (("ari_factor", "factor"), ("ari_subdimension", "subdimension")):
        fig.add_trace(go.Box(y=ok[col], name=name, boxpoints="all", jitter=0.4), row=1, col=1)
    counts = ok["k"].value_counts().sort_index()
    fig.add_trace(go.Bar(x=counts.index.astype(int), y=counts.values, name="K", showlegend=False), row=1, col=2)
    k_full = per_boot.attrs.get("k_full")
    if k_full is not None:
        fig.add_vline(x=k_full, line={"color": "firebrick", "dash": "dash"}, row=1, col=2,
                      annotation_text=f"full data: K = {k_full}")
    fig.update_yaxes(range=[-0.2, 1.05], row=1, col=1)
    fig.update_xaxes(dtick=1, title_text="K", row=1, col=2)
    what = "bootstrap resamples" if per_boot.attrs.get("scheme") == "bootstrap" else "subsamples"
    return fig.update_layout(title=f"Stability over {len(per_boot)} {what} of respondents", showlegend=False)


# --------------------------------------------------------------------------------------------------------------------
# Pretrained vs aligned (paper Fig. 2 c/d)
# --------------------------------------------------------------------------------------------------------------------
def _training_map(training: Any) -> dict[str, str]:
    if isinstance(training, pd.DataFrame):
        if not {"respondent", "training"} <= set(training.columns):
            raise UserError("training table needs columns 'respondent' and 'training'")
        return {str(r): str(t) for r, t in zip(training["respondent"], training["training"])}
    if isinstance(training, pd.Series):
        return {str(r): str(t) for r, t in training.items()}
    if isinstance(training, Mapping):
        return {str(r): str(t) for r, t in training.items()}
    raise UserError("training must be a mapping respondent -> training, a Series, or a table with respondent, training")


def split_by_training(matrix: pd.DataFrame, training: Any, groups: Sequence[str] = ("pretrained", "aligned")
                      ) -> dict[str, pd.DataFrame]:
    """Rows of the matrix per training type (rows whose respondent has no known training are left out); word
    columns nobody in a group used are dropped from that group."""
    tmap = _training_map(training)
    resp = respondent_of(matrix.index)
    kinds = np.array([tmap.get(r) for r in resp], dtype=object)
    out = {}
    for g in groups:
        sub = matrix[kinds == g]
        out[g] = sub.loc[:, (sub != 0).any(axis=0)] if len(sub) else sub
    return out


def taxonomies_by_training(matrix: pd.DataFrame, training: Any, groups: Sequence[str] = ("pretrained", "aligned"),
                           *, fit_opts: dict[str, Any] | None = None, k_min: int = 2, k_max: int = 4,
                           min_words: int = 4, seed: int = 0, call: Any = None, model: str | None = None,
                           embed_fn: Callable[[Sequence[str]], np.ndarray] | None = None,
                           project: bool = True) -> dict[str, TaxonomyResult | str]:
    """The same pipeline (EFA with `fit_opts`, clustering, naming) on each training type's respondents alone.

    Returns group -> `TaxonomyResult`, or group -> a one-line reason when that group cannot be fitted (too few
    respondents or words, no factor), so a notebook on a tiny run still runs and says why.
    """
    from .factors import fit_factors

    opts = dict(fit_opts or {})
    fit_seed = opts.pop("seed", seed)
    out: dict[str, TaxonomyResult | str] = {}
    for g, sub in split_by_training(matrix, training, groups).items():
        if sub.empty:
            out[g] = f"no {g} respondents in the matrix"
            continue
        try:
            res = fit_factors(sub, seed=fit_seed, **opts)
            out[g] = build_taxonomy(res, k_min=k_min, k_max=k_max, min_words=min_words, seed=seed, call=call,
                                    model=model, name=f"{g}_taxonomy", embed_fn=embed_fn, project=project,
                                    title=f"Value system of {g} respondents alone")
            out[g].taxonomy["method"]["respondents"] = {"training": g, "n_rows": int(len(sub)),
                                                        "n_respondents": int(respondent_of(sub.index).nunique())}
        except UserError as err:
            out[g] = f"{g}: {err}"
    return out


def training_summary(results: Mapping[str, TaxonomyResult | str]) -> pd.DataFrame:
    """One row per group: respondents, words, K, assigned words, subdimensions, the dimensions with their
    subdimensions, and a note (the reason when the group could not be fitted)."""
    rows = []
    for g, r in results.items():
        if isinstance(r, str):
            rows.append({"group": g, "n_respondents": None, "n_words": None, "K": None, "n_assigned": None,
                         "n_subdimensions": None, "dimensions": None, "note": r})
            continue
        tax = r.taxonomy
        dims = "; ".join(f"{d['name']} ({', '.join(s['name'] for s in d['subdimensions'])})" if d["subdimensions"]
                         else d["name"] for d in tax["dimensions"])
        resp = tax["method"].get("respondents", {})
        fa = tax["method"].get("factors", {})
        rows.append({"group": g, "n_respondents": resp.get("n_respondents"), "n_words": len(r.clusters),
                     "K": fa.get("n_factors", len(tax["dimensions"])),
                     "n_assigned": int((r.clusters["factor"] >= 0).sum()),
                     "n_subdimensions": sum(len(d["subdimensions"]) for d in tax["dimensions"]),
                     "dimensions": dims, "note": "; ".join(r.notes) or None})
    return pd.DataFrame(rows, columns=["group", "n_respondents", "n_words", "K", "n_assigned", "n_subdimensions",
                                       "dimensions", "note"])


def compare_sunbursts(results: Mapping[str, TaxonomyResult | str], height: int = 600):
    """Side-by-side sunbursts of several taxonomies (e.g. pretrained vs aligned, paper Fig. 2 b/d); a group that
    could not be fitted shows its reason instead."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(results)
    if not names:
        raise UserError("nothing to compare")
    fig = make_subplots(rows=1, cols=len(names), specs=[[{"type": "domain"}] * len(names)], subplot_titles=names)
    for i, g in enumerate(names, start=1):
        r = results[g]
        if isinstance(r, str):
            fig.add_annotation(text=r[:120], showarrow=False, x=(i - 0.5) / len(names), y=0.5, xref="paper",
                               yref="paper", font={"size": 11})
            continue
        tr = sunburst_figure(r.clusters, r.taxonomy).data[0]
        fig.add_trace(tr, row=1, col=i)
    return fig.update_layout(title="Value systems by training type", height=height,
                             margin={"t": 80, "l": 10, "r": 10, "b": 10})
