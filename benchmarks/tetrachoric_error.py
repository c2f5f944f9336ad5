"""Error of `factors.tetrachoric_from_table` on 2,000 random 2x2 tables against an independent reference.

Reference: thresholds from the margins and rho by scipy's `brentq` on `scipy.stats.multivariate_normal.cdf`
(a different bivariate-normal CDF -- Genz's algorithm -- and a different root finder from the module's Owen's-T Newton
iteration). Zero cells get the same 0.5 correction in both. Tables: see `random_tables` (sparse and lopsided tables,
the kind word-use data gives, are frequent). Optional: `--psych FILE.json` adds psych's values
(tests/data/psych/tetrachoric.json, written by scripts/psych_reference.R) for the same tables.

Usage: python benchmarks/tetrachoric_error.py [--out outputs/bench/tetrachoric_error.json] [--tables FILE.csv]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from valuelex_utils import factors as F


def random_tables(n_tables: int = 2000, seed: int = 2026) -> np.ndarray:
    """(n_tables, 4) cell counts n11, n10, n01, n00, every variable non-constant. Half are samples of a bivariate
    normal (n 20..2,000 log-uniform, marginal rates 1%..99%, rho -0.95..0.95); half have independent cells drawn
    uniformly from 0..m with m log-uniform in 3..1,000 (lopsided tables with zero and tiny cells)."""
    rng = np.random.default_rng(seed)
    out: list[list[float]] = []
    while len(out) < n_tables:
        if len(out) % 2 == 0:
            n = int(np.exp(rng.uniform(np.log(20), np.log(2000))))
            rho = rng.uniform(-0.95, 0.95)
            p1, p2 = rng.uniform(0.01, 0.99, 2)
            z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
            x1 = z[:, 0] < stats.norm.ppf(p1)
            x2 = z[:, 1] < stats.norm.ppf(p2)
            t = [np.sum(x1 & x2), np.sum(x1 & ~x2), np.sum(~x1 & x2), np.sum(~x1 & ~x2)]
        else:
            m = int(np.exp(rng.uniform(np.log(3), np.log(1000))))
            t = rng.integers(0, m + 1, 4).tolist()
        a, b, c, d = t
        if min(a + b, c + d, a + c, b + d) > 0:
            out.append([float(x) for x in t])
    return np.array(out)


def reference(table: np.ndarray, correction: float = 0.5) -> float:
    """rho solving Phi2(t1, t2, rho) = n11 / N with scipy's Genz CDF and brentq (nan for a constant variable)."""
    a, b, c, d = [x if x > 0 else correction for x in table]
    n = a + b + c + d
    h, k = stats.norm.ppf((a + b) / n), stats.norm.ppf((a + c) / n)
    f = lambda r: stats.multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf([h, k]) - a / n
    lo, hi = -0.999999, 0.999999
    if f(lo) > 0:
        return -1.0
    if f(hi) < 0:
        return 1.0
    return float(optimize.brentq(f, lo, hi, xtol=1e-10))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="outputs/bench/tetrachoric_error.json")
    ap.add_argument("--tables", default=None, help="also write the tables as CSV (input for the psych script)")
    ap.add_argument("--psych", default=None, help="tests/data/psych/tetrachoric.json: psych's rho for the same tables")
    args = ap.parse_args()
    tables = random_tables()
    if args.tables:
        Path(args.tables).parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(args.tables, tables, fmt="%d", delimiter=",", header="n11,n10,n01,n00", comments="")
    t0 = time.perf_counter()
    ours = np.array([F.tetrachoric_from_table(*t) for t in tables])
    t_ours = time.perf_counter() - t0
    ref = np.array([reference(t) for t in tables])
    err = np.abs(ours - ref)
    worst = int(np.argmax(err))
    summary = {
        "n_tables": len(tables),
        "n_err_gt_1e-6": int(np.sum(err > 1e-6)),
        "n_err_gt_0.01": int(np.sum(err > 0.01)),
        "max_abs_error": float(err.max()),
        "median_abs_error": float(np.median(err)),
        "worst_table": tables[worst].astype(int).tolist(),
        "worst_ours": float(ours[worst]),
        "worst_reference": float(ref[worst]),
        "seconds_ours": round(t_ours, 3),
    }
    if args.psych:
        ps = np.array(json.loads(Path(args.psych).read_text())["rho"], float)
        e2 = np.abs(ours - ps)
        summary["vs_psych"] = {"n_err_gt_0.001": int(np.sum(e2 > 1e-3)), "n_err_gt_0.01": int(np.sum(e2 > 0.01)),
                               "max_abs_error": float(np.nanmax(e2)), "median_abs_error": float(np.nanmedian(e2)),
                               "psych_vs_reference_max": float(np.nanmax(np.abs(ps - ref)))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
