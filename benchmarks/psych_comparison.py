"""Side-by-side table of ValueLex and R's psych on the committed reference data sets (tests/data/psych/).

For each data set: K by each rule (psych: fa.parallel "pc" at the 95th percentile, VSS's MAP and VSS 1/2, the K of
lowest BIC among fa fits, Kaiser), then at ValueLex's chosen K (before min_words pruning, so both fit the same K):
Tucker congruence per factor and the fit indices. Prints Markdown; writes outputs/bench/psych_comparison.json.

Usage: python benchmarks/psych_comparison.py
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from valuelex_utils import factors as F  # noqa: E402 - after the repo root is on sys.path

DATA = ROOT / "tests" / "data" / "psych"


def psych_votes(ref: dict) -> dict:
    mp = np.array(ref["map"], float)
    bic = [f["bic"] for f in ref["fits"]]
    v1, v2 = np.array(ref["vss1"], float), np.array(ref["vss2"], float)
    return {"parallel": ref["k_parallel_pc"], "kaiser": int(np.sum(np.array(ref["eigenvalues"]) > 1)),
            "map": int(np.nanargmin(mp)) + 1, "vss1": int(np.nanargmax(v1)) + 1, "vss2": int(np.nanargmax(v2)) + 1,
            "bic": int(np.argmin(bic)) + 1}


def main() -> None:
    out = {}
    for name in [d["name"] for d in json.loads((DATA / "datasets.json").read_text())]:
        ref = json.loads((DATA / f"{name}.json").read_text())
        df = pd.read_csv(DATA / f"{name}.csv", index_col=0)
        t0 = time.perf_counter()
        res = F.fit_factors(df, transform=ref["transform"], max_k=len(ref["fits"]))
        secs = time.perf_counter() - t0
        ours = {k: res.k_votes.get(k) for k in ("parallel", "kaiser", "map", "vss1", "vss2", "bic")}
        ps = psych_votes(ref)
        k = res.k_before_pruning
        fixed = F.fit_factors(df, transform=ref["transform"], n_factors=k, max_k=len(ref["fits"]), pa_iter=5)
        f = ref["fits"][k - 1]
        Lr = np.array(f["loadings"], float).reshape(len(ref["words"]), k)
        L = F._align(fixed.loadings.to_numpy(), Lr)
        cong = (L * Lr).sum(0) / np.sqrt((L**2).sum(0) * (Lr**2).sum(0))
        fit = {c: (fixed.fit[c], f[c]) for c in ("chi2", "df", "rmsea", "rmsea_lower", "rmsea_upper", "tli", "bic",
                                                 "rmsr")}
        out[name] = {"n": ref["n"], "p": ref["p"], "transform": ref["transform"], "k_ours": ours, "k_psych": ps,
                     "k_chosen_after_pruning": res.n_factors, "k_compared": k, "congruence_min": float(cong.min()),
                     "fit_ours_psych": fit, "kmo": (res.kmo_overall, ref["kmo_overall"]),
                     "bartlett": (res.bartlett_chi2, ref["bartlett_chi2"]), "seconds_fit": round(secs, 2)}
        print(f"\n### {name} ({ref['n']} x {ref['p']}, transform {ref['transform']})\n")
        print("| rule | ValueLex K | psych K |\n|---|---|---|")
        for r, kk in ours.items():
            print(f"| {r} | {kk} | {ps[r]} |")
        print(f"\nchosen K (after min_words pruning): {res.n_factors}; compared at K = {k}: congruence min "
              f"{cong.min():.6f}; KMO {res.kmo_overall:.6f} / {ref['kmo_overall']:.6f}; Bartlett "
              f"{res.bartlett_chi2:.3f} / {ref['bartlett_chi2']:.3f}\n")
        print("| index | ValueLex | psych |\n|---|---|---|")
        for c, (a, b) in fit.items():
            print(f"| {c} | {a:.6g} | {b:.6g} |")
    Path(ROOT / "outputs" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "outputs" / "bench" / "psych_comparison.json").write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
