"""Building step 4: subclusters, names and a 2-D view into a `TaxonomyResult` (`build_taxonomy`)."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valuelex_utils.embeddings import MODEL_ID
from valuelex_utils.errors import UserError

from .clusters import Clustering, cluster_factors, project_2d
from .files import CLUSTER_COLUMNS, write_clusters, write_taxonomy
from .naming import Naming, name_clusters


def _num(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return round(x, 4) if math.isfinite(x) else None


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
        from valuelex_utils.systems import parse_system

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
        "clustering": {"algorithm": "kmeans inside each factor", "embeddings": MODEL_ID,
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
