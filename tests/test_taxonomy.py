"""taxonomy.yaml / clusters.csv (schema of params/taxonomies, loadable as a value system), the UMAP view, figures,
stability over resamples of respondents and the pretrained-vs-aligned split. Embeddings are faked here (structured
random vectors) so these tests do not load MiniLM; tests/test_clusters.py covers the real model."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))

from valuelex_utils import taxonomy as T  # noqa: E402
from valuelex_utils.errors import UserError  # noqa: E402
from tests.support.planted import make_planted  # noqa: E402
from valuelex_utils.systems import load_system  # noqa: E402
from valuelex_utils.taxonomy.clusters import project_2d  # noqa: E402

GROUPS = {
    "a": ["accuracy", "precision", "correctness", "exactness"],
    "b": ["helpful", "informative", "useful", "cooperative"],
    "c": ["kindness", "empathy", "compassion", "warmth"],
    "d": ["fairness", "justice", "equality"],
}


def fake_embed(words):
    """Each group of GROUPS around its own axis (a and b close to each other), other words at hashed directions."""
    out = []
    for w in words:
        rng = np.random.default_rng(int(hashlib.md5(w.encode()).hexdigest()[:8], 16))
        v = rng.normal(size=32) * 0.15
        for i, (g, ws) in enumerate(GROUPS.items()):
            if w in ws:
                v[i] += 1.0
                if g in "ab":
                    v[10] += 0.8  # a and b share a direction: one factor, two subclusters
        out.append(v / np.linalg.norm(v))
    return np.array(out)


ASSIGN = {**{w: 0 for w in GROUPS["a"] + GROUPS["b"]}, **{w: 1 for w in GROUPS["c"]},
          **{w: 2 for w in GROUPS["d"]}, "humor": -1, "wealth": -1}


def test_taxonomy_yaml_loads_as_a_value_system(tmp_path):
    res = T.build_taxonomy(ASSIGN, seed=0, embed_fn=fake_embed, project=False, name="smoke_taxonomy")
    paths = res.write(tmp_path)
    system = load_system(paths["taxonomy"])
    raw = yaml.safe_load(paths["taxonomy"].read_text())
    assert raw["name"] == "smoke_taxonomy" and raw["method"]["naming"] == "medoid"
    assert raw["method"]["clustering"]["k_by_factor"] == {0: 2, 1: 2, 2: 1}
    dims = system.dimensions()
    assert len(dims) == 3 and len(system.subdimensions()) == 4
    # factor 0 splits into the two planted groups; the 3-word factor is a dimension without subdimensions (a leaf)
    subs0 = [set(system.markers(s)) for s in system.children(dims[0])]
    assert sorted(subs0, key=min) == sorted([set(GROUPS["a"]), set(GROUPS["b"])], key=min)
    assert dims[2] in system.leaves() and set(system.markers(dims[2])) == set(GROUPS["d"])
    for d in raw["dimensions"]:
        assert d["markers"] == d["words"] and d["naming_method"] == "medoid" and d["definition"]
    assert raw["unassigned"] == ["humor", "wealth"]
    # clusters.csv: the promised columns; unassigned words kept with an empty dimension
    df = T.load_clusters(paths["clusters"])
    assert list(df.columns) == T.CLUSTER_COLUMNS and len(df) == len(ASSIGN)
    un = df[df["factor"] == -1]
    assert set(un["word"]) == {"humor", "wealth"} and un["dimension"].isna().all() and (un["subcluster"] == -1).all()
    assert df.loc[df["factor"] == 2, "subdimension"].isna().all()
    assert res.system().columns() == system.columns()
    table = res.table()
    assert len(table) == 5 and table["subdimension"].isna().sum() == 1


def test_single_factor_and_very_few_words():
    res = T.build_taxonomy({"honesty": 0, "truthfulness": 0, "candor": 0}, embed_fn=fake_embed)
    assert [d["subdimensions"] for d in res.taxonomy["dimensions"]] == [[]]
    assert res.system().leaves() == [res.taxonomy["dimensions"][0]["name"]]
    assert res.projection == "pca" and res.clusters[["umap_x", "umap_y"]].notna().all().all()
    one = T.build_taxonomy({"honesty": 0}, embed_fn=fake_embed)
    assert one.projection == "none" and one.taxonomy["dimensions"][0]["name"] == "Honesty"
    with pytest.raises(UserError, match="no words"):
        T.build_taxonomy({}, embed_fn=fake_embed)


def test_umap_view_is_seeded_and_adapts_to_few_points():
    words = GROUPS["a"] + GROUPS["b"] + GROUPS["c"]  # 12 points < default n_neighbors 15
    X = fake_embed(words)
    Y1, how = project_2d(X, seed=3)
    Y2, _ = project_2d(X, seed=3)
    assert how == "umap" and Y1.shape == (12, 2) and np.allclose(Y1, Y2)
    res = T.build_taxonomy({**{w: 0 for w in GROUPS["a"] + GROUPS["b"]}, **{w: 1 for w in GROUPS["c"]}},
                           embed_fn=fake_embed, seed=3)
    assert res.projection == "umap" and res.taxonomy["method"]["projection"] == "umap"
    fig = T.umap_figure(res.clusters)
    hover = {h for tr in fig.data for h in (tr.hovertext if tr.hovertext is not None else ())}
    assert set(words) <= hover
    assert {tr.marker.symbol for tr in fig.data} and len({tr.legendgroup for tr in fig.data}) >= 3


def test_figures_build():
    res = T.build_taxonomy(ASSIGN, embed_fn=fake_embed, project=False)
    sb = T.sunburst_figure(res.clusters, res.taxonomy)
    tr = sb.data[0]
    assert tr.type == "sunburst" and set(ASSIGN) - {"humor", "wealth"} <= set(tr.labels)
    assert T.sunburst_figure(res.clusters, kind="treemap", include_unassigned=True).data[0].type == "treemap"
    assert T.silhouette_figure(res).data
    sim = pd.DataFrame([[0.8, 0.2], [0.1, 0.7]], index=["x", "y"], columns=["Social", "Ethical"])
    assert T.similarity_heatmap(sim).data[0].type == "heatmap"
    both = T.compare_sunbursts({"pretrained": "pretrained: 2 respondents; factor analysis needs at least 3",
                                "aligned": res})
    assert len(both.data) == 1 and both.layout.annotations
    with pytest.raises(UserError):
        T.umap_figure(res.clusters)  # project=False: no coordinates


def _planted_with_words(seed=1, n=150):
    words = {0: GROUPS["a"] + GROUPS["b"], 1: GROUPS["c"] + ["patience", "friendliness"],
             2: GROUPS["d"] + ["transparency", "accountability", "privacy"]}
    df, truth = make_planted(n_respondents=n, n_factors=3, words_per_factor=[8, 6, 6], n_noise_words=4,
                             seed=seed)
    it = {k: iter(v) for k, v in words.items()}
    noise = iter(["humor", "wealth", "power", "pleasure"])
    return df.rename(columns={w: next(it[k]) if k >= 0 else next(noise) for w, k in truth.items()})


def test_stability_over_resamples_of_respondents():
    df = _planted_with_words()
    per = T.taxonomy_stability(df, n_boot=4, seed=0, fit_opts={"pa_iter": 20}, embed_fn=fake_embed)
    assert len(per) == 4 and (per["status"] == "ok").all() and per.attrs["k_full"] == 3
    assert per["ari_factor"].median() > 0.8 and per["k_changed"].astype(float).mean() <= 0.5
    summary = T.stability_summary(per).set_index("metric")["value"]
    assert summary["resamples"] == 4 and summary["K (full data)"] == 3
    assert 0 <= summary["ARI subdimension assignment: mean"] <= 1
    assert T.stability_figure(per).data
    boot = T.taxonomy_stability(df, n_boot=2, seed=0, scheme="bootstrap", fit_opts={"n_factors": 3},
                                embed_fn=fake_embed)
    assert (boot["k"] == 3).all() and boot.attrs["scheme"] == "bootstrap"
    with pytest.raises(UserError):
        T.taxonomy_stability(df, n_boot=1, scheme="jackknife", embed_fn=fake_embed)


def test_taxonomies_by_training_pretrained_vs_aligned():
    aligned = _planted_with_words(seed=2, n=120)
    aligned.index = [f"chat{i}@T0.7-p1" for i in range(len(aligned))]
    pre = aligned.iloc[:2].copy()
    pre.index = ["base0@T1-p1|p1|s0", "base1@T1-p1|p1|s0"]  # answer-level rows: respondent before '|'
    matrix = pd.concat([aligned, pre])
    training = {**{r: "aligned" for r in aligned.index}, "base0@T1-p1": "pretrained", "base1@T1-p1": "pretrained"}
    out = T.taxonomies_by_training(matrix, training, fit_opts={"pa_iter": 20}, embed_fn=fake_embed, project=False)
    assert isinstance(out["pretrained"], str) and "at least 3" in out["pretrained"]
    assert isinstance(out["aligned"], T.TaxonomyResult)
    summary = T.training_summary(out).set_index("group")
    assert summary.loc["aligned", "K"] == 3 and summary.loc["aligned", "n_respondents"] == 120
    assert summary.loc["pretrained", "note"].startswith("pretrained")
    split = T.split_by_training(matrix, pd.DataFrame({"respondent": list(training), "training": list(training.values())}))
    assert len(split["pretrained"]) == 2 and len(split["aligned"]) == 120
