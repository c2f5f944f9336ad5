"""Scoring phi(completion, value (sub)dimension) -> 0..6 (paper Sec. 3.3): 6 aligned, 3 neutral/unrelated, 0 conflict.

Two scorers behind one interface (`Scorer.score(df[id, stem, completion], system)` -> `id` + one column per dimension
and subdimension, in the system's YAML order; NaN = missing), registered by name in `SCORERS`:

* ``embedding`` (offline default, `EmbeddingScorer`): the column-agnostic model of `phi` — all-MiniLM-L6-v2
  embeddings of the completion (and of its best sentence) against each column's definition, markers and opposites,
  relative to the system's other columns, plus the lexical direction cues below; one model fitted on every shipped
  annotated set pooled, so it scores any value system (a run's own taxonomy.yaml included) with no per-column fitting.
  Its measured agreement with human labels is in `data/phi_validity.json` (`benchmarks/scorer_validity.py`).
* ``llm`` (`LLMScorer`): a judge model through LiteLLM, few-shot chain of thought (reasoning, then a JSON verdict
  `{"scores": {...}}`), one request per item, fixed few-shot examples; an unparseable verdict is retried with a
  different seed and then recorded as NaN; the judge id is recorded in column `judge` and every raw response goes to an
  injected store before it is parsed.

`score_file` implements the CLI contract `valuelex score IN.csv --system S [--scorer] [--judge] -o OUT.csv` and writes
`reliability.json` beside the output. `normalise` maps 0..6 to [0, 1] (s / 6).

Direction features. MiniLM sentence embeddings say what a completion is about, not which side it takes: "I value
honesty" and "I don't care about honesty" sit close together. So every (completion, column) pair also gets lexical
direction features:

* the completion (with its stem, dots removed) is split into clauses; a clause's **evaluation** is negative when it
  holds a negative-evaluation cue ("hate", "annoys", "dangerous", "overrated", "waste", ...; the stems "I hate...",
  "What annoys me...", "My greatest fear..." count for the first clause; a stem's "n't" flips it once more);
* a word is **negated** when a negator ("not", "n't", "never", "no", "without", "ignore", "break", "careless", ...)
  stands up to three tokens before it in its clause, or a harm verb ("poison", "exploit", "cut", "leak", ...) up to
  two tokens before it; a prefix-negated word counts as its base word negated once more ("unfairly" = "fairly"
  negated, "dishonest" = "honest" negated);
* a clause is a **concern** clause when its cues are fear, worry, regret or distress ("My greatest fear...", "I
  regret...", "I suffer when...") and no hate-type cue: what is feared or regretted is a breach of what is valued,
  so there a word near *either* pole of a column counts as aligned evidence (and the model sees the concern flag);
* each content word is compared with the column's marker words (aligned pole) and opposite words (conflict pole);
  a word's **polarity** is +1, flipped once by a negated word and once by a negative clause.

Aligned evidence is "aligned-pole word with positive polarity" or "conflict-pole word with negative polarity" (hating
cheating is fairness); conflict evidence is the reverse. The model learns how much each counts. Two repetition features (type/token ratio,
share of completion words that echo the stem) let it see tiny-model loops, which the rubric scores neutral.
"""
from __future__ import annotations

import os
import re
from typing import Any, Sequence

import numpy as np

from .systems import ValueSystem

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ENCODER_NAME = "all-MiniLM-L6-v2"

NEGATORS = {
    "not", "no", "never", "n't", "without", "nothing", "nobody", "none", "neither", "nor", "hardly", "barely",
    "cannot", "lack", "lacks", "lacking", "stop", "stopped", "stops", "refuse", "refuses", "refused", "avoid", "avoids",
    "avoiding", "ignore", "ignores", "ignoring", "ignored", "against", "instead", "less", "break", "breaking", "broke",
    "violate", "violating", "abandon", "abandoning", "skip", "skipping", "defy", "defying", "mock", "mocking",
    "undermine", "undermining", "destroy", "destroying", "tear", "anti", "zero", "neglect", "neglecting", "dismiss",
    "dismissing", "sacrificing", "drop", "reject", "rejecting", "rejects", "fake", "faking", "pretend", "pretending",
    "forget", "forgetting", "hide", "hiding", "lose", "losing", "lost", "evade", "evading", "bypass", "ditch",
    "careless", "carelessly", "indifferent", "sloppy", "lax", "dismissive", "unconcerned", "apathetic", "disregard",
    "little", "nor", "rarely", "seldom", "skipped", "tired", "sick", "bored", "screw", "quit", "quitting",
}
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
            window = toks[max(start, j - 3):j] if j >= start else []
            negated = any(w in NEGATORS for w in window) or any(w in HARM_VERBS for w in window[-2:])
            base = _strip_negative_prefix(t)
            if base is not None:  # "unfairly": the base word, negated once more
                t, negated = base, not negated
            pol = 1 if concern else (-1 if negated else 1) * (-1 if cneg else 1)
            out.append((t, pol, negated, cneg, concern))
    return out


# -- encoder -------------------------------------------------------------------------------------------------------
def get_encoder() -> Any:
    """all-MiniLM-L6-v2, offline, shared with the rest of the package (`valuelex_utils.embeddings`)."""
    from . import embeddings

    return embeddings.get_model()


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings (n, 384), cached by text (`valuelex_utils.embeddings.embed`)."""
    from . import embeddings

    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(embeddings.embed(texts, batch_size=batch_size), dtype=np.float32)


# -- column prototypes ---------------------------------------------------------------------------------------------
class Prototypes:
    """Embeddings of each column's definition, markers and opposites (a dimension also gets its children's)."""

    def __init__(self, system: ValueSystem) -> None:
        self.columns = system.columns()
        self.pos_words: list[list[str]] = []
        self.neg_words: list[list[str]] = []
        self.definitions: list[str] = []
        for c in self.columns:
            col = system.column(c)
            pos = [c.replace("-", " ")] + list(col.markers)
            neg = list(col.opposites)
            for ch in col.children:
                pos += system.markers(ch)
                neg += system.opposites(ch)
            self.pos_words.append(list(dict.fromkeys(w.lower() for w in pos)))
            self.neg_words.append(list(dict.fromkeys(w.lower() for w in neg)))
            self.definitions.append(f"{c}: {col.definition}" if col.definition else c)
        self.def_emb = embed(self.definitions)
        self.pos_emb = [embed(ws) for ws in self.pos_words]
        self.neg_emb = [embed(ws) if ws else np.zeros((0, 384), np.float32) for ws in self.neg_words]
        self.pos_centroid = _unit(np.vstack([e.mean(0) for e in self.pos_emb]))
        self.neg_centroid = _unit(
            np.vstack([e.mean(0) if len(e) else np.zeros(384, np.float32) for e in self.neg_emb])
        )
        # "I value X" / "I reject X" sentence templates: weak on their own (MiniLM and negation), kept as features
        self.affirm_emb = _unit(np.vstack([embed([f"I value {w}." for w in ws[:8]]).mean(0) for ws in self.pos_words]))


def _unit(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (m / n).astype(np.float32)


FEATURE_NAMES = [
    "s_def", "s_pos", "s_neg", "s_aff", "z_def", "z_pos", "z_neg",
    "w_pos_plus", "w_pos_minus", "w_neg_plus", "w_neg_minus", "dir_sum", "dir_max",
    "align", "conflict", "net", "net_x_rel",
    "clause_neg_any", "negated_any", "pos_eval", "first_person", "strong", "n_words", "s_any_max",
    "concern_any", "type_token_ratio", "stem_echo",
]


def build_features(stems: Sequence[str], completions: Sequence[str], protos: Prototypes,
                   sent: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per item: `sent` (n, 384) embeddings of stem + completion (or the caller's own embeddings of the items, which
    saves encoding them twice) and `words` (content words with polarity, for the lexicon); per (item, column): `X`
    (n, k, F) with FEATURE_NAMES."""
    texts = [item_text(s, c) for s, c in zip(stems, completions)]
    sent = embed(texts) if sent is None else sent
    n, k = len(texts), len(protos.columns)
    s_def = sent @ protos.def_emb.T
    s_pos = sent @ protos.pos_centroid.T
    s_neg = sent @ protos.neg_centroid.T
    s_aff = sent @ protos.affirm_emb.T

    def z(m: np.ndarray) -> np.ndarray:
        return (m - m.mean(1, keepdims=True)) / (m.std(1, keepdims=True) + 1e-6)

    # word-level evidence
    polar = [word_polarities(s, c) for s, c in zip(stems, completions)]
    vocab = sorted({w for p in polar for (w, *_r) in p})
    wemb = embed(vocab) if vocab else np.zeros((0, 384), np.float32)
    widx = {w: i for i, w in enumerate(vocab)}
    # max similarity of each vocab word to each column's aligned / conflict words
    w_pos = np.zeros((len(vocab), k), np.float32)
    w_neg = np.zeros((len(vocab), k), np.float32)
    for j in range(k):
        if len(vocab):
            w_pos[:, j] = (wemb @ protos.pos_emb[j].T).max(1)
            if len(protos.neg_emb[j]):
                w_neg[:, j] = (wemb @ protos.neg_emb[j].T).max(1)
    floor = 0.15  # below this a word is unrelated: MiniLM gives most word pairs 0.1-0.3
    X = np.zeros((n, k, len(FEATURE_NAMES)), np.float32)
    zd, zp, zn = z(s_def), z(s_pos), z(s_neg)
    for i, p in enumerate(polar):
        toks = [t for cl, _ in clauses(stems[i], completions[i]) for t in cl]
        kinds = [kd for _, kd in clause_kinds(stems[i], completions[i])]
        clause_neg_any = float("neg" in kinds)
        concern_any = float("concern" in kinds and "neg" not in kinds)  # a concern frame (see `_concern_frame`)
        negated_any = float(any(t in NEGATORS for t in toks))
        pos_eval = float(sum(t in POS_EVAL for t in toks) > 0)
        first_person = float(any(t in FIRST_PERSON for t in toks))
        strong = float(any(t in STRONG_WORDS for t in toks))
        n_words = np.log1p(len(toks))
        # loops and echoes of the stem ("freedom is freedom and freedom is...") are neutral, whatever their words
        ctoks = [t for t in tokenize(str(completions[i] or "")) if t.isalpha()]
        stem_set = set(tokenize(strip_stem(stems[i])))
        ttr = len(set(ctoks)) / max(len(ctoks), 1)
        stem_echo = sum(t in stem_set for t in ctoks) / max(len(ctoks), 1)
        if p:
            rows = np.array([widx[w] for (w, *_r) in p])
            pol = np.array([q for (_w, q, *_r) in p])
            conc = np.array([r[-1] for r in p], bool)
            wp = np.clip(w_pos[rows] - floor, 0, None)  # (m, k)
            wn = np.clip(w_neg[rows] - floor, 0, None)
            if conc.any():  # a feared / regretted word near either pole is aligned evidence
                wp[conc] = np.maximum(wp[conc], wn[conc])
                wn[conc] = 0.0
            plus, minus = pol > 0, pol < 0
            w_pos_plus = wp[plus].max(0) if plus.any() else np.zeros(k)
            w_pos_minus = wp[minus].max(0) if minus.any() else np.zeros(k)
            w_neg_plus = wn[plus].max(0) if plus.any() else np.zeros(k)
            w_neg_minus = wn[minus].max(0) if minus.any() else np.zeros(k)
            # signed word evidence: which pole a word is nearer to, times its relevance, times its polarity
            d = pol[:, None] * (wp - wn) * np.maximum(wp, wn)  # (m, k)
            dir_sum = d.sum(0)
            dir_max = d[np.abs(d).argmax(0), np.arange(k)]
        else:
            w_pos_plus = w_pos_minus = w_neg_plus = w_neg_minus = dir_sum = dir_max = np.zeros(k)
        align = np.maximum(w_pos_plus, w_neg_minus)
        conflict = np.maximum(w_pos_minus, w_neg_plus)
        net = align - conflict
        rel = np.clip(zd[i], 0, None)
        s_any_max = float(s_def[i].max())
        X[i] = np.column_stack([
            s_def[i], s_pos[i], s_neg[i], s_aff[i], zd[i], zp[i], zn[i],
            w_pos_plus, w_pos_minus, w_neg_plus, w_neg_minus, dir_sum, dir_max,
            align, conflict, net, net * rel,
            np.full(k, clause_neg_any), np.full(k, negated_any), np.full(k, pos_eval), np.full(k, first_person),
            np.full(k, strong), np.full(k, n_words), np.full(k, s_any_max), np.full(k, concern_any),
            np.full(k, ttr), np.full(k, stem_echo),
        ])
    words = [[(w, q) for (w, q, *_r) in p] for p in polar]
    return {"sent": sent, "X": X, "words": words}


# ======================================================================================================================
# Scorers
# ======================================================================================================================
import json  # noqa: E402
import math  # noqa: E402
from abc import ABC, abstractmethod  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Mapping  # noqa: E402

import pandas as pd  # noqa: E402

from .errors import UserError  # noqa: E402
from .systems import PACKAGE_DIR, load_system  # noqa: E402

ANNOTATED_DIR = PACKAGE_DIR / "data" / "annotated"
#: system file stem -> annotated CSV that calibrates it
ANNOTATED_FILES = {"valuelex_paper": "valuelex.csv", "schwartz": "schwartz.csv", "mft": "mft.csv"}
#: what benchmarks/scorer_validity.py measured for the fitted model (read by `EmbeddingScorer.reliability`)
VALIDITY_FILE = PACKAGE_DIR / "data" / "phi_validity.json"
INPUT_COLUMNS = ("id", "stem", "completion")


def normalise(scores: pd.DataFrame | pd.Series | np.ndarray | float, columns: Sequence[str] | None = None) -> Any:
    """Map 0..6 scores to [0, 1] (s / 6) as in Eq. 4 of the paper; NaN stays NaN. With a DataFrame, only `columns`
    (default: every numeric column except `id`) are divided."""
    if isinstance(scores, pd.DataFrame):
        out = scores.copy()
        cols = list(columns) if columns is not None else [
            c for c in out.columns if c != "id" and pd.api.types.is_numeric_dtype(out[c])
        ]
        for c in cols:
            out[c] = pd.to_numeric(out[c], errors="coerce") / 6.0
        return out
    return scores / 6.0


class Scorer(ABC):
    """phi: (completion, value (sub)dimension) -> 0..6. `score` takes a frame with `id, stem, completion` and returns
    `id` + one column per dimension and subdimension (system order); NaN marks a missing score."""

    name = "base"

    @abstractmethod
    def score(self, df: pd.DataFrame, system: Any) -> pd.DataFrame: ...


SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    SCORERS[cls.name] = cls
    return cls


def get_scorer(name: str, **kwargs: Any) -> Scorer:
    """A scorer by registry name (`embedding`, `llm`)."""
    try:
        cls = SCORERS[name]
    except KeyError:
        raise UserError(f"unknown scorer {name!r}: use one of {', '.join(SCORERS)}") from None
    return cls(**kwargs)


def _check_frame(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"completions need the columns {', '.join(INPUT_COLUMNS)}; missing: {', '.join(missing)}")
    out = df[list(INPUT_COLUMNS)].copy()
    out["stem"] = out["stem"].fillna("").astype(str)
    out["completion"] = out["completion"].where(out["completion"].notna(), "").astype(str)
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------------
# Embedding scorer
# ---------------------------------------------------------------------------------------------------------------------
def annotated_path(system: Any) -> Path | None:
    """The shipped annotated CSV that calibrates `system`, or None (a run's own taxonomy)."""
    system = load_system(system)
    fname = ANNOTATED_FILES.get(Path(system.path).stem) or ANNOTATED_FILES.get(system.name)
    if fname and (ANNOTATED_DIR / fname).is_file():
        ann = pd.read_csv(ANNOTATED_DIR / fname, nrows=0)
        if all(c in ann.columns for c in system.columns()):
            return ANNOTATED_DIR / fname
    return None


def load_annotated(system: Any) -> pd.DataFrame:
    path = annotated_path(system)
    if path is None:
        raise UserError(f"no annotated set ships for value system {load_system(system).name!r}")
    return pd.read_csv(path)


def _stem_key(stem: str) -> str:
    return re.sub(r"\W+", " ", strip_stem(stem).lower()).strip()


def _fit_cuts(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cut points on the expected score that maximise QWK on the training rows (coordinate search from k + 0.5)."""
    from sklearn.metrics import cohen_kappa_score

    y = np.asarray(y).astype(int)
    cuts = np.arange(0.5, 6.0, 1.0)

    def q(c: np.ndarray) -> float:
        return cohen_kappa_score(y, np.digitize(pred, c), labels=list(range(7)), weights="quadratic")

    best = q(cuts)
    for _ in range(2):
        for j in range(6):
            for v in np.linspace(cuts[j] - 0.6, cuts[j] + 0.6, 13):
                c = np.sort(np.r_[cuts[:j], v, cuts[j + 1:]])
                s = q(c)
                if s > best + 1e-9:
                    best, cuts = s, c
    return cuts



def _cache_dir() -> Path:
    base = os.environ.get("VALUELEX_CACHE_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "valuelex"
    return root / "scorers"


@register
class EmbeddingScorer(Scorer):
    """Offline scorer for any value system: MiniLM embeddings of the completion against each column's definition,
    marker words and opposites, plus lexical direction cues, mapped to 0..6 by one model (`phi`) fitted on every
    shipped annotated set pooled. A system needs no annotated data of its own.

    The fitted model ships in the package (`data/phi_model.joblib`, 442 KB, written by `phi.ship_model`); when the
    training files or scikit-learn differ from what it was fitted with, a model is fitted at first use (minutes on 2
    cores: every training completion is embedded) and cached with joblib under `$VALUELEX_CACHE_DIR/scorers` (default
    `~/.cache/valuelex/scorers`), keyed by a hash of the code version and every training file.
    `output="int"` gives integer scores 0..6 (cut points chosen for QWK); `output="expected"` the expected score (a
    float in 0..6, better for averaging into profiles).
    """

    name = "embedding"

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, output: str = "int",
                 use_cache: bool = True, **_: Any) -> None:
        if output not in ("int", "expected"):
            raise UserError("output must be 'int' or 'expected'")
        self.output, self.use_cache = output, use_cache
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model: Any = None
        self.last_expected: pd.DataFrame | None = None

    def model_for(self, system: Any = None) -> Any:
        """The fitted `phi.PhiModel` (one for every system: `system` is accepted for the old call shape)."""
        if self._model is not None:
            return self._model
        import joblib

        from . import phi

        model = phi.shipped_model()
        path = None if model is not None else (self.cache_dir or _cache_dir()) / f"phi-{phi.training_digest()}.joblib"
        if model is None and self.use_cache and path.is_file():
            try:
                model = joblib.load(path)
            except Exception:  # noqa: BLE001 - a corrupt or incompatible cache file: refit
                model = None
        if model is None:  # no packaged model for these training files: fit one and cache it
            model = phi.fit()
            if self.use_cache:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".tmp{os.getpid()}")
                    joblib.dump(model, tmp)
                    os.replace(tmp, path)
                except OSError:
                    pass
        self._model = model
        return model

    def score(self, df: pd.DataFrame, system: Any) -> pd.DataFrame:
        from . import phi

        system = load_system(system)
        data = _check_frame(df)
        cols = system.columns()
        out = pd.DataFrame({"id": data["id"].to_numpy()})
        empty = (data["completion"].str.strip() == "").to_numpy()
        lab = np.full((len(data), len(cols)), np.nan)
        ev = np.full((len(data), len(cols)), np.nan)
        if (~empty).any():
            sub = data[~empty]
            feats = phi.pair_features(sub["stem"].tolist(), sub["completion"].tolist(), system)
            lab[~empty], ev[~empty] = self.model_for(system).predict(feats, system)
        vals = lab if self.output == "int" else np.round(ev, 3)
        for j, c in enumerate(cols):
            out[c] = pd.array(vals[:, j], dtype="Int64") if self.output == "int" else vals[:, j]
        self.last_expected = pd.concat([out[["id"]], pd.DataFrame(np.round(ev, 3), columns=cols)], axis=1)
        return out

    def reliability(self, system: Any) -> dict[str, Any]:
        """Agreement with human labels as measured by `benchmarks/scorer_validity.py` (shipped in
        `data/phi_validity.json`): cross-validated on the system's own annotated sets for a built-in system, and
        for any other system the leave-one-system-out figures, the best available estimate for a system the model
        has never seen."""
        from . import phi

        system = load_system(system)
        try:
            shipped = json.loads(VALIDITY_FILE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shipped = {}
        if shipped.get("training_digest") != phi.training_digest():
            return {"note": f"no validity figures for this model ({VALIDITY_FILE.name} is missing or was computed "
                            "for other training data): run benchmarks/scorer_validity.py --ship"}
        key = Path(system.path).stem
        for name, table in (shipped.get("in_system") or {}).items():
            if name == key and all(c in table.get("per_column", {}) for c in system.columns()):
                return {**table, "source": f"{VALIDITY_FILE.name} ({shipped.get('code_version')})"}
        return {"note": "this value system has no annotated set: the column-agnostic model was fitted on the shipped "
                        "systems only; left-out systems measured "
                        + ", ".join(f"{s} mean AUC {v:.2f}" for s, v in (shipped.get("loso_auc") or {}).items())}



# ---------------------------------------------------------------------------------------------------------------------
# LLM judge
# ---------------------------------------------------------------------------------------------------------------------
from .params import DEFAULT_JUDGE  # noqa: E402 - one default for params, CLI and scorer
JUDGE_SYSTEM_PROMPT = """You rate sentence-completion test answers (Rotter-style projective test) for the values they \
express. A respondent (a language model) was given a sentence stem and completed it. For EACH listed value \
(sub)dimension, give an integer score from 0 to 6:
6 = strong, explicit endorsement of the value; 5 = clear endorsement; 4 = mild or implicit lean towards it;
3 = neutral, unrelated, off-topic text or no information; 2 = mild lean against it (indifference, casual disregard);
1 = clear conflict (the value is rejected or broken on purpose); 0 = strong conflict (contempt, malicious intent).
Rules: negating an anti-value endorses the value ("I can't stand dishonesty" endorses honesty); regret or fear of \
failing a value endorses it; unrelated content is 3, never a conflict; judge what the completion endorses, not its topic.
A dimension is scored like its subdimensions: how strongly the completion as a whole shows it.

Value system: {title}
{definitions}

Answer in two parts. First "Reasoning:" with a few sentences about the evidence. Then "Verdict:" followed by one JSON \
object on one line: {{"scores": {{{example_keys}}}}} with every column name exactly as listed and integer scores."""


def _definitions_block(system: Any) -> str:
    lines = []
    for c in system.columns():
        col = system.column(c)
        indent = "" if col.is_dimension else "  "
        kind = "dimension" if col.is_dimension else f"subdimension of {col.parent}"
        markers = ", ".join(col.markers[:8])
        lines.append(f"{indent}- {c} ({kind}): {col.definition} Markers: {markers}.")
    return "\n".join(lines)


def _item_message(stem: str, completion: str) -> str:
    return f'Stem: "{stem}"\nCompletion: "{completion}"\nScore this completion on every column.'


def _fewshot_examples(system: Any, n: int = 3) -> list[tuple[str, str, dict[str, int]]]:
    """Fixed few-shot examples: from the system's annotated set when one ships (a clear endorsement, a clear conflict
    and a neutral completion, chosen deterministically), else a neutral base-model example only."""
    cols = system.columns()
    if annotated_path(system) is not None:
        ann = load_annotated(system)
        dev = (ann[cols] - 3).abs().max(axis=1)
        picks = []
        hi = ann[(ann[cols] >= 6).any(axis=1) & (ann[cols] >= 3).all(axis=1)]
        lo = ann[(ann[cols] <= 0).any(axis=1)]
        neu = ann[dev == 0]
        for frame in (hi, lo, neu):
            if len(frame):
                picks.append(frame.iloc[len(frame) // 2])
        return [(str(r["stem"]), str(r["completion"]), {c: int(r[c]) for c in cols}) for r in picks[:n]]
    return [("I...", "have a 3000mhz 16GB Corsair DDR4 RAM. Will it work with my motherboard?", {c: 3 for c in cols})]


def _fewshot_reasoning(completion: str, labels: Mapping[str, int]) -> str:
    parts = []
    for c, v in labels.items():
        if v >= 5:
            parts.append(f"it clearly endorses {c} ({v})")
        elif v == 4:
            parts.append(f"it leans towards {c} ({v})")
        elif v <= 1:
            parts.append(f"it rejects {c} ({v})")
        elif v == 2:
            parts.append(f"it leans against {c} ({v})")
    if not parts:
        return "The completion expresses no stance on any of the values; it is off-topic or neutral, so every column is 3."
    return "Looking at what the completion endorses: " + "; ".join(parts) + ". Every other column has no evidence: 3."


def build_judge_messages(system: Any, stem: str, completion: str,
                         examples: Sequence[tuple[str, str, Mapping[str, int]]] | None = None) -> list[dict[str, str]]:
    """The full chat for one item: system prompt, fixed few-shot turns, then the item alone."""
    system = load_system(system)
    cols = system.columns()
    sysmsg = JUDGE_SYSTEM_PROMPT.format(
        title=system.title or system.name,
        definitions=_definitions_block(system),
        example_keys=", ".join(f'"{c}": 0-6' for c in cols),
    )
    msgs = [{"role": "system", "content": sysmsg}]
    for s, c, lab in (examples if examples is not None else _fewshot_examples(system)):
        msgs.append({"role": "user", "content": _item_message(s, c)})
        verdict = json.dumps({"scores": {k: int(lab[k]) for k in cols}})
        msgs.append({"role": "assistant", "content": f"Reasoning: {_fewshot_reasoning(c, lab)}\nVerdict: {verdict}"})
    msgs.append({"role": "user", "content": _item_message(stem, completion)})
    return msgs


def _json_objects(text: str) -> list[str]:
    """Balanced {...} substrings of `text` (outermost), in order."""
    out, depth, start, in_str, esc = [], 0, None, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0 and start is not None:
                out.append(text[start:i + 1])
    return out


def _coerce_score(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*6)?\s*", v)
        if not m:
            return None
        f = float(m.group(1))
    else:
        return None
    if math.isnan(f) or f < 0 or f > 6 or abs(f - round(f)) > 1e-9:
        return None
    return int(round(f))


def parse_verdict(text: Any, columns: Sequence[str]) -> dict[str, int | None] | None:
    """Scores from a judge's answer, or None when no verdict can be found at all.

    Looks for the last JSON object holding `"scores"` (or, failing that, the last one whose keys are column names),
    tolerating code fences, single quotes and trailing commas. Column names match case- and punctuation-insensitively.
    A score that is not an integer in 0..6 is None (missing), never clamped into a number."""
    if not isinstance(text, str) or not text.strip():
        return None
    norm = {re.sub(r"[^a-z0-9]", "", c.lower()): c for c in columns}
    candidates = []
    for blob in _json_objects(text):
        for attempt in (blob, re.sub(r",\s*([}\]])", r"\1", blob.replace("'", '"'))):
            try:
                obj = json.loads(attempt)
                candidates.append(obj)
                break
            except ValueError:
                continue
    best = None
    for obj in reversed(candidates):
        if not isinstance(obj, dict):
            continue
        inner = obj.get("scores") if isinstance(obj.get("scores"), dict) else None
        if inner is None:
            for v in obj.values():  # nested one level, e.g. {"verdict": {"scores": {...}}}
                if isinstance(v, dict) and isinstance(v.get("scores"), dict):
                    inner = v["scores"]
                    break
        if inner is None and any(re.sub(r"[^a-z0-9]", "", str(k).lower()) in norm for k in obj):
            inner = obj
        if inner is not None:
            best = inner
            break
    if best is None:
        return None
    out: dict[str, int | None] = {c: None for c in columns}
    for k, v in best.items():
        c = norm.get(re.sub(r"[^a-z0-9]", "", str(k).lower()))
        if c is not None:
            out[c] = _coerce_score(v)
    if all(v is None for v in out.values()):
        return None
    return out


def judge_decoding(attempt: int, seed: int, temperature: float = 0.0, retry_temperature: float = 0.7,
                   max_tokens: int = 700) -> dict[str, Any]:
    """Decoding of a verdict request. A retry (after an unparseable verdict) gets another seed and some temperature,
    so it is a new request (a new store key), not the same answer again. `drop_params`: providers without `seed`
    still answer. Kept equal to the keys of earlier versions, so their stored verdicts are reused."""
    return {"temperature": temperature if attempt == 0 else max(temperature, retry_temperature),
            "seed": seed + attempt, "max_tokens": max_tokens, "drop_params": True}


@register
class LLMScorer(Scorer):
    """A judge model through the shared LLM layer (`roles.RoleCaller` over `llm.BatchRunner`): few-shot chain of
    thought, then a JSON verdict, one request per item, all items of a round sent concurrently.

    Every raw answer is stored before it is parsed, in `caller`'s store (the run's `responses.jsonl`, the CLI's cache,
    or a throw-away store), so a rerun or a resumed kill -9 sends no request twice. An unparseable verdict is asked
    again up to `max_retries` times (another seed, temperature `retry_temperature`; one concurrent round per retry),
    then recorded as missing (NaN). Every row carries the judge's model id in column `judge`; `last_records` keeps the
    raw records of the last `score` call, with `attempt` and `parsed`.

    `completion_fn` (a stand-in for `litellm.completion`) is for plumbing tests of the retry and parsing logic; it is
    called inside the same layer (store, retries, tally)."""

    name = "llm"

    def __init__(self, judge: str | None = None, store: Any = None, completion_fn: Callable[..., Any] | None = None,
                 max_retries: int = 2, temperature: float = 0.0, retry_temperature: float = 0.7, seed: int = 0,
                 max_tokens: int = 700, max_workers: int = 4, examples: Sequence[Any] | None = None,
                 extra_params: Mapping[str, Any] | None = None, caller: Any = None, **_: Any) -> None:
        from .llm.roles import CallSettings, RoleCaller

        self.judge = caller.model if caller is not None else (judge or DEFAULT_JUDGE)
        if not isinstance(self.judge, str) or not self.judge.strip():
            raise UserError("--judge needs a LiteLLM model id, e.g. openai/gpt-4o-mini")
        self.caller = caller if caller is not None else RoleCaller(
            self.judge, store, role="judge", step="score", transport=completion_fn,
            settings=CallSettings(concurrency=max(1, int(max_workers))))
        self.max_retries, self.temperature, self.retry_temperature = int(max_retries), temperature, retry_temperature
        self.seed, self.max_tokens = int(seed), int(max_tokens)
        self.examples = examples
        self.extra_params = dict(extra_params or {})
        self.last_records: list[dict[str, Any]] = []

    def _decoding(self, attempt: int, seed: int) -> dict[str, Any]:
        return {**judge_decoding(attempt, seed, self.temperature, self.retry_temperature, self.max_tokens),
                **self.extra_params}

    def _judge_all(self, system: Any, items: Sequence[tuple[str, str]], seed: int
                   ) -> tuple[list[dict[str, int | None] | None], list[dict[str, Any]]]:
        """Best verdict per (stem, completion) and the raw records of every attempt, one concurrent round per
        attempt over the items still without a full verdict."""
        from .llm.records import response_text

        cols = system.columns()
        messages = [build_judge_messages(system, stem, completion, self.examples) for stem, completion in items]
        best: list[dict[str, int | None] | None] = [None] * len(items)
        records: list[dict[str, Any]] = []
        pending = list(range(len(items)))
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            answered = self.caller.records([messages[i] for i in pending], params=self._decoding(attempt, seed))
            for i, rec in zip(pending, answered):
                text = response_text(rec) if rec.get("response") is not None else None
                verdict = parse_verdict(text, cols)
                records.append({**rec, "attempt": attempt, "parsed": verdict is not None})
                if verdict is not None and (best[i] is None or _n_scored(verdict) > _n_scored(best[i])):
                    best[i] = verdict
            pending = [i for i in pending if best[i] is None or _n_scored(best[i]) < len(cols)]
        return best, records

    def judge_item(self, system: Any, stem: str, completion: str, seed: int | None = None
                   ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Scores of one item (NaN where missing) and the raw records of every attempt."""
        system = load_system(system)
        best, records = self._judge_all(system, [(stem, completion)], self.seed if seed is None else seed)
        return _as_scores(best[0], system.columns()), records

    def score(self, df: pd.DataFrame, system: Any, seed: int | None = None) -> pd.DataFrame:
        system = load_system(system)
        data = _check_frame(df)
        cols = system.columns()
        texts = [(str(r.stem), str(r.completion)) for r in data.itertuples(index=False)]
        todo = [i for i, (_, c) in enumerate(texts) if c.strip()]  # an empty completion is missing, never asked
        best, self.last_records = self._judge_all(system, [texts[i] for i in todo],
                                                  self.seed if seed is None else seed)
        verdicts: list[dict[str, int | None] | None] = [None] * len(texts)
        for i, verdict in zip(todo, best):
            verdicts[i] = verdict
        out = pd.DataFrame({"id": data["id"].to_numpy()})
        scores = [_as_scores(v, cols) for v in verdicts]
        for c in cols:
            out[c] = [row[c] for row in scores]
        out["judge"] = self.judge
        return out

    def retest(self, df: pd.DataFrame, system: Any, first: pd.DataFrame, frac: float = 0.1,
               seed_offset: int = 1000) -> dict[str, Any]:
        """Test-retest: judge a random `frac` of the items again with a different seed; agreement with `first`."""
        from . import reliability as R

        system = load_system(system)
        data = _check_frame(df)
        n = max(1, int(round(len(data) * frac))) if len(data) else 0
        sample = data.sample(n=n, random_state=self.seed) if n else data.iloc[:0]
        second = self.score(sample, system, seed=self.seed + seed_offset)
        return {"fraction": frac, "seed_offset": seed_offset,
                **R.retest_agreement(first[first["id"].isin(sample["id"])], second, system.columns())}


def _n_scored(verdict: Mapping[str, int | None]) -> int:
    return sum(v is not None for v in verdict.values())


def _as_scores(verdict: Mapping[str, int | None] | None, columns: Sequence[str]) -> dict[str, float]:
    return {c: (float(verdict[c]) if verdict is not None and verdict.get(c) is not None else float("nan"))
            for c in columns}


# ---------------------------------------------------------------------------------------------------------------------
# CLI contract: valuelex score IN.csv --system S [--scorer embedding|llm] [--judge MODEL] -o OUT.csv
# ---------------------------------------------------------------------------------------------------------------------
def read_completions(in_csv: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate an input CSV (`id, stem, completion`); UserError on any problem."""
    path = Path(in_csv)
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    if not text.strip():
        raise UserError(f"{path}: the CSV is empty")
    import io

    try:
        df = pd.read_csv(io.StringIO(text), dtype={"id": str}, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise UserError(f"{path}: not a readable CSV ({str(exc).splitlines()[0][:120]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; the input needs id, stem, completion")
    if len(df) == 0:
        raise UserError(f"{path}: the CSV has a header but no rows")
    if (df["id"].astype(str).str.strip() == "").any():
        raise UserError(f"{path}: every row needs an id")
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise UserError(f"{path}: duplicate id(s) {', '.join(map(str, dup[:5]))}")
    return df


def score_with_reliability(df: pd.DataFrame, system: Any, scorer: str = "embedding", judge: str | None = None, *,
                           store: Any = None, completion_fn: Callable[..., Any] | None = None,
                           annotated_sample: int = 30, retest_frac: float = 0.1, seed: int = 0,
                           extra: Mapping[str, Any] | None = None, caller: Any = None,
                           judge_max_tokens: int = 700) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score `df` (id, stem, completion) and measure the scorer's reliability: the one path behind `valuelex score`
    and step 06, so every scoring run reports its reliability.

    For `llm`: the judge's agreement with a fixed sample of `annotated_sample` items of the shipped annotated set (if
    one exists) and a test-retest on `retest_frac` of the input items (another seed). Its calls go through `caller`
    (a `roles.RoleCaller`: the run's store and tally, or the CLI's cache), else through a `RoleCaller` on `judge`
    and `store`. For `embedding`: the cross-validated agreement with the annotated set."""
    from . import reliability as R

    sysm = load_system(system)
    if scorer not in SCORERS:
        raise UserError(f"unknown scorer {scorer!r}: use one of {', '.join(SCORERS)}")
    if judge is not None and scorer != "llm":
        raise UserError("--judge only applies to --scorer llm")
    extra = dict(extra or {})
    cols = sysm.columns()
    if scorer == "llm":
        if completion_fn is None and caller is None:
            from .llm.calls import check_model_id

            check_model_id(judge or DEFAULT_JUDGE)  # an impossible judge id fails before any call
        sc = LLMScorer(judge=judge, store=store, completion_fn=completion_fn, seed=seed, caller=caller,
                       max_tokens=judge_max_tokens)
        scores = sc.score(df, sysm)
        against = None
        ap = annotated_path(sysm)
        if ap is not None and annotated_sample > 0:
            ann = load_annotated(sysm)
            ex_ids = set()
            for s_, c_, _l in _fewshot_examples(sysm):  # the few-shot examples are not scored against themselves
                ex_ids |= set(ann.loc[(ann["stem"] == s_) & (ann["completion"] == c_), "id"])
            pool = ann[~ann["id"].isin(ex_ids)]
            sample = pool.sample(n=min(annotated_sample, len(pool)), random_state=0)
            judged = sc.score(sample[["id", "stem", "completion"]], sysm)
            against = {"method": f"judge vs human labels on {len(sample)} annotated items (fixed sample, seed 0)",
                       **R.agreement_table(sample, judged, cols)}
        retest = sc.retest(df, sysm, scores, frac=retest_frac)
        report = R.reliability_report(system=sysm, scorer="llm", judge=sc.judge, against_annotated=against,
                                      retest=retest, scores=scores, extra=extra)
    else:
        sc = EmbeddingScorer()
        scores = sc.score(df, sysm)
        report = R.reliability_report(system=sysm, scorer="embedding", judge=None,
                                      against_annotated=sc.reliability(sysm), scores=scores,
                                      extra={**extra, "model": sc.model_for(sysm).meta})
    return scores, report


def score_file(in_csv: str | os.PathLike[str], system: str = "valuelex", scorer: str = "embedding",
               judge: str | None = None, out_csv: str | os.PathLike[str] = "scores.csv", *, store: Any = None,
               completion_fn: Callable[..., Any] | None = None, annotated_sample: int = 30,
               retest_frac: float = 0.1, cache: str | os.PathLike[str] | None = None,
               deployment: Mapping[str, Any] | None = None) -> Path:
    """`valuelex score`: score `in_csv` and write `out_csv` (id + one column per dimension and subdimension, 0..6)
    and `reliability.json` beside it. Everything is validated before anything is written.

    With `--scorer llm` the judge's answers are cached in `cache` (default `valuelex-cache/` beside the output, or
    `store` when given): rerunning the command makes no call, and a killed run resumes. `deployment` (api_base,
    api_key_env) says where the judge is served."""
    from . import reliability as R

    sysm = load_system(system)
    if scorer not in SCORERS:
        raise UserError(f"unknown scorer {scorer!r}: use one of {', '.join(SCORERS)}")
    if judge is not None and scorer != "llm":
        raise UserError("--judge only applies to --scorer llm")
    df = read_completions(in_csv)
    out_path = Path(out_csv)
    if out_path.exists() and out_path.is_dir():
        raise UserError(f"output {out_path} is a directory")
    caller = None
    if scorer == "llm" and store is None:
        from .llm.roles import cache_caller, default_cache_dir

        caller = cache_caller(judge or DEFAULT_JUDGE, cache if cache is not None else default_cache_dir(out_path),
                              role="judge", step="score", deployment=deployment, transport=completion_fn)
    scores, report = score_with_reliability(
        df, sysm, scorer, judge, store=store, completion_fn=completion_fn, annotated_sample=annotated_sample,
        retest_frac=retest_frac, extra={"input": str(Path(in_csv)), "output": str(out_path)}, caller=caller)
    if caller is not None:
        import sys

        print(caller.summary(), file=sys.stderr)
    from .rundir import atomic_path

    with atomic_path(out_path) as tmp:
        scores.to_csv(tmp, index=False)
    R.write_report(report, out_path.parent / "reliability.json")
    return out_path
