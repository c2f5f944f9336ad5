"""Per (item, column) features of phi's direction evidence: the lexical cues of `lexical`, weighed by how near each
content word is to a column's marker words (aligned pole) and opposite words (conflict pole) in MiniLM space.

`FEATURE_NAMES` is the one list of feature names: `build_features` computes each feature under its name and lays out
the columns of `X` from that list, so a name and its column cannot drift apart. Two repetition features (type/token
ratio, share of completion words that echo the stem) let the model see tiny-model loops, which the rubric scores
neutral.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import embeddings
from ..embeddings import DIM, unit
from ..systems import ValueSystem
from .lexical import (FIRST_PERSON, NEGATORS, POS_EVAL, STRONG_WORDS, clause_kinds, clauses, item_text, strip_stem,
                      tokenize, word_polarities)

ENCODER_NAME = "all-MiniLM-L6-v2"
#: the direction features, in the column order of `build_features`'s X (phi reads them by name)
FEATURE_NAMES = [
    "w_pos_plus", "w_pos_minus", "w_neg_plus", "w_neg_minus", "dir_sum", "dir_max",
    "align", "conflict", "net", "net_x_rel",
    "clause_neg_any", "negated_any", "pos_eval", "first_person", "strong", "n_words",
    "concern_any", "type_token_ratio", "stem_echo",
]
_FLOOR = 0.15  # below this a word is unrelated: MiniLM gives most word pairs 0.1-0.3


# -- encoder -------------------------------------------------------------------------------------------------------
def get_encoder() -> Any:
    """all-MiniLM-L6-v2, offline, shared with the rest of the package (`valuelex_utils.embeddings`)."""
    return embeddings.get_model()  # loaded lazily there (sentence-transformers takes seconds to import)


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings (n, DIM), cached by text (`valuelex_utils.embeddings.embed`)."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.asarray(embeddings.embed(texts, batch_size=batch_size), dtype=np.float32)


def embed_spans(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[list[np.ndarray | None]]:
    """Span vectors from one encoder pass over each text (`valuelex_utils.embeddings.embed_spans`)."""
    return embeddings.embed_spans(texts, spans)


def _unit32(m: np.ndarray) -> np.ndarray:
    """Unit rows, computed in the array's own dtype, as float32."""
    return unit(m).astype(np.float32)


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
        self.neg_emb = [embed(ws) if ws else np.zeros((0, DIM), np.float32) for ws in self.neg_words]


def _word_poles(vocab: list[str], protos: Prototypes) -> tuple[np.ndarray, np.ndarray]:
    """(words, columns): each word's highest cosine to a column's aligned words and to its conflict words."""
    k = len(protos.columns)
    wemb = embed(vocab) if vocab else np.zeros((0, DIM), np.float32)
    w_pos = np.zeros((len(vocab), k), np.float32)
    w_neg = np.zeros((len(vocab), k), np.float32)
    for j in range(k):
        if len(vocab):
            w_pos[:, j] = (wemb @ protos.pos_emb[j].T).max(1)
            if len(protos.neg_emb[j]):
                w_neg[:, j] = (wemb @ protos.neg_emb[j].T).max(1)
    return w_pos, w_neg


def _item_cues(stem: str, completion: str) -> dict[str, float]:
    """Features of the item alone (the same for every column)."""
    toks = [t for cl, _ in clauses(stem, completion) for t in cl]
    kinds = [kd for _, kd in clause_kinds(stem, completion)]
    # loops and echoes of the stem ("freedom is freedom and freedom is...") are neutral, whatever their words
    ctoks = [t for t in tokenize(str(completion or "")) if t.isalpha()]
    stem_set = set(tokenize(strip_stem(stem)))
    return {
        "clause_neg_any": float("neg" in kinds),
        "negated_any": float(any(t in NEGATORS for t in toks)),
        "pos_eval": float(sum(t in POS_EVAL for t in toks) > 0),
        "first_person": float(any(t in FIRST_PERSON for t in toks)),
        "strong": float(any(t in STRONG_WORDS for t in toks)),
        "n_words": np.log1p(len(toks)),
        "concern_any": float("concern" in kinds and "neg" not in kinds),  # a concern frame, see `lexical`
        "type_token_ratio": len(set(ctoks)) / max(len(ctoks), 1),
        "stem_echo": sum(t in stem_set for t in ctoks) / max(len(ctoks), 1),
    }


def _word_evidence(p: list[tuple[str, int, bool, bool, bool]], widx: dict[str, int], w_pos: np.ndarray,
                   w_neg: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per column: the strongest aligned-pole and conflict-pole word by polarity, and the signed evidence."""
    if not p:
        zero = np.zeros(k)
        return {n: zero for n in ("w_pos_plus", "w_pos_minus", "w_neg_plus", "w_neg_minus", "dir_sum", "dir_max")}
    rows = np.array([widx[w] for (w, *_r) in p])
    pol = np.array([q for (_w, q, *_r) in p])
    conc = np.array([r[-1] for r in p], bool)
    wp = np.clip(w_pos[rows] - _FLOOR, 0, None)  # (m, k)
    wn = np.clip(w_neg[rows] - _FLOOR, 0, None)
    if conc.any():  # a feared / regretted word near either pole is aligned evidence
        wp[conc] = np.maximum(wp[conc], wn[conc])
        wn[conc] = 0.0
    plus, minus = pol > 0, pol < 0
    # signed word evidence: which pole a word is nearer to, times its relevance, times its polarity
    d = pol[:, None] * (wp - wn) * np.maximum(wp, wn)  # (m, k)
    return {"w_pos_plus": wp[plus].max(0) if plus.any() else np.zeros(k),
            "w_pos_minus": wp[minus].max(0) if minus.any() else np.zeros(k),
            "w_neg_plus": wn[plus].max(0) if plus.any() else np.zeros(k),
            "w_neg_minus": wn[minus].max(0) if minus.any() else np.zeros(k),
            "dir_sum": d.sum(0), "dir_max": d[np.abs(d).argmax(0), np.arange(k)]}


def build_features(stems: Sequence[str], completions: Sequence[str], protos: Prototypes,
                   sent: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per item: `sent` (n, DIM) embeddings of stem + completion (or the caller's own embeddings of the items, which
    saves encoding them twice) and `words` (content words with polarity, for the lexicon); per (item, column): `X`
    (n, k, F) with FEATURE_NAMES."""
    texts = [item_text(s, c) for s, c in zip(stems, completions)]
    sent = embed(texts) if sent is None else sent
    n, k = len(texts), len(protos.columns)
    s_def = sent @ protos.def_emb.T
    zd = (s_def - s_def.mean(1, keepdims=True)) / (s_def.std(1, keepdims=True) + 1e-6)  # relative relevance
    polar = [word_polarities(s, c) for s, c in zip(stems, completions)]
    vocab = sorted({w for p in polar for (w, *_r) in p})
    w_pos, w_neg = _word_poles(vocab, protos)
    widx = {w: i for i, w in enumerate(vocab)}
    X = np.zeros((n, k, len(FEATURE_NAMES)), np.float32)
    for i, p in enumerate(polar):
        f: dict[str, Any] = _word_evidence(p, widx, w_pos, w_neg, k)
        f["align"] = np.maximum(f["w_pos_plus"], f["w_neg_minus"])
        f["conflict"] = np.maximum(f["w_pos_minus"], f["w_neg_plus"])
        f["net"] = f["align"] - f["conflict"]
        f["net_x_rel"] = f["net"] * np.clip(zd[i], 0, None)
        f.update({name: np.full(k, v) for name, v in _item_cues(stems[i], completions[i]).items()})
        if len(f) != len(FEATURE_NAMES):
            raise AssertionError(f"features computed {sorted(f)} differ from FEATURE_NAMES")
        X[i] = np.column_stack([f[name] for name in FEATURE_NAMES])
    words = [[(w, q) for (w, q, *_r) in p] for p in polar]
    return {"sent": sent, "X": X, "words": words}
