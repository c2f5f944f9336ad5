"""The key figures of the report's index page, rebuilt from a run dir's files alone (no notebook state)."""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import yaml

from .rundir import RunDir


def _need(path):
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def profiles_heatmap(rd: RunDir) -> Any:
    from .figures import profile_heatmap

    return profile_heatmap(pd.read_csv(_need(rd.profiles)), level="model")


def taxonomy_sunburst(rd: RunDir) -> Any:
    from .taxonomy import load_clusters, sunburst_figure

    taxonomy = yaml.safe_load(_need(rd.taxonomy).read_text(encoding="utf-8"))
    return sunburst_figure(load_clusters(_need(rd.clusters)), taxonomy)


def three_systems(rd: RunDir) -> Any:
    from .comparison import figure4

    return figure4(pd.read_csv(_need(rd.comparison)))


def top_words(rd: RunDir) -> Any:
    from .figures import top_words_by_training

    return top_words_by_training(pd.read_csv(_need(rd.lexicon)), n=12)


BUILDERS: list[tuple[str, Callable[[RunDir], Any]]] = [
    ("Value orientation of each model (paper Fig. 3)", profiles_heatmap),
    ("The same completions under Schwartz, ValueLex and MFT (paper Fig. 4)", three_systems),
    ("The run's own value system (paper Fig. 2)", taxonomy_sunburst),
    ("Value words per training type (paper appendix A.3)", top_words),
]
