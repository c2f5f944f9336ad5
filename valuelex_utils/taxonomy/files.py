"""Step 4's files: taxonomy.yaml and clusters.csv (write, read), and reading step 3's factors.json / loadings.csv."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from valuelex_utils.errors import UserError
from valuelex_utils.rundir import atomic_write_text as _atomic_write

CLUSTER_COLUMNS = ["word", "factor", "dimension", "subcluster", "subdimension", "silhouette", "umap_x", "umap_y",
                   "loading"]


def write_taxonomy(taxonomy: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    header = ("# ValueLex taxonomy reconstructed by a run (same schema as params/taxonomies/*.yaml; usable with\n"
              "# `valuelex score --system <this file>`). markers = the words of each (sub)dimension, most central "
              "first.\n")
    text = yaml.safe_dump(taxonomy, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    return _atomic_write(Path(path), header + text)


def write_clusters(clusters: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    missing = [c for c in CLUSTER_COLUMNS if c not in clusters.columns]
    if missing:
        raise UserError(f"clusters table lacks column(s) {', '.join(missing)}")
    return _atomic_write(Path(path), clusters[CLUSTER_COLUMNS].to_csv(index=False, float_format="%.6g",
                                                                        lineterminator="\n"))


def load_clusters(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a clusters.csv (empty dimension/subdimension -> None)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"clusters file not found: {p}")
    try:
        df = pd.read_csv(p, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - any parse problem is bad input
        raise UserError(f"{p}: not a readable CSV ({type(exc).__name__})") from None
    missing = [c for c in CLUSTER_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{p}: missing column(s) {', '.join(missing)}")
    df["word"] = df["word"].astype(str)
    for c in ("dimension", "subdimension"):
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def read_factor_outputs(factors_json: str | os.PathLike[str], loadings_csv: str | os.PathLike[str] | None = None
                        ) -> tuple[dict[str, int], pd.DataFrame | None, dict[str, Any]]:
    """(assignment, loadings, meta) from step 3's factors.json and loadings.csv; meta holds n_factors, method, ..."""
    p = Path(factors_json)
    if not p.is_file():
        raise UserError(f"{p} is missing: run step 03 first (valuelex run --steps 03)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{p}: not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("assignment"), dict):
        raise UserError(f"{p}: no 'assignment' mapping")
    assignment = {str(w): int(a) for w, a in data["assignment"].items()}
    loadings = None
    if loadings_csv is not None and Path(loadings_csv).is_file():
        loadings = pd.read_csv(loadings_csv, index_col=0)
        loadings.index = loadings.index.astype(str)
    meta = {k: data[k] for k in ("n_factors", "method", "k_rule", "rotation", "corr", "threshold") if k in data}
    return assignment, loadings, meta
