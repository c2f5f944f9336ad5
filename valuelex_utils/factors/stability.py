"""How stable are K and the word groups when respondents are resampled (`bootstrap_stability`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from valuelex_utils.errors import UserError

from .efa import fit_each, fit_factors
from .matrix import _validate_counts
from .options import RESAMPLE_FIT, _one_blas_thread


@_one_blas_thread
def bootstrap_stability(df: pd.DataFrame, n_boot: int = 50, seed: int = 0, **fit_opts: Any) -> dict[str, Any]:
    """How stable are K and the word groups when respondents are resampled?

    Refits on `n_boot` bootstrap resamples of respondents (K re-chosen each time unless `n_factors` is fixed) and
    compares each fit's word assignment with the full-data fit by the adjusted Rand index over the words assigned
    (not -1) in both: factor labels are arbitrary, so ARI rather than label agreement. Words that are constant in a
    resample are left out of that fit.

    Returns a dict: k_full, k_values (list), k_counts {K: count}, ari (list, NaN when < 2 common words), ari_mean,
    ari_median, ari_q05, ari_q95, assigned_rate {word: share of resamples where the word was assigned},
    same_group_rate {word: share of resamples in which the word's full-fit group partners that were assigned stayed
    in its group}, n_failed (resamples that could not be fitted).
    """
    from sklearn.metrics import adjusted_rand_score

    if n_boot < 1:
        raise UserError("bootstrap_stability: n_boot must be >= 1")
    data = _validate_counts(df, source="matrix", allow_negative=True)
    fit_seed = fit_opts.pop("seed", seed)
    full = fit_factors(data, seed=fit_seed, **fit_opts)
    fit_opts = {"max_k": 0, **fit_opts, **RESAMPLE_FIT}  # K and groups only
    words = list(full.assignment)
    ss = np.random.SeedSequence(seed)
    k_values: list[int] = []
    aris: list[float] = []
    assigned = {w: 0 for w in words}
    same = {w: [0, 0] for w in words}
    n_failed = 0
    n = data.shape[0]
    samples = []
    for child in ss.spawn(n_boot):
        sample = data.iloc[np.random.default_rng(child).integers(0, n, n)]
        samples.append(sample.loc[:, sample.std(axis=0, ddof=0) > 0])
    for res in fit_each(samples, seed=fit_seed, **fit_opts):  # side by side, results as in a loop
        if isinstance(res, UserError):
            n_failed += 1
            continue
        k_values.append(res.n_factors)
        common = [w for w in words if full.assignment[w] >= 0 and res.assignment.get(w, -1) >= 0]
        for w in words:
            if res.assignment.get(w, -1) >= 0:
                assigned[w] += 1
        if len(common) >= 2:
            a = [full.assignment[w] for w in common]
            b = [res.assignment[w] for w in common]
            aris.append(float(adjusted_rand_score(a, b)))
            for w in common:
                partners = [v for v in common if v != w and full.assignment[v] == full.assignment[w]]
                if partners:
                    same[w][1] += 1
                    same[w][0] += all(res.assignment[v] == res.assignment[w] for v in partners)
        else:
            aris.append(float("nan"))
    n_ok = max(len(k_values), 1)
    arr = np.array(aris, float)
    finite = arr[np.isfinite(arr)]
    counts: dict[int, int] = {}
    for kv in k_values:
        counts[kv] = counts.get(kv, 0) + 1
    return {
        "n_boot": n_boot,
        "n_failed": n_failed,
        "k_full": full.n_factors,
        "k_values": k_values,
        "k_counts": dict(sorted(counts.items())),
        "ari": aris,
        "ari_mean": float(finite.mean()) if finite.size else float("nan"),
        "ari_median": float(np.median(finite)) if finite.size else float("nan"),
        "ari_q05": float(np.percentile(finite, 5)) if finite.size else float("nan"),
        "ari_q95": float(np.percentile(finite, 95)) if finite.size else float("nan"),
        "assigned_rate": {w: assigned[w] / n_ok for w in words},
        "same_group_rate": {w: (s[0] / s[1] if s[1] else float("nan")) for w, s in same.items()},
        "full_assignment": dict(full.assignment),
    }
