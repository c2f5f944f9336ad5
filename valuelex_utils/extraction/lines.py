"""Lines of an answer: list items (numbers, letters, bullets, headings, table rows, bold headers, bare short lines,
'Word: reason'), header enumerations ('Core values: a, b'), first-person statements and prose; sub-points nested
under a value item explain it; a list's item heads are gated together."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .heads import (
    Head,
    cut_at_clause,
    cut_at_prepositions,
    enumeration_heads,
    enumeration_segments,
    gate_heads,
    head_word,
    phrase_head,
    split_segments,
)
from .rules import (
    BOLD_HEAD_RE,
    EXPLANATION_RE,
    FIRST_PERSON_STATEMENT_RE,
    FUNCTION_WORDS,
    HEADER_WORDS,
    INLINE_NUMBERS_RE,
    LABEL_SPLIT_RE,
    MARKER_RE,
    NEVER_WORDS,
    NUMBER_RE,
    PREPOSITIONS,
    SEPARATOR_RE,
    STATEMENT_SUBJECTS,
    VALUE_LEXICON,
    is_value_like,
)
from .text import strip_markdown, word_tokens
from .trace import note_all, quiet, recording_active

_MAX_ITEM_TOKENS = 6


@dataclass(frozen=True)
class Line:
    """One classified line: an `item` (its header phrase), an `enum` (a header's enumeration), a `statement` (a list
    item that is a first-person sentence: 'I value the freedom of choice') or `prose`. `marked`: it starts with a list
    marker; `header`: a standalone bold line or markdown heading ('**Honesty & Transparency**', '## Fairness')."""

    kind: str
    text: str
    indent: int
    marked: bool = False
    header: bool = False
    opens: bool = False  # a numbered item that ends with ':' ('1. **Integrity**:'): bullets below explain it
    numbered: bool = False


def _explained_head(text: str) -> str:
    """The header part of 'Word: reason', 'Word - reason', 'Word (reason)', 'Word. Reason'."""
    match = EXPLANATION_RE.search(text)
    return text[:match.start()] if match and match.start() > 0 else text


def _is_header_phrase(text: str) -> bool:
    """'Here are my values', 'Core principles': a phrase that introduces a list instead of being in it."""
    return any(t in HEADER_WORDS for t in word_tokens(text))


def _table_cell(line: str) -> str | None:
    """The first cell with words of a markdown table row; None for the separator row."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    for cell in cells:
        if word_tokens(cell):
            return cell
    return None


def _classify_marked(body: str, indent: int) -> Line | None:
    """A line that starts with a list marker, a heading mark or a bold header."""
    bold = BOLD_HEAD_RE.match(body)
    head = bold.group("head") if bold else _explained_head(strip_markdown(body))
    head = NUMBER_RE.sub("", strip_markdown(head)).strip(" :.-")
    words = word_tokens(strip_markdown(body))
    if words and words[0] in STATEMENT_SUBJECTS:
        return Line("statement", strip_markdown(body), indent)
    head_tokens = word_tokens(head)
    if head_tokens and head_tokens[0] in PREPOSITIONS and strip_markdown(body).rstrip().endswith(":"):
        return None  # 'Toward users:', 'In conversations:': a group heading over the items below, not a value
    long = len(head_tokens) > _MAX_ITEM_TOKENS
    if (cut_at_clause(head_tokens) != head_tokens or len(cut_at_prepositions(head_tokens)) > _MAX_ITEM_TOKENS
            or (long and _is_header_phrase(head))):
        # a clause ('a life that is made of love') is prose; a long phrase is an item when its head before the first
        # preposition is short ('Being respectful and considerate of all users')
        return Line("prose", strip_markdown(body), indent)
    plain = strip_markdown(body)
    if _is_header_phrase(head):
        # 'Core values: honesty, care', 'The highest of our virtues – love of God'
        split = LABEL_SPLIT_RE.search(plain)
        rest = plain[split.end():] if split else ""
        return Line("enum", rest, indent) if word_tokens(rest) else None
    explained = _first_person_explanation(head, plain)
    if explained is not None:
        return Line("statement", explained, indent)
    return Line("item", head, indent)


def _first_person_explanation(label: str, text: str) -> str | None:
    """'Liam: I'm a compassionate person', '*Cruel and Unusual: I adhere to the principles of empathy': a label that
    names no value, then a first-person sentence; the sentence is read as prose. None otherwise."""
    split = LABEL_SPLIT_RE.search(text)
    if split is None or any(is_value_like(t) for t in word_tokens(label)):
        return None
    rest = text[split.end():]
    # a first-person value statement ('I adhere to the principles of X', 'I'm a compassionate person', 'In this
    # role I strive to promote X'), not a capability ('I can assist with grammar', 'I'm designed to offer responses')
    stated = FIRST_PERSON_STATEMENT_RE.search(rest)
    return rest if stated and len(word_tokens(rest)) > 3 else None


def _is_labelled_enumeration(label: str, rest: str) -> bool:
    """'Lumina: Integrity, Fairness, Respect': a label that names no value (a name, a speaker), then a bare enumeration
    of values. Under a value label ('Integrity: honest, fair and kind') the enumeration only explains it."""
    segments = enumeration_segments(rest)
    if any(is_value_like(t) for t in word_tokens(label)) or len(segments) < 3:
        return False
    if not all(len(word_tokens(segment)) <= 3 for segment in segments):
        return False  # 'A light and sweet reminder of the importance of self-care' is a sentence about the label
    with quiet():  # a test of the reading, not a decision about its words
        return len([h for h in enumeration_heads(rest) if h in VALUE_LEXICON]) >= 2


def _classify_plain(body: str, indent: int) -> Line | None:
    """A line without a marker: 'Header: a, b, c', 'Word: reason', a bare short item, or prose."""
    text = strip_markdown(body)
    if text.endswith(":"):
        # 'I strive for clarity and coherence. Here are my key terms:': the sentences before the header are prose
        intro = re.split(r"(?<=[.!?])\s+(?=[^.!?]*:$)", text, maxsplit=1)
        return Line("prose", intro[0], indent) if len(intro) == 2 and word_tokens(intro[0]) else None
    colon = re.search(r":\s", text)
    dash = colon or re.search(r"\s[-\u2013\u2014]\s", text)
    stops = r"[.!?]\s" if colon else r"[.!?,;]\s"  # before a dash, a comma means an enumeration, not a header
    if dash and _is_header_phrase(text[:dash.start()]) and not re.search(stops, text[:dash.start()]):
        # 'Core values: honesty, care', 'Core principles \u2014 precision; concision'
        return Line("enum", text[dash.end():], indent)
    label = word_tokens(text[:dash.start()]) if dash else []
    if 0 < len(label) <= 3 and label[0] not in FUNCTION_WORDS:
        explained = _first_person_explanation(text[:dash.start()], text)
        if explained is not None:
            return Line("statement", explained, indent)
        if _is_labelled_enumeration(text[:dash.start()], text[dash.end():]):
            return Line("enum", text[dash.end():], indent)  # 'Lumina: Integrity, Fairness, Respect'
        return Line("item", text[:dash.start()], indent)
    if 0 < len(word_tokens(text)) <= 3 and not SEPARATOR_RE.search(text) and not text.endswith((".", "!", "?")):
        return Line("item", text, indent)
    return Line("prose", text, indent)


def classify_line(raw: str) -> Line | None:
    """Classify one raw line; None for blank lines, headers and questions."""
    expanded = raw.expandtabs(4)
    body = expanded.strip()
    if not body or not word_tokens(body):
        return None
    indent = len(expanded) - len(expanded.lstrip(" "))
    if body.startswith("|") or (body.count("|") >= 2 and body.endswith("|")):
        cell = _table_cell(body)
        return Line("item", strip_markdown(cell), indent) if cell else None
    marker = MARKER_RE.match(body)
    bold = BOLD_HEAD_RE.match(body)
    if marker or bold:
        rest = body[marker.end():] if marker else body
        line = _classify_marked(rest, indent) if word_tokens(rest) else None
        if line is None:
            return None
        heading = body.startswith("#") or (marker is None and not word_tokens(bold.group("rest")))
        numbered = bool(marker) and bool(NUMBER_RE.match(body))
        opens = numbered and strip_markdown(body).rstrip().endswith(":")
        return replace(line, marked=not body.startswith("#") and marker is not None, header=heading, opens=opens,
                       numbered=numbered)
    return _classify_plain(body, indent)


def split_inline_numbers(text: str) -> str:
    """'1. Helpful 2. Harmless 3. Honest' or '(1) truth (2) care' on one line -> one item per line."""
    lines = []
    for line in text.split("\n"):
        markers = list(INLINE_NUMBERS_RE.finditer(line))
        lines.append(INLINE_NUMBERS_RE.sub("\n", line) if len(markers) >= 2 else line)
    return "\n".join(lines)


def split_header_intro(raw: str) -> list[str]:
    """'Thank you for asking. The words would be: integrity, empathy.' -> the intro sentences, then the header line."""
    match = re.match(r"^(?P<intro>[^:]*[.!?])\s+(?P<header>[^.!?:]+):\s+\S", raw)
    if match and not MARKER_RE.match(raw.strip()) and _is_header_phrase(match.group("header")):
        return [match.group("intro"), raw[match.start("header"):]]
    return [raw]


def _names_a_value(item: Line) -> bool:
    """Does a list item's header name a known value (so that its nested sub-points merely explain it)?"""
    return any((h := head_word(seg)) is not None and is_value_like(h) for seg in split_segments(item.text))


def top_level(lines: Sequence[Line]) -> list[Line]:
    """Drop the sub-points nested under a value item ('1. **Trust**' / '   - Being reliable'): they explain it.

    Sub-points under a header that names no value ('1. Core values:' / '   - Honesty') are the list itself.
    """
    kept: list[Line] = []
    section: Line | None = None
    for line in lines:
        if line.header or line.opens:
            section = line if line.kind == "item" and _names_a_value(line) else None
        elif section is not None and section.opens and line.numbered:
            section = None  # the next numbered item: past the previous one's bullets
        elif section is not None and line.marked:
            # '**Privacy and Security**' / '- I don't retain personal data': bullets explain the header
            _note_line_dropped(line, "under a value header: explains it")
            continue
        if line.kind == "item":
            parent = next((p for p in reversed(kept) if p.kind == "item" and p.indent + 1 < line.indent), None)
            if parent is not None and _names_a_value(parent):
                _note_line_dropped(line, "nested under a value item: explains it")
                continue
        kept.append(line)
    return kept


def _note_line_dropped(line: Line, rule: str) -> None:
    """Record that the value words of a dropped line went by `rule` (only while `explain` records)."""
    if recording_active():
        note_all((t for t in word_tokens(line.text) if t in VALUE_LEXICON), False, rule)


def _item_segment_head(segment: str) -> Head:
    """One segment of a list item: its head, or None (and, for `explain`, its value words dropped: negated, a
    role, no head)."""
    head = phrase_head(segment)
    if head is None and recording_active():
        note_all((t for t in word_tokens(segment) if t in VALUE_LEXICON or t in NEVER_WORDS), False,
                 "item: no head value word (negated, a role to fill, a never-word)")
    return head


def list_item_heads(lines: Sequence[Line]) -> dict[int, list[str]]:
    """Heads of every item, gated over the whole list: most items known -> keep unseen words too."""
    per_item = {i: [_item_segment_head(seg) for seg in split_segments(line.text)]
                for i, line in enumerate(lines) if line.kind == "item"}
    accepted = set(gate_heads([h for heads in per_item.values() for h in heads]))  # skill marks never pass
    return {i: [h for h in heads if h in accepted] for i, heads in per_item.items()}
