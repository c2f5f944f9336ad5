"""The package's import graph, every import counted (also those inside functions): cycles and module sizes.

    python scripts/import_graph.py        # prints modules, edges, any cycle, the largest modules; exit 1 on a cycle

Why a script and not a library: grimp (import-linter's engine) gives the same graph (checked: same modules, edges and
cycles on this tree) but is one more dependency for one check; the standard library's `ast` and networkx (already
installed with torch) suffice.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "valuelex_utils"


def modules(root: Path = ROOT / PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _targets(node: ast.AST, mod: str, is_pkg: bool, known: set[str]) -> list[str]:
    """The package modules one import statement reaches: `from X import y` reaches X.y when y is a module, else X
    (as grimp counts it)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        src = ".".join(base + ([node.module] if node.module else []))
    else:
        src = node.module or ""
    subs = [f"{src}.{a.name}" for a in node.names if f"{src}.{a.name}" in known]
    names = [a for a in node.names if f"{src}.{a.name}" not in known]
    return subs + ([src] if src in known and names else [])


def import_graph(root: Path = ROOT / PACKAGE) -> nx.DiGraph:
    """Module -> the package modules it imports (an edge per module pair), with each module's line count."""
    mods = modules(root)
    known = set(mods)
    g = nx.DiGraph()
    for mod, path in mods.items():
        g.add_node(mod, lines=len(path.read_text(encoding="utf-8").splitlines()))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for t in _targets(node, mod, path.name == "__init__.py", known):
                if t != mod:
                    g.add_edge(mod, t)
    return g


def cycles(g: nx.DiGraph) -> list[list[str]]:
    """Strongly connected components of more than one module: each is at least one import cycle."""
    return [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]


def main() -> int:
    g = import_graph()
    found = cycles(g)
    print(f"{g.number_of_nodes()} modules, {g.number_of_edges()} edges, {len(found)} cycles")
    for c in found:
        print("  cycle:", " <-> ".join(c))
    sizes = sorted(((d["lines"], m) for m, d in g.nodes(data=True)), reverse=True)[:5]
    print("largest:", ", ".join(f"{m} {n}" for n, m in sizes))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
