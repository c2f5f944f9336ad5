"""Per-op profile of the embedded models' decoding: which ggml kernels the CPU time goes to, single stream against
batched, side by side on both models (issue 19: find where the time goes before choosing a fix).

For each model and each load (`raw`: llama-cpp-python's own single stream; `batched`: B concurrent requests through
LiteLLM and the batched engine), `profile_batched.py --seconds` keeps that load going and `perf record` samples the
process (all its threads) for `--sample` seconds; samples are summed per symbol and grouped into kinds of work
(matrix products, quantising activations, attention, norms, OpenMP waiting, Python, ...). Needs Linux `perf`
(Debian's `linux-perf`); nothing is written if it is missing.

    python benchmarks/perf_ops.py [--models smollm2-135m-instruct gemma-3-270m] [--batch 16] [--sample 20] [--out outputs/bench/perf_ops.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._machine import machine_info, write_result  # noqa: E402

# symbol pattern -> kind of work (first match wins); the names are ggml's CPU kernels and the libraries around them
KINDS = [
    (r"^ggml_(vec_dot|gemv|gemm)_|^ggml_compute_forward_mul_mat|sgemm|tinyBLAS|^ggml_vec_mad", "matmul kernels"),
    (r"^(quantize_row|ggml_quantize|ggml_cpu_fp32_to|ggml_fp32_to|ggml_cpu_fp16_to)", "quantise activations"),
    (r"flash_attn|soft_max|ggml_vec_max|ggml_vec_soft|ggml_v_expf|expf", "attention (softmax, flash-attn)"),
    (r"rms_norm|ggml_compute_forward_norm", "norms"),
    (r"rope", "rope"),
    (r"ggml_compute_forward_(add|mul|silu|gelu|glu|swiglu|geglu|scale|cpy|dup|get_rows|set_rows|cont)|ggml_vec_(add|mul|silu|gelu|swiglu|cpy|scale)",
     "elementwise, copies, get/set rows"),
    (r"ggml_barrier|ggml_graph_compute|gomp|GOMP|omp_", "threads: barriers, OpenMP"),
    (r"^llama_sampler|sampler|llama_get_logits|^_ZN.*sampl", "sampling"),
    (r"^_Py|^Py|_PyEval|^PyEval|python", "Python interpreter"),
]


def kind_of(symbol: str, dso: str) -> str:
    for pattern, kind in KINDS:
        if re.search(pattern, symbol):
            return kind
    if "libgomp" in dso:
        return "threads: barriers, OpenMP"
    if dso.startswith("libggml-cpu") and symbol.startswith("0x"):
        # the wheel is stripped: functions ggml does not export (llamafile's tinyBLAS, repacked GEMMs) show as
        # addresses; the ones sampled most, disassembled, are AVX2 int8 dot products (vpmaddubsw, vpmaddwd, vfmadd)
        return "ggml-cpu, unexported (int8 GEMM by its instructions)"
    if "python" in dso or dso.endswith(".so") and "cpython" in dso:
        return "Python interpreter"
    if "kernel" in dso:
        return "kernel (syscalls, page faults)"
    return "other"


def sample(model: str, hold: str, batch: int, seconds: float, tmp: Path) -> dict[str, Any]:
    """perf samples of one model under one load: {"kinds": {kind: share}, "top": [[symbol, dso, share], ...]}."""
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "profile_batched.py"), "--models", model,
                             "--rounds", "1", "--batch", str(batch), "--seconds", str(seconds + 30), "--hold", hold,
                             "--out", str(tmp / f"{model}-{hold}.json")],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    rates = ""
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "round 1" in line:
                rates = line.strip()
            if line.startswith("pid "):
                break
        data = tmp / f"{model}-{hold}.data"
        subprocess.run(["perf", "record", "-q", "-F", "499", "-p", str(proc.pid), "-o", str(data), "--", "sleep",
                        str(seconds)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        proc.kill()
        proc.wait()
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso,sym",
                             "-F", "overhead,dso,sym"], capture_output=True, text=True, check=True).stdout
    per_symbol: Counter[tuple[str, str]] = Counter()
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[^\]]*\]\s+(.+?)\s*$", line)
        if m:
            per_symbol[(m.group(3), m.group(2))] += float(m.group(1))
    kinds: Counter[str] = Counter()
    for (symbol, dso), share in per_symbol.items():
        kinds[kind_of(symbol, dso)] += share
    return {"rates": rates, "kinds": {k: round(v, 1) for k, v in kinds.most_common()},
            "top": [[s, d, round(v, 1)] for (s, d), v in per_symbol.most_common(15)]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=["smollm2-135m-instruct", "gemma-3-270m"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--sample", type=float, default=20.0, help="seconds of perf sampling per model and load")
    p.add_argument("--out", default=str(REPO / "outputs" / "bench" / "perf_ops.json"))
    a = p.parse_args(argv)
    if not shutil.which("perf"):
        raise SystemExit("perf_ops: Linux `perf` is not installed (Debian: apt install linux-perf)")
    result: dict[str, Any] = {"machine": machine_info(), "batch": a.batch, "sample_s": a.sample, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models:
            result["models"][model] = {hold: sample(model, hold, a.batch, a.sample, Path(tmp))
                                       for hold in ("raw", "batched")}
            print(json.dumps({model: {h: v["kinds"] for h, v in result["models"][model].items()}}), flush=True)
    write_result(result, a.out)


if __name__ == "__main__":
    main()
