"""The offline `embedding` scorer: the column-agnostic model of `phi` behind the `Scorer` interface, with the fitted
model shipped in the package (or fitted and cached at first use) and its reliability as measured by
`benchmarks/scorer_validity.py` (`data/phi_validity.json`)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..env import cache_root
from ..errors import UserError
from ..systems import load_system
from . import phi
from . import reliability as R
from .annotated import PACKAGE_DATA
from .registry import Scorer, check_frame, register

#: what benchmarks/scorer_validity.py measured for the fitted model (read by `EmbeddingScorer.reliability`)
VALIDITY_FILE = PACKAGE_DATA / "phi_validity.json"


def _cache_dir() -> Path:
    return cache_root() / "scorers"


@register
class EmbeddingScorer(Scorer):
    """Offline scorer for any value system: MiniLM embeddings of the completion against each column's definition,
    marker words and opposites, plus lexical direction cues, mapped to 0..6 by one model (`phi`) fitted on every
    shipped annotated set pooled. A system needs no annotated data of its own.

    The fitted model ships in the package (`data/phi_model.joblib`, 810 KB, written by `phi.ship_model`); when the
    training files or scikit-learn differ from what it was fitted with, a model is fitted at first use (minutes on 2
    cores: every training completion is embedded) and cached with joblib under `$VALUELEX_CACHE_DIR/scorers` (default
    `~/.cache/valuelex/scorers`), keyed by a hash of the code version and every training file.
    `output="int"` gives integer scores 0..6 (cut points chosen for QWK); `output="expected"` the expected score (a
    float in 0..6, better for averaging into profiles).
    """

    name = "embedding"

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, output: str = "int",
                 use_cache: bool = True, **_: Any) -> None:
        if output not in ("int", "expected"):
            raise UserError("output must be 'int' or 'expected'")
        self.output, self.use_cache = output, use_cache
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model: Any = None
        self.last_expected: pd.DataFrame | None = None

    def model_for(self, system: Any = None) -> Any:
        """The fitted `phi.PhiModel` (one for every system: `system` is accepted for the old call shape)."""
        if self._model is not None:
            return self._model
        import joblib  # deferred: only when no model is loaded yet

        model = phi.shipped_model()
        path = None if model is not None else (self.cache_dir or _cache_dir()) / f"phi-{phi.training_digest()}.joblib"
        if model is None and self.use_cache and path.is_file():
            model = phi.load_model(path)  # None for a corrupt or incompatible cache file: refit
        if model is None:  # no packaged model for these training files: fit one and cache it
            model = phi.fit()
            if self.use_cache:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".tmp{os.getpid()}")
                    joblib.dump(model.state(), tmp)
                    os.replace(tmp, path)
                except OSError:
                    pass
        self._model = model
        return model

    def score(self, df: pd.DataFrame, system: Any) -> pd.DataFrame:
        system = load_system(system)
        data = check_frame(df)
        cols = system.columns()
        out = pd.DataFrame({"id": data["id"].to_numpy()})
        empty = (data["completion"].str.strip() == "").to_numpy()
        lab = np.full((len(data), len(cols)), np.nan)
        ev = np.full((len(data), len(cols)), np.nan)
        if (~empty).any():
            sub = data[~empty]
            feats = phi.pair_features(sub["stem"].tolist(), sub["completion"].tolist(), system)
            lab[~empty], ev[~empty] = self.model_for(system).predict(feats, system)
        vals = lab if self.output == "int" else np.round(ev, 3)
        for j, c in enumerate(cols):
            out[c] = pd.array(vals[:, j], dtype="Int64") if self.output == "int" else vals[:, j]
        self.last_expected = pd.concat([out[["id"]], pd.DataFrame(np.round(ev, 3), columns=cols)], axis=1)
        return out

    def reliability(self, system: Any) -> dict[str, Any]:
        """Agreement with human labels as measured by `benchmarks/scorer_validity.py` (shipped in
        `data/phi_validity.json`): cross-validated on the system's own annotated sets for a built-in system, and
        for any other system the leave-one-system-out figures, the best available estimate for a system the model
        has never seen."""
        system = load_system(system)
        try:
            shipped = json.loads(VALIDITY_FILE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shipped = {}
        if shipped.get("training_digest") != phi.training_digest():
            return {"note": f"no validity figures for this model ({VALIDITY_FILE.name} is missing or was computed "
                            "for other training data): run benchmarks/scorer_validity.py --ship"}
        key = Path(system.path).stem
        for name, table in (shipped.get("in_system") or {}).items():
            if name == key and all(c in table.get("per_column", {}) for c in system.columns()):
                return {**table, "source": f"{VALIDITY_FILE.name} ({shipped.get('code_version')})"}
        return {"note": "this value system has no annotated set: the column-agnostic model was fitted on the shipped "
                        "systems only; left-out systems measured "
                        + ", ".join(f"{s} mean AUC {v:.2f}" for s, v in (shipped.get("loso_auc") or {}).items())}

    def measure_reliability(self, df: pd.DataFrame, system: Any, scores: pd.DataFrame, *, extra: Mapping[str, Any],
                            **_: Any) -> dict[str, Any]:
        """The cross-validated agreement with the annotated set (`reliability`) and the fitted model's description."""
        system = load_system(system)
        return R.reliability_report(system=system, scorer=self.name, judge=None,
                                    against_annotated=self.reliability(system), scores=scores,
                                    extra={**extra, "model": self.model_for(system).meta})
