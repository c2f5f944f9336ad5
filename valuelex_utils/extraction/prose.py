"""Prose: refusals, echoes of the prompt, value triggers ('I value X', 'guided by X', 'X is important to me'),
bare enumerations, the speaker's own qualities, and the lexicon scan; when the answer is a list, its prose only
explains the items and gives nothing but bare enumerations and the speaker's own statements."""
from __future__ import annotations

import re
from functools import lru_cache

from .heads import (
    Skill,
    content_words,
    cut_at_clause,
    cut_at_prepositions,
    enumeration_heads,
    enumeration_segments,
    gate_heads,
    head_word,
    segment_head,
    split_enumeration,
)
from .rules import (
    ANAPHORS,
    CLAUSE_SPLIT_RE,
    CLAUSE_SUBJECTS,
    ELICITATION_PROMPTS,
    FILLERS,
    FIRST_PERSON,
    FIRST_PERSON_VERBS,
    FORWARD_TRIGGERS,
    FRAME_WORDS,
    GROUP_QUANTIFIERS,
    GROUPS,
    LOVED_OBJECT_RE,
    OFFER_RE,
    ORDINAL_RE,
    PERSON_WHO_RE,
    PROMOTING_TRIGGER,
    PROSE_VALUE_WORDS,
    REFUSAL_RE,
    REVERSE_TRIGGER,
    SECOND_PERSON_RE,
    SELF_PREDICATE_RE,
    STATEMENT_SUBJECTS,
    THIRD_PERSON,
    VALUE_LEXICON,
    VERB_LIKE,
    is_value_like,
)
from .text import word_tokens
from .trace import note, note_all, recording_active
from .usage import is_excluded_use, scan_prose, scan_tokens


def _is_about_someone_else(clause: str) -> bool:
    """A clause about a third person or group and not the speaker ('He was a man of great thrift', 'Many philosophers
    held courage to be a virtue', 'Humans often prize ambition'): the values of others are not the respondent's
    (labelling guide, sec. 5)."""
    tokens = word_tokens(clause)
    if set(tokens) & FIRST_PERSON:
        return False
    subject = [t for t in tokens[:3] if t not in FILLERS and t not in GROUP_QUANTIFIERS]
    return bool(set(tokens) & THIRD_PERSON) or (bool(subject) and subject[0] in GROUPS)


def _is_refusal(clause: str) -> bool:
    """'As an AI, I don't have personal values', 'I'm sorry, I can't': states no value."""
    return bool(REFUSAL_RE.search(clause))


@lru_cache(maxsize=1)
def _prompt_token_sets() -> tuple[frozenset[str], ...]:
    return tuple(frozenset(content_words(word_tokens(p))) for p in ELICITATION_PROMPTS)


def _is_echo(clause: str) -> bool:
    """The answer repeats (most of) an elicitation prompt and adds no value word of its own, or speaks about the
    asker's values ('Give me words that describe your set of values')."""
    if SECOND_PERSON_RE.search(clause):
        return True
    words = frozenset(content_words(word_tokens(clause)))
    if len(words) < 3:
        return False
    return any(
        len(words & prompt) / len(words | prompt) >= 0.5 and not (words - prompt) & PROSE_VALUE_WORDS
        for prompt in _prompt_token_sets()
    )


def _looks_like_enumeration(text: str) -> bool:
    """Segments that are nearly all short: 'family, faith, happiness, money' (the last may trail a clause:
    'honesty, integrity and transparency are the cornerstones of my answers').

    Two segments are also any sentence with one comma ('Without trust, nothing works', 'A wise question, my
    friend'), so a pair counts only when both are short and both end with a value word.
    """
    segments = enumeration_segments(text)
    if len(segments) < 2:
        return False
    semicolons = text.count(";") >= 2
    short = [_is_short_segment(seg, last=i == len(segments) - 1, explained=semicolons)
             for i, seg in enumerate(segments)]
    if len(segments) == 2:
        return all(short) and all(_ends_with_value(segment) for segment in segments)
    return 3 * sum(short) >= 2 * len(short)


def _ends_with_value(segment: str) -> bool:
    """'user privacy', 'honesty': the phrase ends with its value word (not 'a wise question')."""
    head, tokens = head_word(segment), word_tokens(segment)
    return head is not None and is_value_like(head) and head == tokens[-1]


def _is_short_segment(segment: str, last: bool, explained: bool = False) -> bool:
    """A list-like segment: up to three words (the last one may trail a clause); with `explained` (segments split at
    semicolons, a strong sign of a list), also a value word or two that a prepositional phrase explains ('humility
    about what I don't know', 'respect for the person I talk with')."""
    tokens = word_tokens(segment)
    if len(cut_at_clause(tokens) if last else tokens) <= 3:
        return True
    lead = cut_at_prepositions(tokens)
    return explained and 0 < len(lead) <= 2 and lead[-1] in VALUE_LEXICON and lead[-1] not in FRAME_WORDS


def _speaker_as_subject(clause: str) -> str:
    """'I am a person who believes in the power of love' -> 'I believe in the power of love'."""
    def plain(match: re.Match[str]) -> str:
        verb, *rest = match.group(2).split(None, 1)
        verb = FIRST_PERSON_VERBS.get(verb.lower(), verb[:-1])  # prioritizes -> prioritize
        return " ".join(["I", *filter(None, [match.group(1), verb, *rest])])
    return PERSON_WHO_RE.sub(plain, clause)


def _list_prose_descriptors(clause: str) -> list[str]:
    """Prose around a list explains or sums up its items: it gives only a bare enumeration or the speaker's own
    qualities ('In practice, I try to be clear, careful and kind'), and nothing when it speaks about the list."""
    tokens = word_tokens(clause)
    if tokens[0] in ANAPHORS:
        _drop_clause(clause, "list prose: speaks about the list ('These values ensure...')")
        return []
    if clause.startswith("In short: "):  # a summing-up (label normalised by `normalise`): the speaker's qualities
        summed = re.split(r"\s[-\u2013\u2014]\s|\u2014|[.;!]\s", clause[len("In short: "):])[0]
        if _looks_like_enumeration(summed):
            return enumeration_heads(summed)
    trigger = FORWARD_TRIGGERS.search(_speaker_as_subject(clause))
    if trigger and word_tokens(trigger.group(0))[0] in {"i", "we"}:
        # 'Beyond these, I care about fairness': the speaker's own statement of a value counts around a list too
        return _prose_words_only(_triggered_heads(_speaker_as_subject(clause))[0])
    predicate = SELF_PREDICATE_RE.search(clause)
    if predicate:
        segments = enumeration_segments(clause[predicate.end():])
        return _prose_words_only(gate_heads([segment_head(seg, first=False) for seg in segments],
                                            where="self-description enumeration"))
    if _looks_like_enumeration(clause):
        return enumeration_heads(clause)
    _drop_clause(clause, "list prose: only explains the items")
    return []


def _prose_words_only(heads: list[str]) -> list[str]:
    """Around a list, only words that name a value wherever they appear (`PROSE_VALUE_WORDS`)."""
    note_all((h for h in heads if h not in PROSE_VALUE_WORDS), False, "list prose: not a word valid in prose")
    return [h for h in heads if h in PROSE_VALUE_WORDS]


def _drop_clause(clause: str, rule: str) -> None:
    """Record that the value words of a clause were dropped by `rule` (only while `explain` records)."""
    if recording_active():
        note_all((t for t in scan_tokens(clause) if t in VALUE_LEXICON), False, rule)


def _triggered_heads(clause: str) -> tuple[list[str], str]:
    """The enumerations after each value trigger ('founded on a holistic and adaptive approach that incorporates the
    principles of sustainability and justice'), and the clause that follows the last one. In prose, only words that
    look like values count: an unseen word after a trigger is more often a topic ('diverse perspectives', 'tools')."""
    triggers = list(FORWARD_TRIGGERS.finditer(clause))
    found: list[str] = []
    rest = ""
    for index, trigger in enumerate(triggers):
        end = triggers[index + 1].start() if index + 1 < len(triggers) else len(clause)
        enumeration, rest = split_enumeration(clause[trigger.end():end])
        heads = [segment_head(seg, first=i == 0) for i, seg in enumerate(enumeration)]
        promoted = PROMOTING_TRIGGER.search(trigger.group(0)) is not None
        skills = {h: h.word for h in heads if promoted and isinstance(h, Skill) and h.word is not None}
        kept = set(gate_heads([h for h in heads if h not in skills], where="value-trigger enumeration"))
        note_all(skills.values(), True, "after a value trigger: a skill the speaker values ('I value critical thinking')")
        note_all((h for h in kept if not is_value_like(h)), False, "after a value trigger: unseen word in prose")
        found.extend(skills.get(h, h) for h in heads
                      if h in skills or (h in kept and is_value_like(h)))
    return found, rest


def _clause_descriptors(clause: str, prose_allowed: bool) -> list[str]:
    """Descriptors of one clause: a triggered enumeration, a bare enumeration, or (in prose answers) a lexicon scan."""
    if not word_tokens(clause):
        return []
    dropped_by = _silent_clause(clause)
    if dropped_by is not None:
        _drop_clause(clause, dropped_by)
        return []
    if not prose_allowed:
        return _list_prose_descriptors(clause)
    loved = [m.group(1).lower() for m in LOVED_OBJECT_RE.finditer(clause)]
    note_all(loved, True, "prose: a loved object ('I love my family')")
    return loved + [w for w in _prose_clause_descriptors(clause) if w not in loved]


def _silent_clause(clause: str) -> str | None:
    """The name of the rule by which a clause gives nothing, or None: a refusal, an echo of the prompt, a clause about
    someone else, an offer."""
    if _is_refusal(clause):
        return "clause: a refusal ('As an AI, I don't have values')"
    if _is_echo(clause):
        return "clause: an echo of the prompt"
    if _is_about_someone_else(clause):
        return "clause: about someone else ('Many philosophers prize courage')"
    if OFFER_RE.search(clause):
        return "clause: an offer ('I can explain how...')"
    return None


def _prose_clause_descriptors(clause: str) -> list[str]:
    clause = _speaker_as_subject(clause)
    reverse = REVERSE_TRIGGER.match(clause)
    if reverse:
        return (enumeration_heads(reverse.group("subject"), where="'X is important to me' subject")
                + scan_prose(clause[reverse.end():]))
    triggered, rest = _triggered_heads(clause)
    if triggered:
        # the words before the first trigger are prose too: 'As a helpful assistant, I value honesty' -> helpful
        before = clause[:FORWARD_TRIGGERS.search(clause).start()]
        return scan_prose(before) + triggered + scan_prose(rest)
    introduced = clause.split(": ", 1)[1] if ": " in clause else ""
    if introduced and _looks_like_enumeration(introduced):
        return _drop_verb_uses(introduced, enumeration_heads(introduced))
    if _looks_like_enumeration(clause):
        return _drop_verb_uses(clause, enumeration_heads(clause))
    return scan_prose(clause)


def _drop_verb_uses(clause: str, heads: list[str]) -> list[str]:
    """Heads of a bare enumeration in prose that the clause only uses as verbs ('designed to support and support')."""
    tokens = scan_tokens(clause)
    verbs = [h for h in heads if (h in VERB_LIKE or h.endswith("ing"))
             and all(is_excluded_use(tokens, i) for i, t in enumerate(tokens) if t == h)]
    note_all(verbs, False, "prose enumeration: used only as a verb ('to support and support')")
    return [h for h in heads if h not in verbs]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (questions are dropped: they ask, they do not state a value)."""
    parts = re.split(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\n+", text)
    return [p.strip() for p in parts if p.strip() and not p.strip().endswith("?")]


def _fragment_value(sentence: str) -> str | None:
    """A sentence that is only a value word or two, no verb: 'Integrity.', 'HONESTY. LOYALTY.', 'Always kindness.',
    also when counted off and explained: 'Third, intellectual honesty.', 'Second, magnanimity: answering kindly'."""
    ordinal = ORDINAL_RE.match(sentence)
    if ordinal:
        sentence = re.split(r":\s|\s[-\u2013\u2014]\s|\u2014", sentence[ordinal.end():], maxsplit=1)[0]
    tokens = word_tokens(sentence)
    if not 0 < len(tokens) <= 2 or tokens[0] in CLAUSE_SUBJECTS or tokens[0] in STATEMENT_SUBJECTS:
        return None
    head = head_word(sentence)
    if head is None or not (head in VALUE_LEXICON or (ordinal and is_value_like(head))):
        return None
    note(head, True, "prose: a value fragment ('Integrity.', 'Third, honesty.')")
    return head


def prose_descriptors(text: str, prose_allowed: bool) -> list[str]:
    """Descriptors of a prose line, clause by clause: 'As an AI I have no values, but I value X' keeps X."""
    found: list[str] = []
    for sentence in split_sentences(text):
        if prose_allowed and (head := _fragment_value(sentence)):
            found.append(head)
            continue
        for clause in CLAUSE_SPLIT_RE.split(sentence):
            found.extend(_clause_descriptors(clause, prose_allowed))
    return found


def after_enumeration(text: str, prose_allowed: bool) -> list[str]:
    """Sentences after a header's enumeration: prose, but nothing from those about the enumeration ('I think these
    principles let me be ethical and effective')."""
    found: list[str] = []
    for sentence in split_sentences(text):
        if set(word_tokens(sentence)[:3]) & ANAPHORS:
            _drop_clause(sentence, "after an enumeration: speaks about it ('these principles let me...')")
        else:
            found.extend(prose_descriptors(sentence, prose_allowed))
    return found
