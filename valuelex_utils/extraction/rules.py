"""The data of the extraction rules, loaded once: word lists and patterns (`data/extraction_rules.yaml`, each list with
a comment saying why it exists), the negation words (`data/negations.yaml`, shared with scoring), the value lexicon
(`data/value_words.txt`) and the 15 elicitation prompts (`data/elicitation_prompts.yaml`, the one copy the elicitation
step also reads).

Why data: the rules are decisions about English words; keeping the words out of the code lets a reader see and change
a list without reading the functions that use it (tests/test_extraction.py measures what a change does on labelled
real answers)."""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ..wordlists import negation_words

__all__ = ["ELICITATION_PROMPTS", "NEVER_WORDS", "PROSE_VALUE_WORDS", "VALUE_LEXICON", "is_sane", "is_value_like",
           "is_value_word", "negation_words"]


def _data_text(name: str) -> str:
    return resources.files("valuelex_utils").joinpath(f"data/{name}").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _rules() -> dict[str, Any]:
    return yaml.safe_load(_data_text("extraction_rules.yaml"))


def _words(key: str) -> frozenset[str]:
    """A word list of the YAML (a space-separated block)."""
    return frozenset(_rules()["words"][key].split())


def _suffixes(key: str) -> tuple[str, ...]:
    """An ordered tuple of the YAML (`str.endswith` takes a tuple)."""
    return tuple(_rules()["suffixes"][key])


def _pattern(key: str) -> re.Pattern[str]:
    """A pattern of the YAML: its parts joined, compiled with its flags."""
    spec = _rules()["patterns"][key]
    flags = 0
    for flag in spec.get("flags", []):
        flags |= re.RegexFlag[flag]
    return re.compile("".join(spec["parts"]), flags)


def _elicitation_prompts() -> tuple[str, ...]:
    """The 15 prompts of appendix A.1 in id order; an answer that repeats one gives no descriptor."""
    entries = yaml.safe_load(_data_text("elicitation_prompts.yaml"))
    return tuple(entry["prompt"] for entry in sorted(entries, key=lambda entry: int(entry["id"])))


@lru_cache(maxsize=1)
def _load_lexicon() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Read the shipped word list: (words valid anywhere, words valid only inside lists, words never descriptors)."""
    sections: dict[str, set[str]] = {"anywhere": set(), "lists": set(), "never": set()}
    current = "anywhere"
    for raw in _data_text("value_words.txt").splitlines():
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        sections[current].add(line)
    never = frozenset(sections["never"])
    return (frozenset(sections["anywhere"] - never), frozenset(sections["lists"] - sections["anywhere"] - never),
            never)


ELICITATION_PROMPTS: tuple[str, ...] = _elicitation_prompts()

PROSE_VALUE_WORDS: frozenset[str] = _load_lexicon()[0]
"""Value words that may be taken from free prose: they name a value wherever they appear."""

VALUE_LEXICON: frozenset[str] = PROSE_VALUE_WORDS | _load_lexicon()[1]
"""All known value words (plus words such as 'family' or 'work' that are values only inside a list)."""

NEVER_WORDS: frozenset[str] = _load_lexicon()[2]
"""Words that are never descriptors even in a list of values: what the model avoids ('harm', 'bias') and vague
evaluations ('positive', 'awesome')."""

NEGATIONS: frozenset[str] = negation_words("extraction")

# Word lists (why each exists: the comment above it in data/extraction_rules.yaml).
STOP_WORDS = _words("stop_words")
FUNCTION_WORDS = _words("function_words")
CARRIER_NOUNS = _words("carrier_nouns")
FRAME_WORDS = _words("frame_words")
PREPOSITIONS = _words("prepositions")
CLAUSE_WORDS = _words("clause_words")
VERB_LIKE = _words("verb_like")
CLAUSE_SUBJECTS = _words("clause_subjects")
VERB_CUES = _words("verb_cues")
HEADER_WORDS = _words("header_words")
VALUE_OBJECT_FRAMES = _words("value_object_frames")
SKILL_NOUNS = _words("skill_nouns")
PROMOTING = _words("promoting")
SKILL_MODIFIERS = _words("skill_modifiers")
CAPABILITY_MODIFIERS = _words("capability_modifiers")
EXPLANATION_STARTS = _words("explanation_starts")
WH_WORDS = _words("wh_words")
FIRST_PERSON = _words("first_person")
THIRD_PERSON = _words("third_person")
GROUP_QUANTIFIERS = _words("group_quantifiers")
GROUPS = _words("groups")
COORDINATORS = _words("coordinators")
FILLERS = _words("fillers")
COPULAS = _words("copulas")
VALUE_VERBS = _words("value_verbs")
SUBJECT_CUES = _words("subject_cues")
BEARER_NOUNS = _words("bearer_nouns")
SELF_NOUNS = _words("self_nouns")
NOUN_HOMONYMS = _words("noun_homonyms")
POSSESSIVES = _words("possessives")
DETERMINERS = _words("determiners")
QUANTITY_FRAMES = _words("quantity_frames")
HAVE = _words("have")
PROGRESSIVE_ONLY = _words("progressive_only")
GERUND_OBJECTS = _words("gerund_objects")
ANAPHORS = _words("anaphors")
STATEMENT_SUBJECTS = _words("statement_subjects")
DROP_CATEGORIES = _words("drop_categories")
DUTY_ADJECTIVES = _words("duty_adjectives")
DUTY_TASK_STARTS = _words("duty_task_starts")
FRAMES_ALSO_VALUES = _words("frames_also_values")
AMOUNT_VERBS = _words("amount_verbs")
SPEAKER_SUBJECTS = _words("speaker_subjects")
VERB_CONJUNCTIONS = _words("verb_conjunctions")
WINDOW_STOPS = _words("window_stops")
VALUE_SUFFIXES = _suffixes("value_suffixes")
SKILL_SUFFIXES = _suffixes("skill_suffixes")
NAME_KEYS = _suffixes("name_keys")
ABBREVIATIONS: dict[str, str] = dict(_rules()["abbreviations"])
FIRST_PERSON_VERBS: dict[str, str] = dict(_rules()["first_person_verbs"])

# Patterns (why each exists: the comment above it in data/extraction_rules.yaml).
WORD_RE = _pattern("word")
HASHTAG_RE = _pattern("hashtag")
NOT_ONLY_RE = _pattern("not_only")
SUMMARY_LABEL_RE = _pattern("summary_label")
SEPARATOR_RE = _pattern("separator")
REFUSAL_RE = _pattern("refusal")
SECOND_PERSON_RE = _pattern("second_person")
CLAUSE_SPLIT_RE = _pattern("clause_split")
FORWARD_TRIGGERS = _pattern("forward_triggers")
REVERSE_TRIGGER = _pattern("reverse_trigger")
OFFER_RE = _pattern("offer")
TECHNICAL_RE = _pattern("technical")
IDIOM_RE = _pattern("idiom")
SCAN_TOKEN_RE = _pattern("scan_token")
SELF_PREDICATE_RE = _pattern("self_predicate")
PERSON_WHO_RE = _pattern("person_who")
PROMOTING_TRIGGER = _pattern("promoting_trigger")
LOVED_OBJECT_RE = _pattern("loved_object")
ORDINAL_RE = _pattern("ordinal")
MARKER_RE = _pattern("marker")
NUMBER_RE = _pattern("number")
BOLD_HEAD_RE = _pattern("bold_head")
EXPLANATION_RE = _pattern("explanation")
INLINE_NUMBERS_RE = _pattern("inline_numbers")
FENCE_RE = _pattern("fence")
NEGATIVE_KEY_RE = _pattern("negative_key")
VALUE_KEY_RE = _pattern("value_key")
LABEL_SPLIT_RE = _pattern("label_split")
FIRST_PERSON_STATEMENT_RE = _pattern("first_person_statement")


def is_value_word(word: str) -> bool:
    """True if `word` (any case) is in the shipped value lexicon, so a rule can trust it without list context."""
    return word.strip().lower() in VALUE_LEXICON


def is_value_like(word: str) -> bool:
    """A known value word, or an abstract-quality noun by its suffix: evidence that a list is a list of values."""
    return word in VALUE_LEXICON or (
        word not in NEVER_WORDS and len(word) > 5
        and (word.endswith(VALUE_SUFFIXES) or (word.startswith("self-") and len(word) >= 8))
    )


def is_sane(word: str) -> bool:
    """Could this token be a descriptor at all: a real word, not filler, not a function word."""
    return (
        len(word) >= 3
        and word not in STOP_WORDS
        and word not in FUNCTION_WORDS
        and word not in NEVER_WORDS
        and not word.endswith("'t")
    )
