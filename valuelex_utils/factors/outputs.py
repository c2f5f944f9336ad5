"""Writing step 3's products: factors.json, loadings.csv, factor scores and scree.html."""
from __future__ import annotations

import json
import os
from pathlib import Path

from valuelex_utils.errors import UserError
from valuelex_utils.rundir import atomic_write_text as _atomic_write

from .figures import scree_figure
from .result import FactorResult


def write_factor_outputs(result: FactorResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write factors.json, loadings.csv (word x factor_k pattern loadings), scree.html (plotly.js inlined, opens
    offline) and, when K >= 1, scores_regression.csv and scores_bartlett.csv (factor scores per matrix row) into
    `out_dir`; returns their paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path exists and is not a directory: {out}")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"factors": out / "factors.json", "loadings": out / "loadings.csv", "scree": out / "scree.html"}
    _atomic_write(paths["factors"], json.dumps(result.to_json_dict(), indent=2, allow_nan=False) + "\n")
    _atomic_write(paths["loadings"], result.loadings.to_csv(float_format="%.6f", lineterminator="\n"))
    for how, scores in result.scores.items():  # one row per respondent (row of the matrix), one column per factor
        paths[f"scores_{how}"] = out / f"scores_{how}.csv"
        _atomic_write(paths[f"scores_{how}"], scores.to_csv(float_format="%.6f", lineterminator="\n"))
    html = scree_figure(result).to_html(include_plotlyjs=True, full_html=True)
    _atomic_write(paths["scree"], html)
    return paths
