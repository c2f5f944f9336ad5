"""Structured answers: JSON or YAML ('{"values": ["honesty", ...]}', a ```yaml block)."""
from __future__ import annotations

import json
import re

import yaml

from .heads import Head, gate_heads, phrase_head
from .rules import FENCE_RE, NAME_KEYS, NEGATIVE_KEY_RE, VALUE_KEY_RE
from .trace import note_all


def structured_values(text: str) -> list[str] | None:
    """Values of an answer given as data: a JSON object or list, or YAML in a code fence or made of keys and lists.

    Why: asked for "a list", models often answer in JSON or YAML, where the rules for prose and markdown lists would
    take keys, descriptions and metadata ('description: Be truthful', 'confidence: high') for values. Names under
    value-like keys count ('values:', 'central_tenets:', a mapping of value names to their descriptions); strings of
    other keys are gated as a list; keys that reject ('not_values', 'avoid') and metadata are skipped. None when the
    text is not such data, so that the rules read it."""
    fenced = FENCE_RE.match(text)
    body = fenced.group("body") if fenced else text.strip()
    data: object = None
    if body[:1] in "[{":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    if data is None and (fenced or re.search(r"^[ \t]*[\w-]+:[ \t]*\n[ \t]+(?:-[ \t]|[\w-]+:)", body, re.MULTILINE)):
        try:
            data = yaml.safe_load(body)
        except Exception:  # noqa: BLE001 - not YAML after all: the rules read it
            data = None
    if not isinstance(data, (dict, list)):
        return None
    named: list[Head] = []
    listed: list[Head] = []
    _walk_structure(data, False, named, listed)
    note_all((h for h in named if isinstance(h, str)), True, "structured: a name under a value key ('values:')")
    heads = [h for h in named if h] + gate_heads(listed, where="structured list")
    return list(dict.fromkeys(h for h in heads if isinstance(h, str)))


def _walk_structure(node: object, under_values: bool, named: list[Head], listed: list[Head]) -> None:
    """Collect item heads: `named` under a value-like key (trusted), `listed` elsewhere (gated as a list)."""
    if isinstance(node, dict):
        name = next((node[k] for k in NAME_KEYS if isinstance(node.get(k), str)), None)
        if name is not None:  # {"name": "Accuracy", "description": "..."}: the name is the item
            (named if under_values else listed).append(phrase_head(name.replace("_", " ")))
            return
        for key, value in node.items():
            key_text = str(key).lower().replace("-", "_").replace(" ", "_")
            if NEGATIVE_KEY_RE.search(key_text):
                continue
            if under_values and isinstance(value, (dict, type(None))):
                named.append(phrase_head(str(key).replace("_", " ")))  # 'honesty: {description: ..., priority: 1}'
                continue
            _walk_structure(value, bool(VALUE_KEY_RE.search(key_text)), named, listed)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str):
                (named if under_values else listed).append(phrase_head(item.replace("_", " ")))
            else:
                _walk_structure(item, under_values, named, listed)
