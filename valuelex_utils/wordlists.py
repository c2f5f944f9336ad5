"""Word lists shared by more than one step, read from package data (`data/negations.yaml`).

Why here: extraction (step 02) and the scorer (steps 06/07) both read negation words, with different reach; one file
lists the words both read once and each reader's own words apart, and this module is the one place that reads it, so
neither step imports the other.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

__all__ = ["negation_words"]


@lru_cache(maxsize=2)
def negation_words(reader: Literal["extraction", "scoring"]) -> frozenset[str]:
    """The negation words one reader uses: those both read plus its own (see the comments of data/negations.yaml)."""
    text = resources.files("valuelex_utils").joinpath("data/negations.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return frozenset(data["both"].split()) | frozenset(data[reader].split())
