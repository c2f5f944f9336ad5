"""Stance spike (issue 14, session 19; a development look on spent data, never on a blind set): does a cross-encoder,
MiniLM fine-tuned on (column name: definition, stem + completion) pairs, read the DIRECTION of a stance (label 4-6
against 0-2) on a value family it was not trained on better than heads on the bi-encoder's vectors?

Why: phi reads what an answer is about, not whether it endorses or rejects it, and that is where most integer
agreement is lost (README, 'How good the scores are'). A reader that sees the value's text and the answer together is
the obvious remedy; none with a licence is on the package index, so this trains one and measures it first.

Pairs: every non-neutral (completion, leaf column) of phi's training sets and of the spent test sets of rounds 9-14
(the fifteenth round is never read). One family (valuelex, schwartz, mft) is left out and tested on (N_TEST pairs
sampled); the others train (N_TRAIN pairs, balanced as far as the rejections allow). Beside the cross-encoder (one
epoch, AdamW, linear warm-up and decay, seed 0): cosine of the completion to the column's markers, markers minus
opposites, a column-blind logistic probe on the completion's vector and a column-aware SBERT head on
[u, v, u*v, |u-v|], all on the same pairs. Writes outputs/bench/stance_spike_<family>.json, with the machine
(`_machine.machine_info`: CPU, commit, load) beside the timings.

Session 19, AMD EPYC 2 vCPU, torch 2.13.0+cpu, direction AUC cross-encoder / probe / head / cosine minus opposites:
Schwartz 0.752 / 0.717 / 0.713 / 0.552, ValueLex 0.938 / 0.920 / 0.871 / 0.650, MFT 0.881 / 0.855 / 0.834 / 0.616;
13-16 min to train, 0.015-0.035 s a pair to score. Not built into phi (its criterion: commit f1275bb).
Session 20, STANCE_PAIRS=1 BASELINES_ONLY=1 (criterion 7a1102f, result d301ae5): the 615 non-neutral rows of the
stance pairs added to the heads' training moved Schwartz's probe / head 0.717 / 0.713 -> 0.717 / 0.716: failed.

    TEST_FAMILY=schwartz python benchmarks/stance_spike.py   # also N_TRAIN, N_TEST, MAXLEN, LR
    STANCE_PAIRS=1 BASELINES_ONLY=1 python benchmarks/stance_spike.py   # the heads with and without the pairs
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from benchmarks._machine import machine_info, write_result  # noqa: E402
from valuelex_utils import embeddings  # noqa: E402
from valuelex_utils.scoring import phi  # noqa: E402
from valuelex_utils.systems import load_system  # noqa: E402

BLIND = ROOT / "tests" / "data" / "blind"
PAIRS_DIR = phi.ANNOTATED_DIR / "stance_pairs"
#: the unmeasured round: asserted never to be read
FIFTEENTH = {"valuelex_blind17.csv", "tolerance_blind.csv", "schwartz_stances_blind16.csv", "mft_blind9.csv"}
TEST_FAMILY = os.environ.get("TEST_FAMILY", "schwartz")
N_TRAIN = int(os.environ.get("N_TRAIN", "6000"))
N_TEST = int(os.environ.get("N_TEST", "2500"))
MAXLEN = int(os.environ.get("MAXLEN", "192"))
LR = float(os.environ.get("LR", "4e-5"))
#: add the stance pairs (valuelex_utils/data/annotated/stance_pairs, session 20) to every training split
STANCE_PAIRS = os.environ.get("STANCE_PAIRS", "0") == "1"
#: skip the cross-encoder: the zero-shot cosines and the two heads only (seconds, not minutes)
BASELINES_ONLY = os.environ.get("BASELINES_ONLY", "0") == "1"
BATCH = 16
OUT = ROOT / "outputs" / "bench" / f"stance_spike_{TEST_FAMILY}{'_pairs' if STANCE_PAIRS else ''}.json"


def family(ref: str) -> str:
    return ref if ref in ("valuelex", "schwartz", "mft") else "other"


def all_sets() -> list[tuple[str, object, str, pd.DataFrame]]:
    """(family, system, file, frame) of the training sets and the spent test sets of rounds 9-14."""
    out = [(family(ref), phi.training_system(ref), csv, pd.read_csv(phi.ANNOTATED_DIR / csv))
           for ref, csv in phi.TRAINING_SETS]
    spent = [("valuelex", "valuelex", f"valuelex_blind{i}.csv") for i in range(11, 17)]
    spent += [("schwartz", "schwartz", f"schwartz_stances_blind{i}.csv") for i in range(10, 16)]
    spent += [("mft", "mft", f"mft_blind{i}.csv") for i in range(3, 9)]
    spent += [("other", str(BLIND / f"{s}_system.yaml"), f"{s}_blind.csv")
              for s in ("autonomy", "humility", "harm", "creative", "equanimity", "generosity")]
    for fam, ref, csv in spent:
        assert csv not in FIFTEENTH
        out.append((fam, load_system(ref), csv, pd.read_csv(BLIND / csv)))
    return out


def pair_systems() -> dict[str, str]:
    """Each stance-pair file's name and its system (`stance_pairs/systems.yaml`)."""
    import yaml

    return yaml.safe_load((PAIRS_DIR / "systems.yaml").read_text(encoding="utf-8"))


def stance_pair_sets() -> list[tuple[str, object, str, pd.DataFrame]]:
    """The stance-pair files under their systems, as family "pairs" (never a test family)."""
    return [("pairs", phi.training_system(ref), f"{name}_pairs.csv", pd.read_csv(PAIRS_DIR / f"{name}_pairs.csv"))
            for name, ref in pair_systems().items()]


def pairs(sets: list[tuple[str, object, str, pd.DataFrame]] | None = None) -> pd.DataFrame:
    """One row per non-neutral (completion, leaf column): y = 1 for an endorsement (4-6), 0 for a rejection (0-2)."""
    rows = []
    for fam, system, csv, df in (all_sets() if sets is None else sets):
        df["stem"] = df["stem"].fillna("").astype(str)
        df["completion"] = df["completion"].fillna("").astype(str)
        for c in system.leaves():
            col = f"{c}: {system.definition(c)}"
            for stem, comp, lab in zip(df["stem"], df["completion"], df[c]):
                if lab != 3:
                    rows.append(dict(fam=fam, set=csv, column=c, col_text=col, markers=" ".join(system.markers(c)),
                                     opposites=" ".join(system.opposites(c)), answer=(stem + " " + comp).strip(),
                                     completion=comp, y=int(lab >= 4), label=int(lab)))
    return pd.DataFrame(rows)


def split(P: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    tr, te = P[P.fam != TEST_FAMILY], P[P.fam == TEST_FAMILY]
    neg, pos = tr[tr.y == 0], tr[tr.y == 1]
    k = min(N_TRAIN // 2, len(neg))
    tr = pd.concat([neg.sample(k, random_state=0), pos.sample(N_TRAIN - k, random_state=0)])
    return tr.sample(frac=1, random_state=1), te.sample(min(N_TEST, len(te)), random_state=2)


def baselines(tr: pd.DataFrame, te: pd.DataFrame) -> dict[str, float]:
    """Direction AUC of the zero-shot cosines and of two heads on the bi-encoder's vectors."""
    def vec(s: pd.Series) -> np.ndarray:
        return embeddings.embed(list(s))

    def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    def sbert(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.hstack([u, v, u * v, np.abs(u - v)])

    utr, ute, vtr, vte = vec(tr.completion), vec(te.completion), vec(tr.col_text), vec(te.col_text)
    mte, ote = vec(te.markers), vec(te.opposites)
    blind = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(utr, tr.y)
    aware = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)).fit(sbert(utr, vtr), tr.y)
    return {"cosine_markers": roc_auc_score(te.y, cos(ute, mte)),
            "cosine_markers_minus_opposites": roc_auc_score(te.y, cos(ute, mte) - cos(ute, ote)),
            "probe_column_blind": roc_auc_score(te.y, blind.predict_proba(ute)[:, 1]),
            "probe_column_aware_sbert_head": roc_auc_score(te.y, aware.predict_proba(sbert(ute, vte))[:, 1])}


def cross_encoder(tr: pd.DataFrame, te: pd.DataFrame) -> tuple[np.ndarray, float, float]:
    """Fine-tune the installed MiniLM with a one-logit head for one epoch; (test scores, train s, s per test pair)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    md = embeddings._model_dir()
    tok = AutoTokenizer.from_pretrained(md)
    model = AutoModelForSequenceClassification.from_pretrained(md, num_labels=1)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    steps = (len(tr) + BATCH - 1) // BATCH
    warm = steps // 10
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
    lossf = torch.nn.BCEWithLogitsLoss()

    def encode(a: list[str], b: list[str]) -> dict:
        return tok(a, b, truncation="only_second", max_length=MAXLEN, padding=True, return_tensors="pt")

    model.train()
    t1 = time.time()
    A, B, Y = tr.col_text.tolist(), tr.answer.tolist(), tr.y.to_numpy(np.float32)
    for s in range(steps):
        sl = slice(s * BATCH, (s + 1) * BATCH)
        loss = lossf(model(**encode(A[sl], B[sl])).logits.squeeze(-1), torch.from_numpy(Y[sl]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if s % 50 == 0:
            print(f"step {s}/{steps} loss {loss.item():.3f} {time.time() - t1:.0f}s", flush=True)
    train_s = time.time() - t1
    model.eval()
    t2 = time.time()
    order = np.argsort([len(x) for x in te.answer])
    A, B = te.col_text.to_numpy()[order].tolist(), te.answer.to_numpy()[order].tolist()
    with torch.no_grad():
        out = [model(**encode(A[s:s + 32], B[s:s + 32])).logits.squeeze(-1).numpy() for s in range(0, len(A), 32)]
    scores = np.empty(len(te))
    scores[order] = np.concatenate(out)
    return scores, train_s, (time.time() - t2) / len(te)


def main() -> None:
    t0 = time.time()
    tr, te = split(pairs())
    res: dict = {"machine": machine_info(llama=False), "test_family": TEST_FAMILY, "n_test": len(te),
                 "test_pos_rate": float(te.y.mean())}
    if STANCE_PAIRS:  # the heads without the pairs first, on the same split, then with them
        res["without_pairs"] = baselines(tr, te)
        extra = pairs(stance_pair_sets())
        res["n_pairs_added"], res["pairs_pos_rate"] = len(extra), float(extra.y.mean())
        tr = pd.concat([tr, extra]).sample(frac=1, random_state=1)
    print("train", len(tr), round(tr.y.mean(), 3), "test", len(te), round(te.y.mean(), 3), flush=True)
    res["n_train"] = len(tr)
    res.update(baselines(tr, te))
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items() if k != "machine"}, flush=True)
    if BASELINES_ONLY:
        res["seconds"] = round(time.time() - t0, 1)
        write_result(res, OUT)
        return
    scores, train_s, per_pair = cross_encoder(tr, te)
    res.update(train_s=round(train_s, 1), cross_encoder=roc_auc_score(te.y, scores),
               infer_s_per_pair=round(per_pair, 4))
    te = te.assign(xenc=scores)
    res["cross_encoder_by_set"] = {k: round(roc_auc_score(g.y, g.xenc), 3)
                                   for k, g in te.groupby("set") if g.y.nunique() == 2}
    res["seconds"] = round(time.time() - t0, 1)
    write_result(res, OUT)
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
