"""The texts the respondents are asked, shipped as package data (`valuelex_utils/data/*.yaml`): the 15 elicitation
prompts of appendix A.1, the completion frames for base models, and the projective stems (read by `projective`).

Its own module, below `params` and `elicitation`: `params` counts the selected prompts while it validates a study,
and `elicitation` builds the calls from them.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .errors import UserError


@lru_cache(maxsize=None)
def package_yaml(name: str) -> list[dict[str, Any]]:
    text = resources.files("valuelex_utils.data").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def elicitation_prompts(selection: str | list[int] = "all") -> dict[int, str]:
    """The 15 prompts of appendix A.1 by id (or the selected ids)."""
    prompts = {int(p["id"]): p["prompt"] for p in package_yaml("elicitation_prompts.yaml")}
    return _select(prompts, selection, "elicitation.prompts", "prompt")


def stems(selection: str | list[int] = "all") -> dict[int, str]:
    """The 50 stems of appendix A.2 by id (stem 10 is "Humans...")."""
    table = {int(s["id"]): s["stem"] for s in package_yaml("stems.yaml")}
    return _select(table, selection, "projective.stems", "stem")


def _select(table: dict[int, str], selection: str | list[int], option: str, what: str) -> dict[int, str]:
    """`selection` ("all", or ids in their order) of a numbered table; an unknown id is a `UserError` naming `option`."""
    if selection == "all":
        return table
    unknown = sorted(set(selection) - set(table))
    if unknown:
        raise UserError(f"{option}: unknown {what} ids {unknown} (valid: 1-{len(table)})")
    return {i: table[i] for i in selection}


def base_frames() -> dict[int, str]:
    """First-person completion frames for base models, one per prompt id (`elicitation_frames.yaml`)."""
    return {int(f["id"]): f["frame"] for f in package_yaml("elicitation_frames.yaml")}
