"""The package's shape: no import circle between its modules, one registry of losses (the
plugin module holds only the decorator), one registry of output formats, and modules that
import only what they need."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "losscli"


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports when it runs: module level and inside
    functions alike, leaving out ``if TYPE_CHECKING:`` blocks (never run)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif base in modules:
                    found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_graph_reader_sees_imports_in_functions_and_finds_circles() -> None:
    graph = import_graph()
    assert "losscli.sources" in graph["losscli.engine"]  # imported inside evaluate()
    assert "losscli.engine" not in graph["losscli.gates"]  # TYPE_CHECKING only
    assert "losscli.render.ci" in graph["losscli.render.compare"]  # from losscli.render.ci
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circle_in_the_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_one_registry_of_losses() -> None:
    graph = import_graph()
    assert graph["losscli.losses"] <= {"losscli.errors"}  # the catalog looks nowhere up
    assert graph["losscli.plugin"] == {"losscli.losses", "losscli.registry"}
    tree = ast.parse((PACKAGE / "plugin.py").read_text(encoding="utf-8"))
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == ["loss"]
    assert {m for m, deps in graph.items() if "losscli.plugin" in deps} == set()


def test_one_registry_of_output_formats() -> None:
    from losscli.render.formats import RENDERERS, formats, renderer
    from losscli.settings import ALL_FORMATS, FORMATS

    assert {c: formats(c) for c in ("compare", "eval", "recommend")} == FORMATS
    assert set(ALL_FORMATS) == {f for c, f in RENDERERS if c in FORMATS}
    assert formats("losses") == ("table", "json")
    for command, fmt in RENDERERS:
        assert callable(renderer(command, fmt))
    # the CLI names no renderer module: it goes through the registry
    cli = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    for module in ("losscli.render.ci", "losscli.render.compare", "losscli.render.recommend",
                   "losscli.render.json", "losscli.render.table", "losscli.render.catalog"):
        assert module not in cli


@pytest.mark.parametrize(("code", "absent"), [
    ("import losscli.engine", ("losscli.settings", "losscli.config", "tomllib", "tomli")),
    ("import losscli.gates, losscli.render.ci", ("losscli.engine",)),
    ("import losscli.registry", ("losscli.plugin",)),
])
def test_modules_import_only_what_they_need(code: str, absent: tuple[str, ...]) -> None:
    check = f"import sys\n{code}\nprint([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"
