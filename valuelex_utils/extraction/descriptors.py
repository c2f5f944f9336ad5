"""`extract_descriptors`: one raw answer -> its value descriptors (the rules half of f, paper Eq. 1)."""
from __future__ import annotations

import re

from .heads import enumeration_heads
from .lines import (
    Line,
    classify_line,
    list_item_heads,
    split_header_intro,
    split_inline_numbers,
    top_level,
)
from .prose import after_enumeration, prose_descriptors
from .structured import structured_values
from .text import drop_cut_word, normalise
from .trace import emit


def extract_descriptors(text: str) -> list[str]:
    """Map one raw answer to its value descriptors: lower-case single words, de-duplicated in order of appearance.

    Deterministic, offline, rules only (the first half of f in Eq. 1). List items give their head value word;
    enumerations give each segment's head; prose gives triggered or known value words, and is ignored when the answer
    is a list (its prose only explains the items). Refusals, prompt echoes and off-topic text give [].
    """
    if not text or not text.strip():
        return []
    structured = structured_values(text)
    if structured is not None:
        emit({0: structured})
        return structured
    text = drop_cut_word(text)
    raw_lines = [part for raw in split_inline_numbers(normalise(text)).split("\n")
                 for part in split_header_intro(raw)]
    lines = top_level([line for line in map(classify_line, raw_lines) if line is not None])
    item_heads = list_item_heads(lines)
    emit(item_heads)  # the list's gate decided them all at once
    is_list = sum(len(heads) for heads in item_heads.values()) >= 2
    found: list[str] = []
    for index, line in enumerate(lines):
        if line.kind == "item":
            found.extend(item_heads[index])
            continue
        words = _line_descriptors(line, is_list)
        emit({index: words})
        found.extend(words)
    return list(dict.fromkeys(found))


def _line_descriptors(line: Line, is_list: bool) -> list[str]:
    """The descriptors of a line that is not a list item: a header's enumeration (and the sentences after it), a
    first-person statement, or prose (which gives only enumerations and the speaker's own statements in a list)."""
    if line.kind == "enum":
        # 'I'd choose: reliable, fair and kind. I also try to be patient': the enumeration ends with its sentence
        enumeration, *after = re.split(r"(?<=[.!?])\s+(?=[A-Z])", line.text, maxsplit=1)
        words = enumeration_heads(enumeration)
        return words + after_enumeration(after[0], prose_allowed=not is_list) if after else words
    if line.kind == "statement":
        return prose_descriptors(line.text, prose_allowed=True)
    return prose_descriptors(line.text, prose_allowed=not is_list)
