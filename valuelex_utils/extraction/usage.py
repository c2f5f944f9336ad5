"""Is a value word in prose used as a value? ('I am honest' yes, 'I love to help' no, 'a wise question' no.)

The decisions are named rules, tried in order (`EXCLUSIONS`, then `VALUE_USES`), so `explain` can say which one
decided."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .rules import (
    AMOUNT_VERBS,
    BEARER_NOUNS,
    CARRIER_NOUNS,
    COORDINATORS,
    COPULAS,
    DETERMINERS,
    DUTY_ADJECTIVES,
    DUTY_TASK_STARTS,
    FILLERS,
    FRAME_WORDS,
    FRAMES_ALSO_VALUES,
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
    SPEAKER_SUBJECTS,
    SUBJECT_CUES,
    TECHNICAL_RE,
    VALUE_VERBS,
    VERB_CONJUNCTIONS,
    VERB_CUES,
    VERB_LIKE,
    WINDOW_STOPS,
    is_value_like,
)
from .trace import note, recording_active


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
        return verb in VALUE_VERBS or verb in AMOUNT_VERBS
    return frame in FRAME_WORDS or frame in HEADER_WORDS


@dataclass(frozen=True)
class _Use:
    """A value word of a prose clause in its context: the tokens, its index, and its nearest neighbours."""

    tokens: Sequence[str]
    index: int

    @property
    def token(self) -> str:
        return self.tokens[self.index]

    @property
    def before(self) -> tuple[str, int]:
        """The nearest word before it that is no filler, and its index."""
        return neighbour(self.tokens, self.index, -1, is_filler)

    @property
    def after(self) -> str:
        """The nearest word after it that is no determiner or intensifier."""
        return neighbour(self.tokens, self.index, 1, lambda t: t in FILLERS)[0]

    @property
    def next(self) -> str:
        """The very next token ('' at the end)."""
        return self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else ""

    @property
    def cue_window(self) -> list[str]:
        """Up to three tokens before it, within its clause ('what I don't know; respect for you': not negated), no
        coordinators."""
        window = self.tokens[max(0, self.index - 3):self.index]
        stops = [i for i, t in enumerate(window) if t in WINDOW_STOPS]
        window = window[stops[-1] + 1:] if stops else window
        return [t for t in window if t not in COORDINATORS]


Rule = tuple[str, Callable[[_Use], bool]]

VALUE_USES: tuple[Rule, ...] = (
    ("predicated ('is helpful', 'be fair')", lambda u: u.before[0] in COPULAS),
    ("had by the speaker ('I have a deep respect for')",
     lambda u: _is_had_by_speaker(u.tokens, *u.before) and (u.after in PREPOSITIONS or u.after in COORDINATORS
                                                             or not u.after)),
    ("object of a value verb ('promote empathy', 'with respect')", lambda u: u.before[0] in VALUE_VERBS),
    ("subject of a value statement ('trust is the foundation')", lambda u: u.after in SUBJECT_CUES),
    ("quality of the answers ('thoughtful answers')", lambda u: u.after in CARRIER_NOUNS),
    ("quality of the speaker ('a curious AI')", lambda u: u.after in SELF_NOUNS),
    ("listed with other values ('honest and transparent')", lambda u: _is_coordinated(u.tokens, u.index)),
    ("framed ('the importance of kindness')", lambda u: _is_framed(u.tokens, u.index)),
)
"""How a value word in prose is used as a value, tried in order. Attributes of other things ('a wise question', 'a
comprehensive understanding of the language') match none."""


def value_use(tokens: Sequence[str], index: int) -> str | None:
    """The name of the first `VALUE_USES` rule that the word at `index` meets, or None."""
    use = _Use(tokens, index)
    return next((name for name, test in VALUE_USES if test(use)), None)


def used_as_value(tokens: Sequence[str], index: int) -> bool:
    """Is a value word in prose used as a value (see `VALUE_USES`)?"""
    return value_use(tokens, index) is not None


def _is_had_by_speaker(tokens: Sequence[str], before: str, at: int) -> bool:
    """'I have a deep respect for others', 'we have great compassion': a quality the speaker says it has (the caller
    checks that the word is not a modifier: 'we have trust issues')."""
    if before not in HAVE:
        return False
    subject, _ = neighbour(tokens, at, -1, is_filler)
    return subject in SPEAKER_SUBJECTS


def _is_job_duty(use: _Use) -> bool:
    """'I am responsible for overseeing the team', 'responsible for the security of the data': a job's duties, not
    the value of responsibility ('responsible for my actions' still counts)."""
    follow = use.tokens[use.index + 1:use.index + 3]
    return (use.token in DUTY_ADJECTIVES and len(follow) == 2 and follow[0] == "for"
            and (follow[1].endswith("ing") or follow[1] in DUTY_TASK_STARTS))


def _is_coordinated_verb(use: _Use) -> bool:
    """'creating and understanding good and bad', 'understanding and generating language': a value word in -ing
    coordinated with a plain verb in -ing is a verb too."""
    tokens, index = use.tokens, use.index
    if not tokens[index].endswith("ing"):
        return False
    for step in (-1, 1):
        at = index + step
        if 0 <= at < len(tokens) and tokens[at] in VERB_CONJUNCTIONS:
            other = tokens[at + step] if 0 <= at + step < len(tokens) else ""
            if other.endswith("ing") and len(other) > 4 and not is_value_like(other):
                return True
    return False


def _is_chained_verb(use: _Use) -> bool:
    """'to support and support', 'to respect and care for': a verb coordinated with a verb use is a verb too."""
    tokens, index = use.tokens, use.index
    return (
        tokens[index] in VERB_LIKE and index >= 2 and (tokens[index - 1] in VERB_CONJUNCTIONS or tokens[index - 1] == ",")
        and tokens[index - 2] in VERB_LIKE and is_excluded_use(tokens, index - 2)
    )


EXCLUSIONS: tuple[Rule, ...] = (
    ("a job's duty ('responsible for overseeing')", _is_job_duty),
    ("a verb in progress ('I am always learning')",
     lambda u: u.token in PROGRESSIVE_ONLY and u.before[0] in COPULAS),
    ("a verb after a pronoun, a modal or 'to' ('I love', 'to respect')",
     lambda u: u.token in VERB_LIKE and bool(u.cue_window) and u.cue_window[-1] in VERB_CUES),
    ("a verb chained to a verb ('to respect and care for')", _is_chained_verb),
    ("a frame ('commitment to')",
     lambda u: u.token in FRAME_WORDS and u.next in PREPOSITIONS and (u.token not in FRAMES_ALSO_VALUES
                                                                      or u.next == "of")),
    ("'kind of'", lambda u: u.token == "kind" and u.next == "of"),
    ("a verb with its object ('understanding the question')",
     lambda u: u.token.endswith("ing") and (u.next in DETERMINERS or u.next in GERUND_OBJECTS)),
    ("'capable of doing'",
     lambda u: u.next == "of" and u.index + 2 < len(u.tokens) and u.tokens[u.index + 2].endswith("ing")),
    ("a verb coordinated with a verb in -ing ('creating and understanding')", _is_coordinated_verb),
    ("a noun after a possessive ('my objective')",
     lambda u: u.token in NOUN_HOMONYMS and any(t in POSSESSIVES for t in u.tokens[max(0, u.index - 2):u.index])),
    ("negated ('not fair', 'without bias')", lambda u: any(t in NEGATIONS or t.endswith("n't") for t in u.cue_window)),
)
"""Uses of a value word in prose that are not values, tried in order: verbs, frames, negations, nouns."""


def exclusion(tokens: Sequence[str], index: int) -> str | None:
    """The name of the first `EXCLUSIONS` rule that the word at `index` meets, or None."""
    use = _Use(tokens, index)
    return next((name for name, test in EXCLUSIONS if test(use)), None)


def is_excluded_use(tokens: Sequence[str], index: int) -> bool:
    """A verb ('I love', 'to respect'), a negated word, a frame ('commitment to'), 'kind of' (see `EXCLUSIONS`)."""
    return exclusion(tokens, index) is not None


def scan_tokens(text: str) -> list[str]:
    """Tokens of a prose scan: lower-case words (possessive 's dropped) and the punctuation that coordinates them."""
    return [re.sub(r"'s$", "", t) for t in SCAN_TOKEN_RE.findall(text.lower().replace("\u2019", "'"))]


def scan_prose(clause: str) -> list[str]:
    """Known value words used as values in a prose clause (see `used_as_value`), in order."""
    tokens = scan_tokens(TECHNICAL_RE.sub(" ", IDIOM_RE.sub(" ", clause)))
    found: list[str] = []
    for index, token in enumerate(tokens):
        if token not in PROSE_VALUE_WORDS:
            continue
        excluded = exclusion(tokens, index)
        use = None if excluded else value_use(tokens, index)
        if use is not None:
            found.append(token)
        if recording_active():
            note(token, use is not None, f"prose: {use}" if use else f"prose: {excluded or 'not used as a value'}")
    return found
