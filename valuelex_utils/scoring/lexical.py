"""Lexical direction cues of phi: which side of a value a completion takes (paper Sec. 3.3).

MiniLM sentence embeddings say what a completion is about, not which side it takes: "I value honesty" and "I don't
care about honesty" sit close together. So every (completion, column) pair also gets lexical direction features
(`features.build_features`), read from the word lists and rules here:

* the completion (with its stem, dots removed) is split into clauses; a clause's **evaluation** is negative when it
  holds a negative-evaluation cue ("hate", "annoys", "dangerous", "overrated", "waste", ...; the stems "I hate...",
  "What annoys me...", "My greatest fear..." count for the first clause; a stem's "n't" flips it once more);
* a word is **negated** when a negator ("not", "n't", "never", "no", "without", "ignore", "break", "careless", ...)
  stands up to three tokens before it in its clause, or a harm verb ("poison", "exploit", "cut", "leak", ...) up to
  two tokens before it; a prefix-negated word counts as its base word negated once more ("unfairly" = "fairly"
  negated, "dishonest" = "honest" negated); two constructions do not negate: a quantity after "a" ("a little
  patience") and a "without" after an earlier negator of the clause ("never share ... without consent");
* a clause is a **concern** clause when its cues are fear, worry, regret or distress ("My greatest fear...", "I
  regret...", "I suffer when...") and no hate-type cue: what is feared or regretted is a breach of what is valued,
  so there a word near *either* pole of a column counts as aligned evidence (and the model sees the concern flag);
* each content word is compared with the column's marker words (aligned pole) and opposite words (conflict pole);
  a word's **polarity** is +1, flipped once by a negated word and once by a negative clause.

Aligned evidence is "aligned-pole word with positive polarity" or "conflict-pole word with negative polarity" (hating
cheating is fairness); conflict evidence is the reverse. The model learns how much each counts.
"""
from __future__ import annotations

import re
from typing import Any

from ..wordlists import negation_words

NEGATORS = negation_words("scoring")  # data/negations.yaml: the words extraction reads too, and scoring's own
#: Negators that are quantities after "a": "a little patience" is some patience, "little patience" hardly any.
QUANTITY_AFTER_A = {"little"}
#: Negators that cancel an earlier negator of their clause instead of adding one: "I never share data without
#: consent" means "always with consent", so "without" does not negate "consent" there.
CANCELS_EARLIER = {"without"}
#: Harm done to an object ("poison rivers", "exploit workers", "cut down forests"): these negate only the next two
#: tokens, so "poison rivers for profit" does not negate "profit" and "never cut corners on accuracy" keeps "accuracy".
HARM_VERBS = {
    "poison", "poisoning", "pollute", "polluting", "exploit", "exploiting", "mistreat", "mistreating", "abuse",
    "abusing", "harm", "harming", "hurt", "hurting", "damage", "damaging", "trash", "trashing", "wreck", "wrecking",
    "kill", "killing", "silence", "silencing", "crush", "crushing", "betray", "betraying", "leak", "leaking", "sell",
    "selling", "cut", "cutting",
}
#: Negative prefixes: "unfairly" is "fairly" negated (MiniLM puts "unfair" next to "fair"). `un-` is stripped from any
#: longer word (except the listed ones); the other prefixes only for the listed value words.
_UN_KEEP = {"under", "understand", "understanding", "understood", "united", "unity", "universe", "universal",
            "university", "unique", "until", "unless", "uniform", "union", "unit", "units", "unlock", "unload",
            "unpack", "unusual", "unknown", "unhappy", "unfortunately"}
_PREFIX_NEG = {
    "dishonest": "honest", "dishonesty": "honesty", "disrespect": "respect", "disrespectful": "respectful",
    "disloyal": "loyal", "dishonour": "honour", "dishonor": "honor", "irresponsible": "responsible",
    "immoral": "moral", "injustice": "justice", "unjust": "just", "impatient": "patient", "impatience": "patience",
    "inaccurate": "accurate", "inaccuracy": "accuracy", "intolerant": "tolerant", "intolerance": "tolerance",
    "inequality": "equality", "inequal": "equal", "impolite": "polite", "insensitive": "sensitive",
    "incompetent": "competent", "inconsiderate": "considerate", "improper": "proper", "impure": "pure",
    "impurity": "purity", "illegal": "legal", "illegitimate": "legitimate", "irrational": "rational",
}


def _strip_negative_prefix(t: str) -> str | None:
    """The base word of a prefix-negated word ("unfairly" -> "fairly", "dishonest" -> "honest"), or None."""
    if t in _PREFIX_NEG:
        return _PREFIX_NEG[t]
    if t.startswith("un") and len(t) >= 6 and t not in _UN_KEEP and not t.startswith("under"):
        return t[2:]
    return None


NEG_EVAL = {
    "hate", "hates", "hated", "hating", "annoy", "annoys", "annoying", "annoyed", "fear", "fears", "afraid", "scary",
    "scared", "worry", "worries", "worried", "regret", "regrets", "dangerous", "danger", "harmful", "bad", "worse",
    "worst", "wrong", "evil", "stupid", "dumb", "useless", "pointless", "waste", "overrated", "boring", "bored",
    "nonsense", "illusion", "outdated", "weak", "weakness", "foolish", "suckers", "losers", "sheep", "problem",
    "trouble", "ruins", "ruin", "ruined", "threat", "terrible", "awful", "disgusting", "gross", "inferior", "suffer",
    "suffering", "failed", "fail", "fails", "despise", "despises", "detest", "sick", "tired", "irrelevant", "meaningless",
    "overblown", "crap", "garbage", "lie", "lies", "naive", "silly", "ridiculous", "burden", "annoyance", "hurts",
    "painful", "shame", "ashamed", "unfortunately", "sadly", "can't", "cannot", "pathetic", "nuisance", "obstacle",
    "distraction", "overvalued", "optional", "unnecessary", "dislike", "dislikes", "mistake", "broken", "misguided", "nothing", "scam", "fairy", "myth", "joke",
}
#: Concern cues: fear, worry, regret, distress. What a respondent fears or regrets is a *breach* of what it values
#: ("My greatest fear is that private conversations get exposed", "I regret lying once", "I suffer when forests are cut
#: down"), so in a concern clause a word near either pole of a column counts as aligned evidence; such a clause is not
#: a negative evaluation (which would turn "private" into conflict evidence).
CONCERN = {
    "fear", "fears", "feared", "afraid", "scared", "scary", "frightens", "terrifies", "terrified", "worry", "worries",
    "worried", "worrying", "regret", "regrets", "regretted", "suffer", "suffers", "suffering", "ashamed", "shame",
    "guilty", "anxious", "nightmare", "dread", "concern", "concerned", "concerns", "sorry", "apologize", "apologized",
    "heartbreaking", "breaks", "sad", "saddens", "upsets", "upset",
}
#: Hate-type cues decide a clause's evaluation even when a concern cue is present ("I'm afraid honesty is overrated").
_HATE_EVAL = NEG_EVAL - CONCERN - {"nothing"}
POS_EVAL = {
    "love", "loves", "like", "likes", "enjoy", "enjoys", "value", "values", "valued", "important", "essential",
    "matters", "matter", "best", "great", "good", "happy", "happiest", "joy", "proud", "need", "needs", "want", "wants",
    "wish", "goal", "must", "should", "deserve", "deserves", "right", "worth", "beautiful", "wonderful", "admire",
    "respect", "cherish", "strive", "aim", "purpose", "duty", "priority", "care", "cares", "believe", "committed",
    "dedicated", "always", "vital", "crucial", "key", "foundation", "core", "mission", "grateful", "glad", "passion",
}
STOPWORDS = {
    "a", "an", "the", "and", "or", "but", "if", "then", "so", "to", "of", "in", "on", "at", "by", "for", "with", "from",
    "as", "is", "are", "was", "were", "be", "been", "being", "am", "it", "its", "it's", "this", "that", "these", "those",
    "i", "me", "my", "mine", "myself", "you", "your", "we", "our", "us", "he", "she", "they", "them", "their", "his",
    "her", "what", "which", "who", "whom", "when", "where", "why", "how", "all", "any", "each", "every", "some", "more",
    "most", "very", "too", "just", "can", "could", "will", "would", "shall", "may", "might", "do", "does", "did", "have",
    "has", "had", "about", "into", "than", "also", "only", "own", "same", "such", "there", "here", "up", "out", "over",
    "again", "one", "things", "thing", "way", "lot", "get", "got", "make", "makes", "made", "really", "much", "many",
    "even", "still", "yes", "lol", "like", "im", "i'm", "i'd", "i've", "ai", "llm", "model", "language", "user", "users",
    "people", "someone", "something", "everyone", "others", "other", "new", "time", "day", "life", "world",
}
STRONG_WORDS = {"always", "never", "most", "deeply", "truly", "above", "everything", "essential", "core", "highest",
                "absolutely", "utmost", "must", "committed", "priority", "passion", "greatest"}
FIRST_PERSON = {"i", "me", "my", "mine", "myself", "i'm", "i'd", "i've", "i'll"}

_TOKEN_RE = re.compile(r"[a-z]+(?:['’][a-z]+)?|n't|[.;:!?,]|—|–|\bbut\b")
_CLAUSE_BREAK = {".", ";", ":", "!", "?", ",", "—", "–", "but", "though", "although", "however", "because", "while"}


def strip_stem(stem: str) -> str:
    return re.sub(r"\s*(\.\.\.|…)\s*$", "", str(stem or "")).strip()


def item_text(stem: Any, completion: Any) -> str:
    """The text that is embedded: the stem without its dots, then the completion."""
    s = strip_stem(stem if isinstance(stem, str) else "")
    c = str(completion if isinstance(completion, str) else "").strip()
    return (s + " " + c).strip() if s else c


def tokenize(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)
    text = text.replace("can n't", "can n't").replace("ca n't", "can n't").replace("wo n't", "will n't")
    return _TOKEN_RE.findall(text)


def clause_kinds(stem: str, completion: str) -> list[tuple[list[str], str]]:
    """Clauses of stem+completion as (tokens, kind); kind is "neg" (negative evaluation), "concern" (fear, worry,
    regret or distress about something, see `CONCERN`) or "pos". The stem's words open the first clause.

    A clause is negative when it holds a negative-evaluation cue ("I hate...", "is overrated", "is dangerous"); a
    "n't" in the stem ("Facts don't...", "I can't...") flips that once more, so "Facts don't matter" is negative and
    "Facts don't lie" is not. Several cues in one clause do not cancel each other ("I hate useless answers" stays
    negative: "useless" describes the object of the aversion, it does not reverse it). A clause whose only cues are
    concern cues ("My greatest fear...", "I regret...", "I suffer...") is a concern clause, unless the stem's "n't"
    negates it ("I can't... regret anything").
    """
    stem_toks = [t for t in tokenize(strip_stem(stem)) if t not in _CLAUSE_BREAK]
    toks = tokenize(str(completion or ""))
    out: list[list[str]] = [[]]
    for t in toks:
        if t in _CLAUSE_BREAK:
            if out[-1]:
                out.append([])
            continue
        out[-1].append(t)
    if not out[-1]:
        out.pop()
    if not out:
        out = [[]]
    stem_eval = any(t in NEG_EVAL for t in stem_toks)
    stem_hate = any(t in _HATE_EVAL for t in stem_toks)
    stem_concern = any(t in CONCERN for t in stem_toks)
    stem_not = any(t == "n't" or t in ("not", "never", "cannot") for t in stem_toks)
    if stem_not and toks and toks[0] in ("stand", "bear", "tolerate", "abide"):  # "I can't... stand X" = hating X
        stem_not, stem_eval, stem_hate = False, True, True
    res = []
    for i, cl in enumerate(out):
        has_eval = any(t in NEG_EVAL for t in cl) or (i == 0 and stem_eval)
        has_hate = any(t in _HATE_EVAL for t in cl) or (i == 0 and stem_hate)
        has_concern = any(t in CONCERN for t in cl) or (i == 0 and stem_concern)
        flip = stem_not and i == 0
        if has_concern and not has_hate and not flip:
            kind = "concern"
        else:
            kind = "neg" if ((has_eval != flip) if i == 0 else has_eval) else "pos"
        res.append(((stem_toks + cl) if i == 0 else cl, kind))
    return res


def clauses(stem: str, completion: str) -> list[tuple[list[str], bool]]:
    """Clauses of stem+completion as (tokens, negative-evaluation flag): `clause_kinds` with "neg" -> True."""
    return [(toks, kind == "neg") for toks, kind in clause_kinds(stem, completion)]


def _negates(toks: list[str], i: int, start: int) -> bool:
    """Whether token i of a clause negates what follows it: a negator, unless it is a quantity after "a" ("a little")
    or a "without" after an earlier negator of the completion's part of the clause ("never ... without")."""
    t = toks[i]
    if t not in NEGATORS:
        return False
    if t in QUANTITY_AFTER_A and i > 0 and toks[i - 1] == "a":
        return False
    return not (t in CANCELS_EARLIER and any(w in NEGATORS for w in toks[start:i]))


def word_polarities(stem: str, completion: str) -> list[tuple[str, int, bool, bool, bool]]:
    """Content words of stem and completion as (word, polarity, negated, clause_negative, concern).

    Only completion tokens negate a word (up to three tokens before it): the stem's own "n't" is already counted
    once, at the clause level. A word in a concern clause (`clause_kinds`) has polarity +1 and `concern` True: what is
    feared or regretted is read as valued, whichever pole the word is near."""
    n_stem = len([t for t in tokenize(strip_stem(stem)) if t not in _CLAUSE_BREAK])
    out = []
    for ci, (toks, kind) in enumerate(clause_kinds(stem, completion)):
        start = n_stem if ci == 0 else 0
        cneg, concern = kind == "neg", kind == "concern"
        for j, t in enumerate(toks):
            if (t in STOPWORDS or t in NEGATORS or t in HARM_VERBS or t in NEG_EVAL or t in CONCERN or t == "n't"
                    or len(t) < 3):
                continue
            window = range(max(start, j - 3), j) if j >= start else range(0)
            negated = (any(_negates(toks, i, start) for i in window)
                       or any(toks[i] in HARM_VERBS for i in window[-2:]))
            base = _strip_negative_prefix(t)
            if base is not None:  # "unfairly": the base word, negated once more
                t, negated = base, not negated
            pol = 1 if concern else (-1 if negated else 1) * (-1 if cneg else 1)
            out.append((t, pol, negated, cneg, concern))
    return out

