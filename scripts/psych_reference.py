"""Write the psych reference outputs under tests/data/psych/ (commit them; tests compare against them without R).

Data sets: psych's `bfi` (25 Big Five items, complete cases; Likert, no transform), the default run's matrix
(outputs/default/matrix.csv as committed under tests/data/psych/default_matrix.csv; log1p, ValueLex's default), and a
planted count structure (`tests.support.planted`, seeded; log1p). Then `Rscript scripts/psych_reference.R` runs psych
on each and on the 2,000 random 2x2 tables of benchmarks/tetrachoric_error.py.

Usage: python scripts/psych_reference.py [--default-matrix outputs/default/matrix.csv]
Needs R with psych, GPArotation and jsonlite (scripts/setup.sh installs them from Debian when it can).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from tests.support.planted import make_planted  # noqa: E402 - after the repo root is on sys.path

DIR = ROOT / "tests" / "data" / "psych"
PLANTED = {"n_respondents": 400, "n_factors": 4, "words_per_factor": 6, "n_noise_words": 16, "model": "poisson",
           "factor_corr": 0.3, "seed": 2026}
DATASETS = [{"name": "bfi", "transform": "none", "maxk": 8},
            {"name": "default_matrix", "transform": "log1p", "maxk": 14},
            {"name": "planted", "transform": "log1p", "maxk": 8}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--default-matrix", default=None, help="copy this matrix.csv to default_matrix.csv first")
    args = ap.parse_args()
    DIR.mkdir(parents=True, exist_ok=True)
    if args.default_matrix:
        shutil.copyfile(args.default_matrix, DIR / "default_matrix.csv")
    df, truth = make_planted(**PLANTED)
    df.to_csv(DIR / "planted.csv", lineterminator="\n")
    (DIR / "planted_truth.json").write_text(json.dumps({"params": PLANTED, "truth": truth}, indent=1) + "\n")
    from tetrachoric_error import random_tables

    np.savetxt(DIR / "tetrachoric_tables.csv", random_tables(), fmt="%d", delimiter=",", header="n11,n10,n01,n00",
               comments="")
    (DIR / "datasets.json").write_text(json.dumps(DATASETS, indent=1) + "\n")
    subprocess.run(["Rscript", str(ROOT / "scripts" / "psych_reference.R"), str(DIR)], check=True)
    print(f"wrote psych references to {DIR}")


if __name__ == "__main__":
    main()
