"""Does phi read stance? The shipped model on the stance pairs (issue 14; a diagnostic, nothing is fitted here).

Each pair of `valuelex_utils/data/annotated/stance_pairs/` shares a topic and most of its wording: row A endorses a
target value (labelled 5-6 on it), row B rejects it (0-2). A scorer that reads stance scores A above B on the
target; one that reads only the topic scores them alike. Reported, per file and overall, beside the zero-shot cosine
(completion to the centroid of the target's markers):

- pair accuracy: the share of pairs whose A row has the higher expected score on the target (a tie counts half);
- B read as rejected: the share of B rows whose expected target score is below neutral (3), and whose integer
  label is 0-2 as the annotator's is;
- rival: among B rows that champion a rival column of the same system, the share where that rival scores higher in
  B than in A;
- QWK and direction AUC (4-6 against 0-2) over every leaf cell of the files.

The texts are new, but phi was fitted on other annotated sets of these eight systems, so this is not a test of an
unseen system. Writes outputs/bench/stance_pairs_check.json with the machine.

    python benchmarks/stance_pairs_check.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import cohen_kappa_score, roc_auc_score  # noqa: E402

from benchmarks import scorer_validity as sv  # noqa: E402
from benchmarks._machine import machine_info, write_result  # noqa: E402
from benchmarks.stance_spike import PAIRS_DIR, pair_systems  # noqa: E402
from valuelex_utils.scoring import phi  # noqa: E402

OUT = ROOT / "outputs" / "bench" / "stance_pairs_check.json"


def scored(name: str, ref: str, model: phi.PhiModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, leaf cells): the rows with phi's expected score and label and the cosine on the target and the rival;
    every leaf cell's human label, phi's label and its expected score. Features and cosine as `scorer_validity`'s."""
    d = sv.Dataset(name, ref, PAIRS_DIR / f"{name}_pairs.csv")
    labels, expected = model.predict(d.X, d.system)
    cols = d.columns
    at = lambda m, names: [m[i, cols.index(c)] if c in cols else np.nan for i, c in enumerate(names)]  # noqa: E731
    rival = d.df["rival"].fillna("").astype(str)
    df = d.df.assign(file=name, exp_t=at(expected, d.df["target"]), lab_t=at(labels, d.df["target"]),
                     cos_t=at(d.baseline, d.df["target"]), exp_r=at(expected, rival), cos_r=at(d.baseline, rival))
    idx = [cols.index(c) for c in d.leaves]
    cells = pd.DataFrame({"human": d.Yleaf.ravel(), "label": labels[:, idx].ravel(),
                          "expected": expected[:, idx].ravel()})
    return df, cells


def pair_figures(df: pd.DataFrame) -> dict[str, float]:
    """Pair accuracy (phi and cosine), B read as rejected, and the rival's move, over the pairs of `df`."""
    a = df[df.side == "A"].set_index("pair_id")
    b = df[df.side == "B"].set_index("pair_id").loc[a.index]
    win = lambda x, y: float(np.mean((x > y) + 0.5 * (x == y)))  # noqa: E731
    own = b["exp_r"].notna().to_numpy()
    return {"pairs": int(len(a)), "pair_accuracy": win(a.exp_t.to_numpy(), b.exp_t.to_numpy()),
            "pair_accuracy_cosine": win(a.cos_t.to_numpy(), b.cos_t.to_numpy()),
            "b_expected_below_3": float(np.mean(b.exp_t < 3)), "b_label_0_2": float(np.mean(b.lab_t <= 2)),
            "a_label_4_6": float(np.mean(a.lab_t >= 4)), "rival_pairs": int(own.sum()),
            "rival_up_in_b": win(b.exp_r.to_numpy()[own], a.exp_r.to_numpy()[own]) if own.any() else None,
            "rival_up_in_b_cosine": win(b.cos_r.to_numpy()[own], a.cos_r.to_numpy()[own]) if own.any() else None}


def cell_figures(cells: pd.DataFrame) -> dict[str, float]:
    """QWK of the integer labels and direction AUC of the expected scores over every leaf cell."""
    d = cells[cells.human != 3]
    return {"cells": int(len(cells)), "qwk": float(cohen_kappa_score(cells.human, cells.label, weights="quadratic")),
            "direction_auc": float(roc_auc_score(d.human >= 4, d.expected))}


def main() -> None:
    start = machine_info(llama=False)
    model = phi.shipped_model()
    if model is None:
        raise SystemExit("the shipped phi model does not match the training files: refit it (phi.ship_model())")
    rows, cells, per_file = [], [], {}
    for name, ref in pair_systems().items():
        df, c = scored(name, ref, model)
        per_file[name] = {**pair_figures(df), **cell_figures(c)}
        rows.append(df)
        cells.append(c)
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in per_file[name].items()}, flush=True)
    overall = {**pair_figures(pd.concat(rows)), **cell_figures(pd.concat(cells))}
    print("overall", {k: round(v, 3) if isinstance(v, float) else v for k, v in overall.items()})
    write_result({"code_version": phi.CODE_VERSION, "overall": overall, "per_file": per_file,
                  "machine": start}, OUT)


if __name__ == "__main__":
    main()
