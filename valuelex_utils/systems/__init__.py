"""Value systems (taxonomies): the paper's own (`valuelex`), Schwartz's basic values and the five moral foundations.

A value system is a YAML file::

    name: valuelex
    title: ...
    source: ...
    dimensions:
      - name: Competence
        definition: one line
        markers: [accuracy, efficiency, ...]
        extra_markers: [...]      # optional, more marker words
        opposites: [...]          # optional, words/phrases that conflict with the value
        subdimensions:            # may be empty (MFT): then the dimension itself is a leaf
          - name: Self-Competent
            definition: ...
            markers: [...]
            opposites: [...]      # optional

The built-in systems are the YAML files of this folder, shipped as package data (an installed package finds them):
`load_system("valuelex" | "schwartz" | "mft")` reads `valuelex_utils/systems/<name>.yaml`; `load_system(path)` reads
any file of the same schema (a run's own `taxonomy.yaml`). A run taxonomy may name its marker words `words` instead of
`markers`; both are accepted. Every problem is a `UserError` naming the bad field.

Adding a built-in value system = dropping `NAME.yaml` here (and, to calibrate the LLM judge's reliability check and
few-shot examples, its labelled completions as `data/annotated/NAME.csv`): the name is then accepted by
`scoring.systems` in the params, `valuelex score --system` and every loader; nothing else lists the systems.
The shipped YAMLs' bytes are part of the phi model's training digest (`scoring.phi.training_digest`): editing one,
even a comment, makes the packaged model stale until `phi.ship_model()` refits it.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..inputs import read_yaml_file

SYSTEMS_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = SYSTEMS_DIR.parent
REPO_ROOT = PACKAGE_DIR.parent
#: where the built-in systems' YAML files are (they lived under params/taxonomies/ before they became package data)
TAXONOMY_DIR = SYSTEMS_DIR
#: the paper's own published system: the default beside a run's own, and listed first
PAPER_SYSTEM = "valuelex"


def _builtin_files() -> dict[str, str]:
    """name -> YAML file of every built-in system: each `*.yaml` of this folder, named by its file name; the
    paper's system first, then the others alphabetically."""
    names = sorted(p.stem for p in SYSTEMS_DIR.glob("*.yaml"))
    return {n: f"{n}.yaml" for n in sorted(names, key=lambda n: (n != PAPER_SYSTEM, n))}


#: Built-in systems: name -> YAML file in valuelex_utils/systems/.
BUILTIN_SYSTEMS = _builtin_files()
#: Column names that would clash with the score CSV's own columns.
RESERVED = {"id", "stem", "stem_id", "completion", "source", "judge"}


@dataclass(frozen=True)
class Column:
    """One scored column: a dimension or a subdimension."""

    name: str
    definition: str
    markers: tuple[str, ...]
    opposites: tuple[str, ...] = ()
    parent: str | None = None  # None for a dimension
    children: tuple[str, ...] = ()  # subdimension names, for a dimension

    @property
    def is_dimension(self) -> bool:
        return self.parent is None

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclass(frozen=True, eq=False)
class ValueSystem:
    """A validated value system. `columns()` is the output column order: each dimension, then its subdimensions."""

    name: str
    title: str
    source: str
    path: Path
    by_name: dict[str, Column] = field(repr=False)
    order: tuple[str, ...] = ()
    digest: str = ""  # sha256 of the YAML text: part of every cache key

    def columns(self) -> list[str]:
        """Dimension and subdimension names in YAML order (dimension first, then its subdimensions)."""
        return list(self.order)

    def dimensions(self) -> list[str]:
        return [c for c in self.order if self.by_name[c].is_dimension]

    def subdimensions(self) -> list[str]:
        return [c for c in self.order if not self.by_name[c].is_dimension]

    def leaves(self) -> list[str]:
        """Subdimensions, and dimensions that have none (MFT's foundations)."""
        return [c for c in self.order if self.by_name[c].is_leaf]

    def parent(self, name: str) -> str | None:
        return self.column(name).parent

    def parents(self) -> dict[str, str]:
        """Subdimension -> its dimension."""
        return {c: self.by_name[c].parent for c in self.subdimensions()}  # type: ignore[misc]

    def children(self, name: str) -> list[str]:
        return list(self.column(name).children)

    def definition(self, name: str) -> str:
        return self.column(name).definition

    def definitions(self) -> dict[str, str]:
        return {c: self.by_name[c].definition for c in self.order}

    def markers(self, name: str) -> list[str]:
        return list(self.column(name).markers)

    def opposites(self, name: str) -> list[str]:
        return list(self.column(name).opposites)

    def column(self, name: str) -> Column:
        try:
            return self.by_name[name]
        except KeyError:
            raise UserError(f"value system {self.name!r} has no dimension or subdimension {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.by_name


def available_systems() -> list[str]:
    return list(BUILTIN_SYSTEMS)


@functools.cache
def _builtin_by_yaml_name() -> dict[str, str]:
    """The `name:` field of each built-in YAML -> its built-in name (the paper's file says `name: valuelex_paper`)."""
    return {load_system(key).name: key for key in BUILTIN_SYSTEMS}


def builtin_key(system: ValueSystem) -> str | None:
    """The built-in name `system` comes from: its file's, when it is a built-in's file name, else the built-in whose
    YAML has the same `name:` (a copy of a shipped system elsewhere); None for any other system."""
    stem = Path(system.path).stem
    if stem in BUILTIN_SYSTEMS:
        return stem
    return _builtin_by_yaml_name().get(system.name)


def system_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The YAML file for a built-in name or a path."""
    text = str(name_or_path)
    if text in BUILTIN_SYSTEMS:
        return TAXONOMY_DIR / BUILTIN_SYSTEMS[text]
    p = Path(text)
    if p.suffix.lower() in {".yaml", ".yml"} or p.exists() or os.sep in text:
        return p
    raise UserError(
        f"unknown value system {text!r}: use one of {', '.join(BUILTIN_SYSTEMS)} or a path to a taxonomy YAML file"
    )


def load_system(name_or_path: str | os.PathLike[str] | ValueSystem) -> ValueSystem:
    """Load and validate a value system by built-in name or by path."""
    if isinstance(name_or_path, ValueSystem):
        return name_or_path
    path = system_path(name_or_path)
    if not path.is_file():
        if str(name_or_path) in BUILTIN_SYSTEMS:
            raise UserError(f"value system {str(name_or_path)!r}: its file {path} is missing from the install")
        raise UserError(f"value system file not found: {path}")
    data, text = read_yaml_file(path, "value system file")
    default_name = str(name_or_path) if str(name_or_path) in BUILTIN_SYSTEMS else path.stem
    return parse_system(data, path=path, default_name=default_name, digest=hashlib.sha256(text.encode()).hexdigest())


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and str(v).strip() for v in value):
        raise UserError(f"{where} must be a list of non-empty strings")
    return tuple(str(v).strip() for v in value)


def _words(node: dict[str, Any], where: str) -> tuple[str, ...]:
    words = _str_list(node.get("markers", node.get("words")), f"{where}.markers")
    extra = _str_list(node.get("extra_markers"), f"{where}.extra_markers")
    seen: dict[str, None] = {}
    for w in words + extra:
        seen.setdefault(w, None)
    return tuple(seen)


def _text(node: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    value = node.get(key)
    if value is None:
        if required:
            raise UserError(f"{where}.{key} is missing")
        return ""
    if not isinstance(value, (str, int, float)):
        raise UserError(f"{where}.{key} must be a string")
    return str(value).strip()


def _node_name(node: Any, where: str, path: Path) -> str:
    """The name of a dimension or subdimension node, which must be a mapping with a non-empty `name`."""
    if not isinstance(node, dict):
        raise UserError(f"{path}: {where} must be a mapping")
    name = _text(node, "name", where, required=True)
    if not name:
        raise UserError(f"{path}: {where}.name is empty")
    return name


def _column(node: dict[str, Any], name: str, where: str, path: Path, parent: str | None = None,
            children: tuple[str, ...] = ()) -> Column:
    """A dimension (no `parent`) or subdimension column from its node: definition, markers, opposites."""
    try:
        return Column(name=name, definition=_text(node, "definition", where), markers=_words(node, where),
                      opposites=_str_list(node.get("opposites"), f"{where}.opposites"), parent=parent,
                      children=children)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def parse_system(data: Any, path: Path | str = "<memory>", default_name: str = "custom", digest: str = "") -> ValueSystem:
    """Validate a parsed YAML document and build a `ValueSystem`."""
    path = Path(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: a value system must be a mapping with 'name' and 'dimensions'")
    name = _text(data, "name", "system") or default_name
    dims = data.get("dimensions")
    if not isinstance(dims, list) or not dims:
        raise UserError(f"{path}: 'dimensions' must be a non-empty list")
    by_name: dict[str, Column] = {}
    order: list[str] = []

    def add(col: Column, where: str) -> None:
        if col.name in by_name:
            raise UserError(f"{path}: {where}.name {col.name!r} is used twice (names must be unique across the system)")
        if col.name.lower() in RESERVED:
            raise UserError(f"{path}: {where}.name {col.name!r} is reserved (clashes with a CSV column)")
        if not col.definition and not col.markers:
            raise UserError(f"{path}: {where} ({col.name}) needs a 'definition' or 'markers'")
        by_name[col.name] = col
        order.append(col.name)

    for i, dim in enumerate(dims):
        where = f"dimensions[{i}]"
        dname = _node_name(dim, where, path)
        subs = dim.get("subdimensions") or []
        if not isinstance(subs, list):
            raise UserError(f"{path}: {where}.subdimensions must be a list")
        sub_cols: list[Column] = []
        for j, sub in enumerate(subs):
            swhere = f"{where}.subdimensions[{j}]"
            sub_cols.append(_column(sub, _node_name(sub, swhere, path), swhere, path, parent=dname))
        add(_column(dim, dname, where, path, children=tuple(s.name for s in sub_cols)), where)
        for j, s in enumerate(sub_cols):
            add(s, f"{where}.subdimensions[{j}]")
    return ValueSystem(
        name=name,
        title=_text(data, "title", "system"),
        source=_text(data, "source", "system"),
        path=path,
        by_name=by_name,
        order=tuple(order),
        digest=digest,
    )
