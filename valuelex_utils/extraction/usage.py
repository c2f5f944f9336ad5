"""Is a value word in prose used as a value? ('I am honest' yes, 'I love to help' no, 'a wise question' no.)

The decisions are named rules, tried in order (`EXCLUSIONS`, then `VALUE_USES`), so `explain` can say which one
decided."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .rules import (
    BEARER_NOUNS,
    CARRIER_NOUNS,
    COORDINATORS,
    COPULAS,
    DETERMINERS,
    FILLERS,
    FRAME_WORDS,
    GERUND_OBJECTS,
    HAVE,
    HEADER_WORDS,
    IDIOM_RE,
    NEGATIONS,
    NEVER_WORDS,
    NOUN_HOMONYMS,
    POSSESSIVES,
    PREPOSITIONS,
    PROGRESSIVE_ONLY,
    PROSE_VALUE_WORDS,
    QUANTITY_FRAMES,
    SCAN_TOKEN_RE,
    SELF_NOUNS,
    SUBJECT_CUES,
    TECHNICAL_RE,
    VALUE_VERBS,
    VERB_CUES,
    VERB_LIKE,
    is_value_like,
)


def is_filler(token: str) -> bool:
    """Determiners, intensifiers, adverbs and carrier nouns: skipped when looking for a value word's neighbours."""
    return token in FILLERS or (token.endswith("ly") and len(token) > 4) or token in CARRIER_NOUNS


def neighbour(tokens: Sequence[str], index: int, step: int, skip: Callable[[str], bool]) -> tuple[str, int]:
    """The nearest token from `index` in direction `step` that `skip` does not pass over ('' at the edge)."""
    index += step
    while 0 <= index < len(tokens) and skip(tokens[index]):
        index += step
    return (tokens[index], index) if 0 <= index < len(tokens) else ("", index)


def _is_coordinated(tokens: Sequence[str], index: int) -> bool:
    """'honest and transparent', 'respect, dignity': a value word listed beside another value word."""
    for step in (-1, 1):
        joint, at = neighbour(tokens, index, step, is_filler)
        if joint not in COORDINATORS:
            continue
        other, _ = neighbour(tokens, at - step, step, lambda t: t in COORDINATORS or is_filler(t))
        if other and (is_value_like(other) or other in NEVER_WORDS):  # 'accurate and effective services'
            return True
    return False


def _is_framed(tokens: Sequence[str], index: int) -> bool:
    """'the importance of kindness', 'a culture of trust', 'principles of fairness'."""
    preposition, at = neighbour(tokens, index, -1, is_filler)
    if preposition not in PREPOSITIONS:
        return False
    frame, at = neighbour(tokens, at, -1, is_filler)
    if preposition == "of" and frame in BEARER_NOUNS:
        return True  # 'a person of integrity', 'a man of great faith'
    if frame in QUANTITY_FRAMES:  # 'I care a lot about kindness': the verb before the amount decides
        verb, _ = neighbour(tokens, at, -1, is_filler)
        return verb in VALUE_VERBS or verb in {"care", "cares"}
    return frame in FRAME_WORDS or frame in HEADER_WORDS


def used_as_value(tokens: Sequence[str], index: int) -> bool:
    """Is a value word in prose used as a value: listed with others, predicated ('is helpful', 'be fair'), the object
    of a value verb ('promote empathy', 'with respect'), the subject of a value statement ('trust is the foundation'),
    a quality of the answers ('thoughtful answers') or framed ('the importance of kindness')? Attributes of other
    things ('a wise question', 'a comprehensive understanding of the language') are not."""
    before, at = neighbour(tokens, index, -1, is_filler)
    after, _ = neighbour(tokens, index, 1, lambda t: t in FILLERS)
    return (
        before in COPULAS
        or (_is_had_by_speaker(tokens, before, at) and (after in PREPOSITIONS or after in COORDINATORS or not after))
        or before in VALUE_VERBS
        or after in SUBJECT_CUES
        or after in CARRIER_NOUNS
        or after in SELF_NOUNS
        or _is_coordinated(tokens, index)
        or _is_framed(tokens, index)
    )


def _is_had_by_speaker(tokens: Sequence[str], before: str, at: int) -> bool:
    """'I have a deep respect for others', 'we have great compassion': a quality the speaker says it has (the caller
    checks that the word is not a modifier: 'we have trust issues')."""
    if before not in HAVE:
        return False
    subject, _ = neighbour(tokens, at, -1, is_filler)
    return subject in {"i", "we"}


def _is_progressive_verb(tokens: Sequence[str], index: int) -> bool:
    before, _ = neighbour(tokens, index, -1, is_filler)
    return tokens[index] in PROGRESSIVE_ONLY and before in COPULAS


def _is_job_duty(tokens: Sequence[str], index: int) -> bool:
    """'I am responsible for overseeing the team', 'responsible for the security of the data': a job's duties, not
    the value of responsibility ('responsible for my actions' still counts)."""
    follow = tokens[index + 1:index + 3]
    return (tokens[index] == "responsible" and len(follow) == 2 and follow[0] == "for"
            and (follow[1].endswith("ing") or follow[1] in {"the", "a", "an"}))


def is_excluded_use(tokens: Sequence[str], index: int) -> bool:
    """A verb ('I love', 'to respect'), a negated word, a frame ('commitment to'), 'kind of'."""
    token = tokens[index]
    if _is_job_duty(tokens, index) or _is_progressive_verb(tokens, index):
        return True
    window = tokens[max(0, index - 3):index]
    stops = [i for i, t in enumerate(window) if t in {",", ";"}]
    window = window[stops[-1] + 1:] if stops else window  # 'what I don't know; respect for you': not negated
    before = [t for t in window if t not in COORDINATORS]
    after = tokens[index + 1] if index + 1 < len(tokens) else ""
    return (
        (token in VERB_LIKE and bool(before) and before[-1] in VERB_CUES)
        or _is_chained_verb(tokens, index)
        or (token in FRAME_WORDS and after in PREPOSITIONS
            and (token not in {"kind", "understanding"} or after == "of"))
        or (token == "kind" and after == "of")
        or (token.endswith("ing") and (after in DETERMINERS or after in GERUND_OBJECTS))
        or (after == "of" and index + 2 < len(tokens) and tokens[index + 2].endswith("ing"))  # 'capable of offering'
        or _is_coordinated_verb(tokens, index)
        or (token in NOUN_HOMONYMS and any(t in POSSESSIVES for t in tokens[max(0, index - 2):index]))
        or any(t in NEGATIONS or t.endswith("n't") for t in before)
    )


def _is_coordinated_verb(tokens: Sequence[str], index: int) -> bool:
    """'creating and understanding good and bad', 'understanding and generating language': a value word in -ing
    coordinated with a plain verb in -ing is a verb too."""
    if not tokens[index].endswith("ing"):
        return False
    for step in (-1, 1):
        at = index + step
        if 0 <= at < len(tokens) and tokens[at] in {"and", "or"}:
            other = tokens[at + step] if 0 <= at + step < len(tokens) else ""
            if other.endswith("ing") and len(other) > 4 and not is_value_like(other):
                return True
    return False


def _is_chained_verb(tokens: Sequence[str], index: int) -> bool:
    """'to support and support', 'to respect and care for': a verb coordinated with a verb use is a verb too."""
    return (
        tokens[index] in VERB_LIKE and index >= 2 and tokens[index - 1] in {"and", "or", ","}
        and tokens[index - 2] in VERB_LIKE and is_excluded_use(tokens, index - 2)
    )


def scan_prose(clause: str) -> list[str]:
    """Known value words used as values in a prose clause (see `used_as_value`), in order."""
    text = TECHNICAL_RE.sub(" ", IDIOM_RE.sub(" ", clause)).lower().replace("\u2019", "'")
    tokens = [re.sub(r"'s$", "", t) for t in SCAN_TOKEN_RE.findall(text)]
    return [
        token for index, token in enumerate(tokens)
        if token in PROSE_VALUE_WORDS and not is_excluded_use(tokens, index) and used_as_value(tokens, index)
    ]
