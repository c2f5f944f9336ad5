"""Phrase -> head value word: "being honest" -> honest, "respect for users" -> respect, "commitment to accuracy" ->
accuracy, "user privacy" -> privacy; enumerations split into segments, each reduced to its head, gated as one list.
A phrase that names a skill or a task gives a `Skill`, which a list's gate counts as an item naming no value."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .rules import (
    CAPABILITY_MODIFIERS,
    CARRIER_NOUNS,
    CLAUSE_SUBJECTS,
    CLAUSE_WORDS,
    DETERMINERS,
    EXPLANATION_STARTS,
    FRAME_WORDS,
    FUNCTION_WORDS,
    NEGATIONS,
    PREPOSITIONS,
    PROMOTING,
    PROSE_VALUE_WORDS,
    SEPARATOR_RE,
    SKILL_MODIFIERS,
    SKILL_NOUNS,
    SKILL_SUFFIXES,
    STOP_WORDS,
    TECHNICAL_RE,
    VALUE_LEXICON,
    VALUE_OBJECT_FRAMES,
    VALUE_SUFFIXES,
    WH_WORDS,
    is_sane,
    is_value_like,
)
from .text import word_tokens
from .trace import note_all


@dataclass(frozen=True)
class Skill:
    """What a phrase heads when it names a skill, a task or a capability, not a value ('critical thinking' ->
    Skill('thinking'), 'code completion' -> Skill('completion')). A list's gate counts it as an item that names no
    value; after a trigger that names the speaker's values ('I value critical thinking') its word is kept. `word` None:
    a quantity or a technique ('2 eggs', 'machine learning'), never kept."""

    word: str | None

    def counts_as_value(self) -> bool:
        """Counted as value-like by a list's gate only when its word ends like a quality noun ('code functionality').

        Why: the gate applied `is_value_like` to the old string mark '\\x00skill:<word>', which only the suffix test
        could pass; kept so that the descriptors do not change."""
        return self.word is not None and self.word.endswith(VALUE_SUFFIXES)


NOT_A_VALUE = Skill(None)
"""A list item that counts against a list's gate and is never promoted to a value (a quantity, a technique)."""

Head = str | Skill | None
"""What a phrase gives: its head value word, a `Skill`, or None (no head: negated, a role, filler)."""


def split_segments(text: str) -> list[str]:
    """Split an enumeration into its segments at commas, semicolons, slashes, 'and', 'or'."""
    return [seg.strip(" .!:-\u2013\u2014\"'") for seg in SEPARATOR_RE.split(text) if seg and seg.strip(" .!:-")]


def cut_at_clause(tokens: list[str]) -> list[str]:
    """Keep the tokens before a verb or a relative word: the value phrase, not what is said about it."""
    for index, token in enumerate(tokens):
        if index > 0 and (token in CLAUSE_WORDS or token in CLAUSE_SUBJECTS):
            return tokens[:index]
    return tokens


def content_words(tokens: Sequence[str]) -> list[str]:
    """Tokens that could carry meaning in a value phrase."""
    return [t for t in tokens if t not in FUNCTION_WORDS and t not in STOP_WORDS]


def resolve_prepositions(tokens: list[str]) -> list[str]:
    """'respect for users' -> [respect]; 'commitment to accuracy' -> [accuracy] (the frame word gives way).
    A frame with nothing after it ('a desire for more') or a power/value frame on a non-value ('the power of the
    mind') gives nothing."""
    for index, token in enumerate(tokens):
        if token not in PREPOSITIONS or index == 0:
            continue
        left = [t for t in tokens[:index] if t not in FUNCTION_WORDS]
        right = tokens[index + 1:]
        if left and left[-1] in FRAME_WORDS and (left[-1] != "kind" or token == "of"):
            # 'kind to others' is a value, 'kind of' a frame
            content = content_words(cut_at_prepositions(right))
            if not content:  # 'understanding towards others' keeps the value word, 'a desire for more' gives nothing
                return tokens[:index] if left[-1] in VALUE_LEXICON and left[-1] not in VALUE_OBJECT_FRAMES else []
            if left[-1] in VALUE_OBJECT_FRAMES and not set(content) & VALUE_LEXICON:
                return []
            return resolve_prepositions(right)
        return tokens[:index]
    return tokens


def cut_at_prepositions(tokens: list[str]) -> list[str]:
    """The tokens before the first preposition."""
    for index, token in enumerate(tokens):
        if token in PREPOSITIONS:
            return tokens[:index]
    return tokens


def _drop_leading_gerund(tokens: list[str]) -> list[str]:
    """'protecting user privacy' -> 'user privacy'; 'understanding others' keeps 'understanding' (nothing follows)."""
    if len(tokens) > 1 and tokens[0].endswith("ing") and len(tokens[0]) > 4:
        rest = [t for t in content_words(tokens[1:]) if t not in CARRIER_NOUNS]
        if (tokens[0] in VALUE_LEXICON and not set(rest) & PROSE_VALUE_WORDS
                and (tokens[0] not in PROMOTING or set(rest) <= VALUE_LEXICON)):
            return tokens  # 'nurturing environment', 'caring home': the gerund is the value adjective
        if rest:
            return tokens[1:]
    return tokens


def _choose_head(tokens: list[str]) -> str | None:
    """Pick the value word of a short phrase: the last word that names a value anywhere ('inclusive environment' ->
    inclusive, 'user privacy' -> privacy), else the last value word of lists ('hard work' -> work), else the noun."""
    words = content_words(tokens)
    kept = [w for w in words if w not in CARRIER_NOUNS] or words
    if not kept:
        return None
    last = kept[-1]
    known = [w for w in kept if w in PROSE_VALUE_WORDS]
    if known:
        return known[-1]
    # A word that is a value only in lists heads its phrase only as its last word: 'hard work' -> work, but
    # 'positive numbers' is about numbers.
    if last in VALUE_LEXICON or is_value_like(last):
        return last
    return last if len(kept) <= 3 else None


def is_skill(word: str) -> bool:
    """'problem-solving', 'decision-making', 'planning': an ability or a task, never a value descriptor."""
    return word in SKILL_NOUNS or word.endswith(SKILL_SUFFIXES)


def head_word(phrase: str) -> str | None:
    """Reduce a value phrase to its single head value word, in the form the model used; None if it has none."""
    head = phrase_head(phrase)
    return head if isinstance(head, str) else None


def phrase_head(phrase: str) -> Head:
    """`head_word`, but a skill phrase gives a `Skill` ('strategic planning' -> Skill('planning')) so that a list gate
    counts it as a non-value item."""
    if re.match(r"\W*\d", phrase) or TECHNICAL_RE.search(phrase):
        return NOT_A_VALUE  # a quantity ('1 cup of sugar', '2 eggs') or a technique ('machine learning')
    tokens = cut_at_clause(word_tokens(phrase))
    if any(t in NEGATIONS or t.endswith("n't") for t in tokens):
        return None
    if len(tokens) > 2 and tokens[0] == "be" and tokens[1] in {"a", "an"}:
        return None  # 'Be a good friend': a role to fill, not a value
    tokens = resolve_prepositions(tokens)
    if len(tokens) > 1 and tokens[0].endswith("ing") and tokens[1] in DETERMINERS:
        tokens = tokens[1:]  # 'empowering my team': a verb and its object
    promoted = bool(tokens) and tokens[0] in PROMOTING  # 'encouraging critical thinking' (in the users) is a value
    words = [t for t in tokens if t not in FUNCTION_WORDS]  # 'language' is a stop word, but it marks a skill
    tokens = _drop_leading_gerund(content_words(tokens) or tokens)
    content = content_words(tokens)
    if (len(content) > 1 and not promoted and content[0] in CAPABILITY_MODIFIERS
            and content[-1] not in PROSE_VALUE_WORDS):
        return Skill(content[-1])
    if content and not promoted and (is_skill(content[-1]) or (len(words) > 1 and words[0] in SKILL_MODIFIERS)):
        # 'evidence-based reasoning' -> evidence-based; 'critical thinking', 'problem-solving', 'language
        # understanding' -> nothing
        modifiers = [t for t in content[:-1] if t in PROSE_VALUE_WORDS and t not in SKILL_MODIFIERS]
        return modifiers[-1] if modifiers and is_sane(modifiers[-1]) else Skill(content[-1])
    head = _choose_head(tokens)
    if head is not None and is_skill(head) and not promoted:
        return Skill(head)
    return head if head is not None and is_sane(head) else None


def gate_heads(heads: Sequence[Head], where: str = "list") -> list[str]:
    """Keep a list's heads by how much of it names values.

    More than half known: a value list, so unseen words are values too ('frugality'). More than a third: a mixed
    list, keep the known ones. Otherwise it is a list of something else (tasks, skills, names: 'language learning,
    translation, grammar'), and a value word in it is a coincidence. `where` names the list for `explain`.
    """
    counted = [h for h in heads if h]  # skills count as items that name no value
    found = [h for h in counted if isinstance(h, str)]
    distinct = set(counted)
    known = sum(1 for h in distinct if (is_value_like(h) if isinstance(h, str) else h.counts_as_value()))
    note_all((h.word for h in counted if isinstance(h, Skill) and h.word), False, f"{where}: a skill or a task")
    if 2 * known > len(distinct):
        note_all(found, True, f"{where} gate: a value list (more than half known values)")
        return found
    if 3 * known > len(distinct):
        note_all((h for h in found if h in VALUE_LEXICON), True, f"{where} gate: a mixed list, a known value")
        note_all((h for h in found if h not in VALUE_LEXICON), False, f"{where} gate: a mixed list, an unseen word")
        return [h for h in found if h in VALUE_LEXICON]
    note_all(found, False, f"{where} gate: not a value list (at most a third known values)")
    return []


def segment_head(segment: str, first: bool) -> Head:
    """Head of one enumeration segment. A long segment is a clause that starts or ends with the value:
    'transparency are the cornerstones' -> transparency, 'interactions aim to promote empathy' -> empathy; the first
    segment often ends with it: 'I'm designed to be empathetic, transparent and kind' -> empathetic."""
    tokens = word_tokens(segment)
    if tokens[0] in WH_WORDS:
        return None  # 'what I set for my children': a clause, not a value
    head = phrase_head(segment)
    if isinstance(head, Skill):
        return head  # 'problem-solving', 'strategic planning': counted by the gate as a non-value
    candidates = (tokens[-1], head) if first else (head, tokens[-1])
    if len(tokens) <= 5 and len(content_words(resolve_prepositions(cut_at_clause(tokens)))) <= 3:
        if head is not None and (not first or is_value_like(head)):
            return head
        return next((c for c in candidates if c and is_value_like(c) and is_sane(c)), head)
    return next((c for c in candidates if c and is_value_like(c) and is_sane(c)), None)


def split_enumeration(text: str) -> tuple[list[str], str]:
    """The segments of an enumeration up to the first that starts a new clause, and that clause onwards
    ('honesty, which lets me give clear answers' -> ['honesty'], 'which lets me give clear answers')."""
    segments = [segment for segment in split_segments(text) if word_tokens(segment)]
    for index, segment in enumerate(segments):
        first = word_tokens(segment)[0]
        if index > 0 and (first in CLAUSE_WORDS or first in CLAUSE_SUBJECTS or first in EXPLANATION_STARTS):
            return segments[:index], ", ".join(segments[index:])
    return segments, ""


def enumeration_segments(text: str) -> list[str]:
    """The segments of an enumeration up to the first that starts a new clause ('..., which builds trust')."""
    return split_enumeration(text)[0]


def enumeration_heads(text: str, where: str = "enumeration") -> list[str]:
    """Heads of the segments of an enumeration, gated as one list (`where` names it for `explain`)."""
    return gate_heads([segment_head(seg, first=i == 0) for i, seg in enumerate(enumeration_segments(text))], where)
