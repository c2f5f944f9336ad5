"""The key figures of the report's index page, rebuilt from a run dir's files alone (no notebook state).

A builder returns a figure (shown under its title in `BUILDERS`), or a list of (title, figure, note in HTML): the
profile figures come with how much they say, in words."""
from __future__ import annotations

import html
from typing import Any, Callable

import pandas as pd
import yaml

from .rundir import RunDir


def _need(path):
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def profiles_heatmaps(rd: RunDir) -> list[tuple[str, Any, str]]:
    """Paper Fig. 3 for every scored system, this run's own first, each with its signal in words; the notes of step
    06 (e.g. why the run's own system could not be scored) with the first."""
    from .comparison import system_title
    from .evaluation import read_notes
    from .figures import profile_heatmap
    from .profiles import profile_signal
    from .tables import thin_data_warning

    prof = pd.read_csv(_need(rd.profiles))
    if "neutral_share" not in prof.columns:  # written before the column existed
        prof["neutral_share"] = float("nan")
    if "system" not in prof.columns:  # a run dir from before profiles carried their system
        return [("Value orientation of each model (paper Fig. 3)", profile_heatmap(prof, level="model"),
                 profile_signal(prof, level="model").html())]
    keys = list(dict.fromkeys(prof["system"]))
    keys = [k for k in keys if k == "run"] + [k for k in keys if k != "run"]
    notes = "".join(f"<p class='vl-note'>{html.escape(n)}</p>" for n in read_notes(rd))
    out = []
    for i, key in enumerate(keys):
        where = ("this run's own value system" if key == "run" else
                 "the paper's value system, ValueLex" if key == "valuelex" else system_title(key))
        note = (notes if i == 0 else "") + profile_signal(prof, level="model", system=key).html()
        n = prof.loc[(prof["system"] == key) & (prof["level"] == "model"), "n"] if "n" in prof.columns else None
        thin = thin_data_warning(int(n.min()), "completions behind a model's cell") if n is not None and \
            n.notna().any() else None
        note += f"<p class='vl-little'>{html.escape(thin)}</p>" if thin else ""
        fig = profile_heatmap(prof, level="model", system=key, title=f"Value orientation per model: {system_title(key)}")
        out.append((f"Value orientation of each model on {where} (paper Fig. 3)", fig, note))
    return out


def taxonomy_sunburst(rd: RunDir) -> Any:
    from .figures import captioned
    from .taxonomy import load_clusters, sunburst_figure

    taxonomy = yaml.safe_load(_need(rd.taxonomy).read_text(encoding="utf-8"))
    clusters = load_clusters(_need(rd.clusters))
    dims = taxonomy.get("dimensions") or []
    subs = sum(len(d.get("subdimensions") or []) for d in dims)
    words = int((clusters["dimension"].notna() & (clusters["dimension"].astype(str) != "")).sum())
    return captioned(sunburst_figure(clusters, taxonomy),
                     "Three rings: dimensions (factors) inside, their subdimensions ('(not split)' where a dimension "
                     "has none), the value words outside; a segment's size is its number of words; n = "
                     f"{len(dims)} dimensions, {subs} subdimensions, {words} words.")


def all_systems(rd: RunDir) -> list[tuple[str, Any, str]]:
    """Paper Fig. 4 on every system of comparison.csv, with how much each system's bars say."""
    from .comparison import figure4, ordered_systems, signals, system_title

    table = pd.read_csv(_need(rd.comparison))
    names = ", ".join(system_title(s).replace("This run's", "this run's") for s in ordered_systems(table["system"]))
    items = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(h)}; {html.escape(w)}</li>"
                    for t, h, w in signals(table))
    return [(f"The same completions under {names} (paper Fig. 4)", figure4(table),
             f"<ul class='vl-signal'>{items}</ul>")]


def top_words(rd: RunDir) -> Any:
    from .figures import top_words_by_training

    return top_words_by_training(pd.read_csv(_need(rd.lexicon)), n=12)


#: (title, builder), in the order of the index page: this run's own system leads.
BUILDERS: list[tuple[str, Callable[[RunDir], Any]]] = [
    ("Value orientation of each model (paper Fig. 3)", profiles_heatmaps),
    ("The run's own value system (paper Fig. 2)", taxonomy_sunburst),
    ("The same completions under every value system (paper Fig. 4)", all_systems),
    ("Value words per training type (paper appendix A.3)", top_words),
]
