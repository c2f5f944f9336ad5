"""Speed of the offline scorer (issue 14): 10,000 completions on one value system, load included; writes
outputs/bench/scorer_speed.json.

Both encoder back-ends are measured side by side in one run, each in a fresh process (so each pays its own load):
onnxruntime (the default, `valuelex_utils.onnx_encoder`) and torch (`VALUELEX_ONNX=0`, the fallback). The top-level
figures are the default's; `backends` holds both and `torch_over_onnxruntime` the ratio of their totals.

Load = importing the package, loading what the encoder runs on (under onnxruntime the session and the tokenizer, no
torch) and the packaged phi model (when the package has none for its training files, the fit or cached fit is timed
apart as `fit_s_first_use`). The completions are the shipped annotated ones, each made distinct by a suffix so that
no embedding comes from a cache. Records the CPU and the load average beside the figures, and
the encoder's floor on this machine (`encoder_floor`: how long the workload's dense-layer products take at the fp32
matrix-product rate torch reaches here), so that a figure from one CPU can be read against another's.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.pop("VALUELEX_EMBED_CACHE", None)  # no on-disk vectors: every text is encoded
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from valuelex_utils import embeddings, scoring  # noqa: E402
from valuelex_utils.scoring import phi  # noqa: E402

N = int(os.environ.get("VALUELEX_BENCH_N", "10000"))
SYSTEM = os.environ.get("VALUELEX_BENCH_SYSTEM", "valuelex")


#: the workload: the annotated sets phi was first fitted on (sessions 4-6), so that the figure stays comparable when
#: spent blind sets (longer argued answers) join the training data; with them the mean completion grew 217 -> 245 chars
POOL = tuple(s for s in phi.TRAINING_SETS if not s[1].startswith("former_blind/"))


def completions(n: int) -> pd.DataFrame:
    pool = pd.concat([d for _s, d in phi.training_data(POOL)], ignore_index=True)[["stem", "completion"]]
    rows = pool.sample(n=n, replace=True, random_state=0).reset_index(drop=True)
    rows["completion"] = [f"{c} ({i})" for i, c in enumerate(rows["completion"])]
    rows.insert(0, "id", range(n))
    return rows


def measure() -> dict:
    items = completions(N)
    t_fit = None
    shipped = phi.shipped_model() is not None  # else model_for fits (or loads a cached fit): timed apart from loading
    sc = scoring.EmbeddingScorer()
    t = time.perf_counter()
    sc.model_for(SYSTEM)
    if not shipped:
        t_fit = time.perf_counter() - t
    backend = embeddings.load_encoder()  # what the package's first embedding loads (no torch under onnxruntime)
    load_s = time.perf_counter() - T0 - (t_fit or 0.0)
    c0, w0 = time.process_time(), time.perf_counter()
    out = sc.score(items, SYSTEM)
    score_s = time.perf_counter() - w0
    assert len(out) == N
    res = {
        "n_completions": N, "system": SYSTEM, "code_version": phi.CODE_VERSION,
        "load_s": round(load_s, 1), "score_s": round(score_s, 1), "total_s": round(load_s + score_s, 1),
        "cpu_s": round(time.process_time() - c0, 1), "completions_per_s": round(N / score_s, 1),
        "model": "packaged" if shipped else "fitted or loaded from the cache",
        "fit_s_first_use": None if t_fit is None else round(t_fit, 1),
        "mean_completion_chars": round(float(items["completion"].str.len().mean()), 1),
        "target": "10,000 completions in <= 120 s on 2 cores, load included",
        "encoder_floor": encoder_floor(items["completion"].tolist()),
        "encoder_backend": backend,
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
                    "python": platform.python_version()},
    }
    return res


def main() -> None:
    if os.environ.get("VALUELEX_BENCH_CHILD"):
        print("RESULT " + json.dumps(measure()))
        return
    print("onnxruntime encoder:", embeddings.prepare_encoder(), flush=True)  # built by `make setup`; not timed
    runs = {}
    for backend, flag in (("onnxruntime", "1"), ("torch", "0")):
        env = {**os.environ, "VALUELEX_BENCH_CHILD": "1", "VALUELEX_ONNX": flag}
        done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, check=True)
        runs[backend] = json.loads(done.stdout.split("RESULT ", 1)[1])
        print(backend, {k: runs[backend][k] for k in ("load_s", "score_s", "total_s")}, flush=True)
    res = {**runs["onnxruntime"], "backend": "onnxruntime",
           "torch_over_onnxruntime": round(runs["torch"]["total_s"] / runs["onnxruntime"]["total_s"], 2),
           "backends": {b: {k: r[k] for k in ("load_s", "score_s", "total_s", "cpu_s", "machine")}
                        for b, r in runs.items()}}
    out_path = ROOT / "outputs" / "bench" / "scorer_speed.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


def encoder_floor(texts: list[str]) -> dict:
    """The least time the encoder's linear layers need for these texts on this CPU: every token (as far as the
    encoder's window) through each layer's dense matrix products (four hidden x hidden attention projections, the
    hidden x ffn and ffn x hidden feed-forward: for MiniLM-L6, 384 and 1536 over six layers, 21.2 MFLOP a token) at
    the fp32 GEMM rate torch reaches here on those shapes. Why: the scorer's time is almost all encoder, and the
    encoder's time almost all these products; when the floor alone is near or over the target, no change short of
    fewer or cheaper (int8) operations can meet it."""
    import torch

    from valuelex_utils.scoring import get_encoder

    enc = get_encoder()
    cfg = enc[0].auto_model.config
    h, f = int(cfg.hidden_size), int(cfg.intermediate_size)
    shapes = [(h, h)] * 4 + [(h, f), (f, h)]  # one layer's products, (inner, outer) per token
    window = int(enc.max_seq_length)
    tokens = sum(min(len(ids), window) for ids in enc.tokenizer(texts)["input_ids"])
    flop_per_token = cfg.num_hidden_layers * sum(2 * k * n for k, n in shapes)
    rates = {}
    for k, n in dict.fromkeys(shapes):
        a, b = torch.randn(3200, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        t, reps = time.perf_counter(), 20
        for _ in range(reps):
            a @ b
        rates[f"{k}x{n}"] = 2 * 3200 * k * n * reps / (time.perf_counter() - t) / 1e9
    seconds_per_token = cfg.num_hidden_layers * sum(2 * k * n / (rates[f"{k}x{n}"] * 1e9) for k, n in shapes)
    return {"tokens": int(tokens), "gflop": round(tokens * flop_per_token / 1e9, 1),
            "gemm_gflop_per_s": {k: round(v, 1) for k, v in rates.items()}, "torch_threads": torch.get_num_threads(),
            "linear_layers_floor_s": round(tokens * seconds_per_token, 1)}


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
