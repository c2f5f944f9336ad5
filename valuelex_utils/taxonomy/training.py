"""Pretrained vs aligned respondents, each alone (paper Fig. 2 c/d): split, build, summarise, compare."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from valuelex_utils.errors import UserError
from valuelex_utils.factors import RESAMPLE_FIT, fit_each

from .build import TaxonomyResult, build_taxonomy
from .figures import sunburst_figure
from .stability import respondent_of


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
                           project: bool = False) -> dict[str, TaxonomyResult | str]:
    """The same pipeline (EFA with `fit_opts`, clustering, naming) on each training type's respondents alone.

    Returns group -> `TaxonomyResult`, or group -> a one-line reason when that group cannot be fitted (too few
    respondents or words, no factor), so a notebook on a tiny run still runs and says why. `project=True` also
    places each group's words in 2-D (UMAP); off by default: the groups are compared by `training_summary` and
    `compare_sunbursts`, which show no map, and each map took 4-8 s at paper scale (2,000 words).
    """

    # a group's taxonomy needs its K and assignment only: no table of K candidates (refits K = 1..max_k; at paper
    # scale, 53 minres fits per group) and nothing else a resampling fit skips; none of them changes K or assignment
    opts = {**dict(fit_opts or {}), "max_k": 0, **RESAMPLE_FIT}
    fit_seed = opts.pop("seed", seed)
    out: dict[str, TaxonomyResult | str] = {}
    parts = {g: sub for g, sub in split_by_training(matrix, training, groups).items() if not sub.empty}
    fits = dict(zip(parts, fit_each(list(parts.values()), seed=fit_seed, **opts)))  # the groups side by side
    for g in groups:
        if g not in parts:
            out[g] = f"no {g} respondents in the matrix"
            continue
        try:
            res = fits[g]
            if isinstance(res, UserError):
                raise res
            out[g] = build_taxonomy(res, k_min=k_min, k_max=k_max, min_words=min_words, seed=seed, call=call,
                                    model=model, name=f"{g}_taxonomy", embed_fn=embed_fn, project=project,
                                    title=f"Value system of {g} respondents alone")
            out[g].taxonomy["method"]["respondents"] = {"training": g, "n_rows": int(len(parts[g])),
                                                        "n_respondents": int(respondent_of(parts[g].index).nunique())}
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
