"""Semantic clustering inside each factor (paper Sec. 3.2 step 2, Eq. 3, Alg. 1 line 7).

Factor analysis groups words that co-occur in respondents' answers; within each factor, KMeans on the words' sentence
embeddings splits the group by meaning into subdimensions (the paper finds two per dimension). Here:

* embeddings are all-MiniLM-L6-v2 vectors, L2-normalised, so Euclidean KMeans on them is spherical (cosine) KMeans up
  to the centroid norm;
* k, the number of subclusters inside one factor (`choose_subcluster_k`; not the number of factors, which step 3
  chooses in `factors.retention`), is chosen per factor by the mean cosine silhouette over k = k_min..k_max (2..4),
  capped at n_words - 1; ties go to the smaller k; a partition that leaves a subcluster with fewer than `min_size`
  (2) words is not a candidate (a one-word subdimension is not a cluster); a factor with fewer than `min_words` (4)
  words, or with no candidate k, is not split (one subcluster, silhouette NaN);
* every word gets its silhouette within its factor's partition (sklearn's `silhouette_samples`, cosine);
* subclusters are numbered 0.. by size (largest first), ties by their medoid word, so labels are stable across runs;
* words the factor analysis left unassigned (-1) are kept (factor -1, subcluster -1) so the 2-D view shows them;
* the 2-D view is UMAP (cosine, seeded); with fewer than `umap_min_points` words, UMAP's neighbour graph means little
  and PCA is used instead (the method is recorded).

`paper_similarity` / `closest_paper_subdimension` compare our clusters with a value system (the paper's by default)
by the cosine similarity of each cluster's centroid to each system leaf's prototype (its marker words and definition).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..embeddings import DIM, unit
from ..errors import UserError

__all__ = [
    "Clustering",
    "choose_subcluster_k",
    "centrality_order",
    "cluster_factors",
    "project_2d",
    "warm_word_map",
    "leaf_labels",
    "system_prototypes",
    "paper_similarity",
    "closest_paper_subdimension",
]

EmbedFn = Callable[[Sequence[str]], np.ndarray]


def _embed_fn(embed_fn: EmbedFn | None) -> EmbedFn:
    if embed_fn is not None:
        return embed_fn
    from ..embeddings import embed

    return embed


# --------------------------------------------------------------------------------------------------------------------
# k subclusters inside one factor, by silhouette
# --------------------------------------------------------------------------------------------------------------------
def choose_subcluster_k(X: np.ndarray, k_min: int = 2, k_max: int = 4, seed: int = 0, min_words: int = 4,
                        min_size: int = 2, n_init: int = 10) -> tuple[int, np.ndarray, dict[int, float], set[int]]:
    """The number of subclusters k inside ONE factor (X: its words' embeddings), not the number of factors.

    KMeans for k = k_min..min(k_max, n - 1); the eligible k with the highest mean cosine silhouette wins (ties:
    smaller k).

    Returns (k, labels, {k: silhouette}, eligible ks). Fewer than `min_words` points, or points that are all the same, give k = 1
    (labels all 0, no scores). A partition with a cluster of fewer than `min_size` words (a one-word "subdimension":
    sklearn scores a singleton's silhouette 0, which can still win) or with fewer distinct clusters than k (duplicate
    vectors) is not a candidate; its silhouette is still reported.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if k_min < 2 or k_max < k_min:
        raise UserError(f"subclusters: need 2 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
    ones = np.zeros(n, dtype=int)
    if n < max(min_words, 3) or np.allclose(X, X[0]):
        return 1, ones, {}, set()
    scores: dict[int, float] = {}
    eligible: set[int] = set()
    best: tuple[int, np.ndarray] | None = None
    best_score = -np.inf
    for k in range(k_min, min(k_max, n - 1) + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on duplicate points
            labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(X)
        sizes = np.bincount(labels, minlength=k)
        if (sizes == 0).any():
            continue
        s = float(silhouette_score(X, labels, metric="cosine"))
        scores[k] = s
        if sizes.min() < min_size:
            continue
        eligible.add(k)
        if s > best_score + 1e-12:
            best_score, best = s, (k, labels)
    if best is None:
        return 1, ones, scores, eligible
    return best[0], best[1], scores, eligible


def centrality_order(X: np.ndarray, words: Sequence[str], tiebreak: Sequence[float] | None = None) -> list[int]:
    """Indices of `words` from most to least central: mean cosine similarity to the other members (the first is the
    cosine medoid). Ties: larger |tiebreak| (e.g. the factor loading), then alphabetical."""
    n = len(words)
    if n == 0:
        return []
    U = unit(X, np.float64)
    sims = U @ U.T
    mean_sim = (sims.sum(axis=1) - np.diag(sims)) / max(n - 1, 1)
    tb = np.zeros(n) if tiebreak is None else np.nan_to_num(np.abs(np.asarray(tiebreak, float)))
    return sorted(range(n), key=lambda i: (-round(float(mean_sim[i]), 9), -float(tb[i]), words[i]))


# --------------------------------------------------------------------------------------------------------------------
# Clustering inside factors
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class Clustering:
    """Subclusters of every factor. Row i of every array is `words[i]`; assigned words come first (by factor, then
    subcluster, then centrality), unassigned words (factor -1) last."""

    words: list[str]
    factor: np.ndarray
    subcluster: np.ndarray
    silhouette: np.ndarray
    loading: np.ndarray
    embeddings: np.ndarray
    k_by_factor: dict[int, int]
    silhouette_by_k: pd.DataFrame
    k_min: int
    k_max: int
    seed: int
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """word, factor, subcluster, silhouette, loading (one row per word)."""
        return pd.DataFrame({"word": self.words, "factor": self.factor.astype(int),
                             "subcluster": self.subcluster.astype(int), "silhouette": self.silhouette,
                             "loading": self.loading})

    @property
    def factors(self) -> list[int]:
        return sorted(k for k in self.k_by_factor)

    def _idx(self, factor: int, sub: int | None = None) -> np.ndarray:
        mask = self.factor == factor
        if sub is not None:
            mask &= self.subcluster == sub
        return np.flatnonzero(mask)

    def members(self, factor: int, sub: int | None = None) -> list[str]:
        """Words of a factor (or one of its subclusters), most central first (the first is the cosine medoid)."""
        idx = self._idx(factor, sub)
        words = [self.words[i] for i in idx]
        order = centrality_order(self.embeddings[idx], words, self.loading[idx])
        return [words[i] for i in order]

    def medoid(self, factor: int, sub: int | None = None) -> str:
        m = self.members(factor, sub)
        if not m:
            raise UserError(f"factor {factor} subcluster {sub} has no words")
        return m[0]

    def mean_silhouette(self, factor: int, sub: int | None = None) -> float:
        s = self.silhouette[self._idx(factor, sub)]
        return float(np.nanmean(s)) if np.isfinite(s).any() else float("nan")

    def unassigned(self) -> list[str]:
        return [w for w, f in zip(self.words, self.factor) if f < 0]

    def specs(self) -> list[Any]:
        """What the namer needs: per factor its ranked words and its subclusters' ranked words."""
        from .naming import ClusterSpec

        out = []
        for f in self.factors:
            k = self.k_by_factor[f]
            subs = [self.members(f, s) for s in range(k)] if k > 1 else []
            out.append(ClusterSpec(factor=f, words=self.members(f), subclusters=subs))
        return out


def _loading_of(word: str, factor: int, loadings: pd.DataFrame | None) -> float:
    """The word's pattern loading on its factor; for an unassigned word, its loading of largest magnitude."""
    if loadings is None or word not in loadings.index or loadings.shape[1] == 0:
        return float("nan")
    row = loadings.loc[word]
    if factor >= 0:
        col = f"factor_{factor}"
        if col in row.index:
            return float(row[col])
        if factor < len(row):
            return float(row.iloc[factor])
        return float("nan")
    vals = row.to_numpy(float)
    return float(vals[np.nanargmax(np.abs(vals))]) if np.isfinite(vals).any() else float("nan")


def cluster_factors(factors: Any, loadings: pd.DataFrame | None = None, *, k_min: int = 2, k_max: int = 4,
                    seed: int = 0, min_words: int = 4, min_size: int = 2, embed_fn: EmbedFn | None = None,
                    include_unassigned: bool = True) -> Clustering:
    """KMeans inside each factor, k by cosine silhouette (paper Eq. 3).

    `factors` is a `factors.FactorResult` (its `.assignment` and `.loadings` are used) or a mapping word -> factor
    index (-1 = unassigned), with `loadings` (words x factor_k) optional. Raises `UserError` when there are no words,
    or when no word is assigned to any factor (nothing to build a taxonomy from).
    """
    if hasattr(factors, "assignment"):
        assignment: Mapping[str, int] = factors.assignment
        if loadings is None:
            loadings = getattr(factors, "loadings", None)
    elif isinstance(factors, Mapping):
        assignment = factors
    else:
        raise UserError("cluster_factors: expected a FactorResult or a mapping word -> factor index")
    assignment = {str(w): int(a) for w, a in assignment.items()}
    if not assignment:
        raise UserError("no words to cluster: the lexicon/matrix is empty (run steps 02-03 with more answers, or "
                        "lower lexicon.min_frequency / min_respondents)")
    by_factor: dict[int, list[str]] = {}
    for w, a in assignment.items():
        by_factor.setdefault(a if a >= 0 else -1, []).append(w)
    assigned = sorted(f for f in by_factor if f >= 0)
    if not assigned:
        raise UserError(f"factor analysis assigned none of the {len(assignment)} words to a factor (K = 0 or every "
                        "loading under the threshold): nothing to build a taxonomy from; lower factors.threshold, "
                        "fix factors.n_factors, or collect more answers")
    embed = _embed_fn(embed_fn)
    notes: list[str] = []
    rows_words: list[str] = []
    rows_factor: list[int] = []
    rows_sub: list[int] = []
    rows_sil: list[float] = []
    vecs: list[np.ndarray] = []
    k_by_factor: dict[int, int] = {}
    sil_rows: list[dict[str, Any]] = []
    from sklearn.metrics import silhouette_samples

    for f in assigned:
        words = sorted(by_factor[f])
        X = np.asarray(embed(words), dtype=np.float64)
        load = np.array([_loading_of(w, f, loadings) for w in words])
        k, labels, scores, eligible = choose_subcluster_k(X, k_min=k_min, k_max=k_max, seed=seed,
                                                          min_words=min_words, min_size=min_size)
        for kk in range(k_min, k_max + 1):
            if kk in scores:
                sil_rows.append({"factor": f, "n_words": len(words), "k": kk, "silhouette": scores[kk],
                                 "eligible": kk in eligible, "chosen": kk == k})
        if k == 1 and scores:
            notes.append(f"factor {f}: every k in {k_min}..{k_max} left a subcluster under {min_size} words: not split")
        if k == 1:
            sil_rows.append({"factor": f, "n_words": len(words), "k": 1, "silhouette": float("nan"),
                             "eligible": True, "chosen": True})
            if len(words) < max(min_words, 3):
                notes.append(f"factor {f}: {len(words)} word(s), fewer than {max(min_words, 3)}: not split")
            elif not scores:
                notes.append(f"factor {f}: no k in {k_min}..{k_max} gave distinct clusters: not split")
            sil = np.full(len(words), np.nan)
        else:
            sil = silhouette_samples(X, labels, metric="cosine")
        # relabel: largest subcluster first, ties by medoid word
        groups = []
        for lab in sorted(set(labels.tolist())):
            idx = np.flatnonzero(labels == lab)
            order = centrality_order(X[idx], [words[i] for i in idx], load[idx])
            groups.append((-len(idx), words[idx[order[0]]], idx, order))
        groups.sort(key=lambda g: (g[0], g[1]))
        for new_lab, (_, _, idx, order) in enumerate(groups):
            for j in order:
                i = idx[j]
                rows_words.append(words[i])
                rows_factor.append(f)
                rows_sub.append(new_lab)
                rows_sil.append(float(sil[i]))
                vecs.append(X[i])
        k_by_factor[f] = len(groups)
    n_factors = int(getattr(factors, "n_factors", 0) or 0)
    lost = [f for f in range(n_factors) if f not in by_factor]
    if lost:
        notes.append(f"factor(s) {', '.join(map(str, lost))}: no word assigned, no dimension")
    unassigned = sorted(by_factor.get(-1, [])) if include_unassigned else []
    if unassigned:
        Xu = np.asarray(embed(unassigned), dtype=np.float64)
        for w, v in zip(unassigned, Xu):
            rows_words.append(w)
            rows_factor.append(-1)
            rows_sub.append(-1)
            rows_sil.append(float("nan"))
            vecs.append(v)
    loading = np.array([_loading_of(w, f, loadings) for w, f in zip(rows_words, rows_factor)])
    return Clustering(
        words=rows_words, factor=np.array(rows_factor, dtype=int), subcluster=np.array(rows_sub, dtype=int),
        silhouette=np.array(rows_sil, dtype=float), loading=loading,
        embeddings=np.vstack(vecs) if vecs else np.zeros((0, DIM)), k_by_factor=k_by_factor,
        silhouette_by_k=pd.DataFrame(sil_rows, columns=["factor", "n_words", "k", "silhouette", "eligible", "chosen"]),
        k_min=k_min, k_max=k_max, seed=seed, notes=notes,
    )


# --------------------------------------------------------------------------------------------------------------------
# 2-D view
# --------------------------------------------------------------------------------------------------------------------
def project_2d(X: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
               umap_min_points: int = 10) -> tuple[np.ndarray, str]:
    """2-D coordinates of the rows of X and the method used ("umap", "pca" or "none").

    UMAP (cosine distances, `random_state=seed`, so seeded and single-threaded) with n_neighbors capped at n - 1;
    fewer than `umap_min_points` rows use PCA (UMAP's neighbour graph is meaningless on a handful of points); one or
    two rows are placed on the x axis. The distances are computed here, at once, and given to UMAP as precomputed:
    with metric="cosine" UMAP hands its compiled distance to scikit-learn, which calls it once per pair from Python
    (4 s for 1,932 words). Its compiled functions are cached on disk (`umap_cache`).
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n == 0:
        return np.zeros((0, 2)), "none"
    if n == 1:
        return np.zeros((1, 2)), "none"
    if n == 2:
        d = float(np.linalg.norm(X[0] - X[1])) / 2
        return np.array([[-d, 0.0], [d, 0.0]]), "none"
    if n < max(umap_min_points, 4):
        from sklearn.decomposition import PCA

        Y = PCA(n_components=2, random_state=seed).fit_transform(X)
        return Y, "pca"
    from sklearn.metrics.pairwise import cosine_distances

    from .umap_cache import load_umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs value 1 overridden by random_state", spectral-init fallbacks
        umap = load_umap()
        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(n_neighbors, n - 1)), min_dist=min_dist,
                            metric="precomputed", random_state=seed, init="spectral" if n > 15 else "random")
        Y = reducer.fit_transform(cosine_distances(X))
    return np.asarray(Y, dtype=np.float64), "umap"


def warm_word_map(seed: int = 0) -> list[str]:
    """Draw the map of a few random points, so that UMAP's compiled functions land in numba's disk cache
    (`umap_cache`); what set-up runs once. Returns the functions cached."""
    from .umap_cache import cached_functions

    project_2d(np.random.default_rng(seed).normal(size=(64, 16)), seed=seed)
    return list(cached_functions())


# --------------------------------------------------------------------------------------------------------------------
# Comparison with a value system (the paper's by default)
# --------------------------------------------------------------------------------------------------------------------
def leaf_labels(clusters: pd.DataFrame) -> pd.Series:
    """The leaf each word belongs to in a clusters table: its subdimension, or its dimension when that has none;
    NaN for unassigned words."""
    sub = clusters["subdimension"] if "subdimension" in clusters else pd.Series(np.nan, index=clusters.index)
    dim = clusters["dimension"]
    sub = sub.where(sub.notna() & (sub.astype(str) != ""), other=np.nan)
    out = sub.fillna(dim)
    return out.where(dim.notna() & (dim.astype(str) != ""), other=np.nan)


def system_prototypes(system: Any = "valuelex", level: str = "leaf", embed_fn: EmbedFn | None = None
                      ) -> tuple[list[str], np.ndarray]:
    """Names and unit prototypes of a value system's columns: half the centroid of its marker words (markers and
    extra_markers), half the embedding of its definition. `level` is "leaf" (subdimensions, or dimensions without),
    "dimension" or "subdimension"."""
    from ..systems import load_system

    sys_ = load_system(system)
    names = {"leaf": sys_.leaves, "dimension": sys_.dimensions, "subdimension": sys_.subdimensions}.get(level)
    if names is None:
        raise UserError(f"level must be leaf, dimension or subdimension, not {level!r}")
    cols = names()
    embed = _embed_fn(embed_fn)
    protos = []
    for c in cols:
        markers = sys_.markers(c)
        parts = []
        if markers:
            parts.append(unit(np.asarray(embed(markers), float).mean(axis=0), np.float64))
        definition = sys_.definition(c)
        if definition:
            parts.append(unit(np.asarray(embed([definition]), float)[0], np.float64))
        protos.append(unit(np.mean(parts, axis=0), np.float64))
    return cols, np.vstack(protos)


def _cluster_centroids(clusters: pd.DataFrame, embed_fn: EmbedFn | None, level: str) -> tuple[list[str], np.ndarray,
                                                                                               list[list[str]]]:
    df = clusters.copy()
    if level == "dimension":
        labels = df["dimension"].where(df["dimension"].notna() & (df["dimension"].astype(str) != ""))
    else:
        labels = leaf_labels(df)
    df = df.assign(_leaf=labels).dropna(subset=["_leaf"])
    if df.empty:
        raise UserError("the clusters table has no assigned words to compare")
    embed = _embed_fn(embed_fn)
    names, cents, members = [], [], []
    for name, g in df.groupby("_leaf", sort=False):
        words = g["word"].astype(str).tolist()
        names.append(str(name))
        cents.append(unit(np.asarray(embed(words), float).mean(axis=0), np.float64))
        members.append(words)
    return names, np.vstack(cents), members


def paper_similarity(clusters: pd.DataFrame, system: Any = "valuelex", level: str = "leaf",
                     embed_fn: EmbedFn | None = None) -> pd.DataFrame:
    """Cosine similarity of each of our clusters (rows: leaves, or dimensions with level="dimension") to each column of
    a value system (columns: its leaves, or its dimensions). `clusters` is a clusters.csv table."""
    names, C, _ = _cluster_centroids(clusters, embed_fn, level)
    cols, P = system_prototypes(system, "dimension" if level == "dimension" else "leaf", embed_fn)
    return pd.DataFrame(C @ P.T, index=pd.Index(names, name="cluster"), columns=pd.Index(cols, name="system"))


def closest_paper_subdimension(clusters: pd.DataFrame, system: Any = "valuelex", level: str = "leaf",
                               embed_fn: EmbedFn | None = None, max_words: int = 8) -> pd.DataFrame:
    """For each of our clusters: the closest column of the value system, its similarity, the runner-up, and
    `word_agreement`, the share of the cluster's words whose own closest column is the same one."""
    from ..systems import load_system

    sys_ = load_system(system)
    names, C, members = _cluster_centroids(clusters, embed_fn, level)
    cols, P = system_prototypes(sys_, "dimension" if level == "dimension" else "leaf", embed_fn)
    S = C @ P.T
    embed = _embed_fn(embed_fn)
    dims = clusters.assign(_leaf=leaf_labels(clusters)).dropna(subset=["_leaf"]).drop_duplicates("_leaf")
    parent = dict(zip(dims["_leaf"].astype(str), dims["dimension"].astype(str)))
    rows = []
    for i, name in enumerate(names):
        order = np.argsort(-S[i], kind="stable")
        best = cols[order[0]]
        second = cols[order[1]] if len(cols) > 1 else None
        W = unit(np.asarray(embed(members[i]), float), np.float64) @ P.T
        agree = float(np.mean(np.argmax(W, axis=1) == order[0]))
        rows.append({
            "dimension": name if level == "dimension" else parent.get(name, name),
            "cluster": name,
            "n_words": len(members[i]),
            "words": ", ".join(members[i][:max_words]) + (" ..." if len(members[i]) > max_words else ""),
            "closest": best,
            "closest_dimension": sys_.parent(best) or best,
            "similarity": float(S[i, order[0]]),
            "runner_up": second,
            "runner_up_similarity": float(S[i, order[1]]) if second else float("nan"),
            "margin": float(S[i, order[0]] - S[i, order[1]]) if second else float("nan"),
            "word_agreement": agree,
        })
    return pd.DataFrame(rows)
