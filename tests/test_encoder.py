"""The one-pass sentence vectors the scorer pools from a completion's own tokens (`embeddings.embed_spans`,
`phi.completion_vectors`). Sentences written for these tests."""
from __future__ import annotations

import os

import numpy as np
import pytest

from valuelex_utils import embeddings as E
from valuelex_utils.scoring import phi

TEXTS = ["I always double-check my sources. Accuracy matters more to me than speed.",
         "Winning is everything; rules are for people who lose.",
         "My grandmother's recipes, and the quiet Sunday dinners we shared, are what I treasure most."]


def test_one_pass_whole_vector_is_the_sentence_transformers_vector():
    E.clear_memory_cache()
    spans = [phi.sentence_spans(t) for t in TEXTS]
    pooled = E.embed_spans(TEXTS, spans)
    whole = E._MEM.copy()  # the pass cached each whole text
    E.clear_memory_cache()
    fresh = E.embed(TEXTS)  # encoded afresh
    st = E.get_model().encode(TEXTS, normalize_embeddings=True)  # sentence-transformers' own pipeline, in torch
    assert np.abs(np.vstack([whole[t] for t in TEXTS]) - st).max() < 1e-5
    assert np.abs(fresh - st).max() < 1e-5
    assert [len(p) for p in pooled] == [len(s) for s in spans] == [2, 2, 1]  # ";" ends a sentence too
    for vs in pooled:
        assert all(abs(float(np.linalg.norm(v)) - 1) < 1e-5 for v in vs)


def test_a_sentence_vector_is_nearer_its_own_sentence_than_the_other():
    """The pooled vector of each sentence is read in context, but it still stands nearer that sentence encoded on its
    own than the text's other sentence."""
    text = "I treat every patient with kindness and patience. The quarterly revenue figures were published on Monday."
    spans = phi.sentence_spans(text)
    a, b = E.embed_spans([text], [spans])[0]
    alone = E.embed([text[x:y] for x, y in spans])
    assert float(a @ alone[0]) > float(a @ alone[1]) + 0.2
    assert float(b @ alone[1]) > float(b @ alone[0]) + 0.2


def test_a_span_past_the_encoders_window_is_none_and_the_scorer_encodes_it_alone():
    long = "Honesty comes first for me. " + "Filler words go on and on here. " * 60 + "Loyalty matters too."
    spans = phi.sentence_spans(long, max_n=100)
    vs = E.embed_spans([long], [spans])[0]
    assert vs[0] is not None and vs[-1] is None  # 256 tokens cover the first sentence, not the last
    _comp, sent, owner = phi.completion_vectors([long, "Short one."])
    assert len(sent) == len(phi.sentences(long)) + 1 and owner[-1] == 1
    assert np.isfinite(sent).all() and np.allclose(np.linalg.norm(sent, axis=1), 1, atol=1e-5)


def test_sentence_spans_point_at_the_sentences():
    text = "- First, I check facts.\n- Second: be kind to users!  Third? ok"
    spans = phi.sentence_spans(text)
    assert [text[a:b] for a, b in spans] == phi.sentences(text)


def test_a_texts_vectors_do_not_depend_on_the_other_texts_encoded_with_it():
    """A completion's score must not depend on what else is scored: its pooled vectors alone and in a batch of
    longer and shorter texts agree (an int8 encoder with dynamic quantisation failed exactly this, rule 4fb6c9f)."""
    text = TEXTS[0]
    others = [TEXTS[2] * 3, "Ok.", TEXTS[1]]
    E.clear_memory_cache()
    alone = E.embed_spans([text], [phi.sentence_spans(text)])[0]
    E.clear_memory_cache()
    mixed = E.embed_spans([*others, text], [phi.sentence_spans(t) for t in [*others, text]])[-1]
    assert len(alone) == len(mixed) == 2
    for a, b in zip(alone, mixed):
        assert np.abs(a - b).max() < 1e-5


def test_the_onnxruntime_encoder_is_used_and_gives_torchs_vectors(monkeypatch):
    """The scorer's speed rests on onnxruntime (`onnx_encoder`); its vectors, whole and pooled per sentence, are
    torch's to float rounding, so the phi model fitted on torch's features reads them the same."""
    from valuelex_utils import onnx_encoder as O

    assert O.session(E._bert) is not None, "onnxruntime encoder missing: the scorer runs at torch's speed"
    texts = [*TEXTS, "Short one.", TEXTS[2] * 4]
    spans = [phi.sentence_spans(t) for t in texts]
    fast = E._pool_spans(texts, spans, 64)
    monkeypatch.setenv("VALUELEX_ONNX", "0")
    monkeypatch.setattr(O, "_SESSION", None)
    assert O.session(E._bert) is None
    slow = E._pool_spans(texts, spans, 64)
    assert np.abs(np.vstack(fast[0]) - np.vstack(slow[0])).max() < 1e-5
    for a, b in zip(fast[1], slow[1]):
        assert len(a) == len(b) and all(np.abs(x - y).max() < 1e-5 for x, y in zip(a, b))


def test_the_light_tokenizer_gives_sentence_transformers_tokens():
    """Under onnxruntime the scorer tokenises with `tokenizers` alone (no torch to import); ids, masks, offsets and
    special-token marks must be those of sentence-transformers' tokenizer, padding and truncation included."""
    model = E.get_model()
    texts = [*TEXTS, "", "é ü 漢字 😀 don't", "word " * 400, "- a list\n- of items\t and  gaps"]
    got = E._tokenizer()(texts, offsets=True)
    want = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_seq_length,
                           return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="np")
    assert got["input_ids"].shape == (len(texts), model.max_seq_length)  # the long text is cut at the window
    for key in ("input_ids", "token_type_ids", "attention_mask", "offset_mapping", "special_tokens_mask"):
        assert np.array_equal(got[key], want[key].astype(np.int64)), key


def test_scoring_under_onnxruntime_loads_no_torch(tmp_path):
    """torch, transformers and sentence-transformers take about 7 s to import: a fresh process that scores through
    onnxruntime must not import them (the export, done at set-up, is the only step that needs torch)."""
    import subprocess
    import sys

    code = ("import sys; from valuelex_utils import scoring; import pandas as pd; "
            "df = pd.DataFrame({'id': [1], 'stem': ['Privacy to me'], 'completion': ['is something I guard.']}); "
            "out = scoring.EmbeddingScorer().score(df, 'valuelex'); assert len(out) == 1; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VALUELEX_EMBED_CACHE": str(tmp_path / "none.sqlite")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
