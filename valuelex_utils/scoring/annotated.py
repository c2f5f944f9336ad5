"""The shipped annotated sets (human labels 0..6, `data/annotated/`): which one calibrates a value system.

A built-in system `systems/NAME.yaml` is calibrated by `data/annotated/NAME.csv` when that file exists and labels
every column of the system; nothing else needs to list the pair.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError
from ..systems import PACKAGE_DIR, builtin_key, load_system
from .lexical import strip_stem

PACKAGE_DATA = PACKAGE_DIR / "data"
ANNOTATED_DIR = PACKAGE_DATA / "annotated"


def annotated_path(system: Any) -> Path | None:
    """The shipped annotated CSV that calibrates `system`, or None (a run's own taxonomy)."""
    system = load_system(system)
    key = builtin_key(system)
    path = ANNOTATED_DIR / f"{key}.csv" if key is not None else None
    if path is not None and path.is_file():
        ann = pd.read_csv(path, nrows=0)
        if all(c in ann.columns for c in system.columns()):
            return path
    return None


def load_annotated(system: Any) -> pd.DataFrame:
    path = annotated_path(system)
    if path is None:
        raise UserError(f"no annotated set ships for value system {load_system(system).name!r}")
    return pd.read_csv(path)


def stem_key(stem: str) -> str:
    """A stem without its dots, punctuation and case: the group of a completion in stem-grouped folds."""
    return re.sub(r"\W+", " ", strip_stem(stem).lower()).strip()
