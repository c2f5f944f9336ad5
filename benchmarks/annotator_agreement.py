"""Agreement between two annotators of the same blind set (issue 14): how far a scorer's agreement with one annotator
is from the agreement the labels themselves allow.

Reads the first annotator's labels (the blind set) and a second annotator's labels of the same ids on the leaf
columns, derives each parent column from its children by the rubric's rule (`phi.with_dimensions`, on integers), and
prints QWK, exact agreement and Krippendorff's ordinal alpha per column, and their means over leaves and dimensions.

    python benchmarks/annotator_agreement.py [FIRST.csv SECOND.csv [SYSTEM]]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from valuelex_utils.scoring import phi, reliability  # noqa: E402
from valuelex_utils.systems import load_system  # noqa: E402

FORMER = phi.ANNOTATED_DIR / "former_blind"


def agreement(first: Path, second: Path, system_ref: str = "valuelex") -> dict:
    system = load_system(system_ref)
    a = pd.read_csv(first).set_index("id")
    b = pd.read_csv(second).set_index("id").loc[a.index]
    leaves, cols = system.leaves(), system.columns()
    derived = phi.with_dimensions(b[leaves].to_numpy(float), system)
    b = pd.DataFrame(derived.astype(int), columns=cols, index=a.index)
    table = reliability.agreement_table(a[cols].reset_index(drop=True), b.reset_index(drop=True), cols, on="__none__")
    pc = table["per_column"]
    per = {c: {"qwk": pc[c]["qwk"], "alpha": pc[c]["alpha_ordinal"], "exact": pc[c]["exact"]} for c in cols}
    dims = [c for c in cols if c not in leaves]
    mean = {level: {k: float(np.mean([per[c][k] for c in cs])) for k in ("qwk", "alpha", "exact")}
            for level, cs in (("leaves", leaves), ("dimensions", dims)) if cs}
    return {"first": str(first), "second": str(second), "n": len(a), "per_column": per, "mean": mean}


if __name__ == "__main__":
    args = sys.argv[1:] or [str(FORMER / "valuelex_blind2.csv"), str(FORMER / "valuelex_blind2_second_labels.csv")]
    print(json.dumps(agreement(Path(args[0]), Path(args[1]), *(args[2:3] or ["valuelex"])), indent=1, default=float))
