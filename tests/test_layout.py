"""The package's shape (issue 18): no import cycle, no module past the size a reader can hold, and environment
variables set in one place (`env.py`), so that the tree keeps reading like the paper as it grows."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402

MAX_LINES = 600


def test_the_package_has_no_import_cycle():
    g = import_graph.import_graph()
    assert g.number_of_edges() > 100  # the graph was read (an empty graph would have no cycle either)
    assert import_graph.cycles(g) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "valuelex_utils"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b  # inside a function: still an edge\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    found = import_graph.cycles(import_graph.import_graph(pkg))
    assert found == [["valuelex_utils.a", "valuelex_utils.sub.b"]]


def test_no_module_is_longer_than_a_reader_can_hold():
    sizes = {m: d["lines"] for m, d in import_graph.import_graph().nodes(data=True)}
    assert len(sizes) > 50
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def _writes_environ(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        target = None
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target = next((t for t in targets if isinstance(t, ast.Subscript)), None)
            target = target.value if target is not None else None
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "setdefault", "update", "pop"):
            target = node.func.value
        if isinstance(target, ast.Attribute) and target.attr == "environ":
            return True
    return False


def test_environment_variables_are_set_only_in_env_py():
    writers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "valuelex_utils").rglob("*.py")
                     if _writes_environ(ast.parse(p.read_text(encoding="utf-8"))))
    assert writers == ["valuelex_utils/env.py"]
