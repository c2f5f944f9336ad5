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

`explain(text)` names, for one answer, the rule behind every kept or dropped candidate word.

Where the rules live: `rules` (the data files: word lists and patterns in data/extraction_rules.yaml, negations,
the value lexicon, the prompts), `text` (normalisation, tokens), `heads` (phrase -> head word, enumerations, the list
gate, `Skill`), `usage` (is a word in prose used as a value), `prose` (triggers, refusals, echoes, clauses), `lines`
(items, headers, prose lines, nesting), `structured` (JSON/YAML answers), `descriptors` (`extract_descriptors`),
`explain`, `judge` (the LLM judgment), `files` (the `valuelex extract` contract).

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

from .descriptors import extract_descriptors
from .explain import explain
from .files import extract_file, read_answers
from .heads import head_word
from .judge import (
    FILTER_BATCH,
    LLM_FILTER_SYSTEM,
    LLM_FILTER_USER,
    Messages,
    filter_decoding,
    llm_filter,
    llm_filter_messages,
    llm_judgment,
)
from .rules import ELICITATION_PROMPTS, PROSE_VALUE_WORDS, VALUE_LEXICON, is_value_word
from .trace import Decision

__all__ = [
    "ELICITATION_PROMPTS",
    "FILTER_BATCH",
    "LLM_FILTER_SYSTEM",
    "LLM_FILTER_USER",
    "PROSE_VALUE_WORDS",
    "VALUE_LEXICON",
    "Decision",
    "Messages",
    "explain",
    "extract_descriptors",
    "extract_file",
    "filter_decoding",
    "head_word",
    "is_value_word",
    "llm_filter",
    "llm_filter_messages",
    "llm_judgment",
    "read_answers",
]
