"""The run dir layout: one module owns every path a run reads or writes (DESIGN.md, "Data flow and run dir").

Data flows one way, 01 -> 07, through these files; no notebook reaches into another's variables.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temp file and a rename, so a killed run never leaves a half-written product or manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def at(cls, path: str | Path) -> "RunDir":
        root = Path(path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    # raw data (append-only)
    @property
    def responses(self) -> Path:
        return self.root / "responses.jsonl"

    @property
    def completions_raw(self) -> Path:
        return self.root / "completions.jsonl"

    @property
    def calls(self) -> Path:
        return self.root / "calls.jsonl"

    # step products
    elicitation = property(lambda self: self.root / "elicitation.parquet")
    descriptors = property(lambda self: self.root / "descriptors.parquet")
    lexicon = property(lambda self: self.root / "lexicon.csv")
    matrix = property(lambda self: self.root / "matrix.csv")
    factors_dir = property(lambda self: self.root)
    factors_json = property(lambda self: self.root / "factors.json")
    loadings = property(lambda self: self.root / "loadings.csv")
    taxonomy = property(lambda self: self.root / "taxonomy.yaml")
    clusters = property(lambda self: self.root / "clusters.csv")
    completions = property(lambda self: self.root / "completions.parquet")
    scores = property(lambda self: self.root / "scores.parquet")
    profiles = property(lambda self: self.root / "value_profiles.csv")
    reliability = property(lambda self: self.root / "reliability.json")
    comparison = property(lambda self: self.root / "comparison.csv")
    manifest = property(lambda self: self.root / "manifest.json")
    params_copy = property(lambda self: self.root / "params.yaml")
    notebooks = property(lambda self: self.root / "notebooks")
    report = property(lambda self: self.root / "report")
    figures = property(lambda self: self.root / "figures")

    def require(self, path: Path, step: str) -> Path:
        """A product of an earlier step, or a clear error naming the step that makes it."""
        if not path.exists():
            from .errors import UserError

            raise UserError(f"{path} is missing: run step {step} first (valuelex run --steps {step})")
        return path
