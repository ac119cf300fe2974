"""Rules of the package's layout, checked on its source: imports run one way (no module imports, even inside a
function, a module that imports it back, directly or through others; the library imports nothing of a project's
jobs/ or of the tests), and quarantine rows are built in one place."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lakehouse"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.AST) -> set[str]:
    """Every absolute name an ``import`` or ``from ... import`` anywhere in ``tree`` may refer to."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports."""
    trees = {module_name(path): ast.parse(path.read_text(), str(path)) for path in PACKAGE.rglob("*.py")}
    return {
        name: {target for target in imported_names(tree) if target in trees} - {name} for name, tree in trees.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                lowest[module] = min(lowest[module], lowest[target])
            elif target in stack:
                lowest[module] = min(lowest[module], index[target])
        if lowest[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_checker_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_one_that_imports_it_back():
    graph = import_graph()
    assert "lakehouse.writer" in graph and "lakehouse.catalog" in graph["lakehouse.writer"]  # the graph is real
    assert circles(graph) == []


def test_the_library_imports_no_project_job_and_no_test():
    offending = {
        module_name(path): sorted(
            name
            for name in imported_names(ast.parse(path.read_text()))
            if name.split(".")[0] in {"jobs", "tests", "conftest", "helpers"}
        )
        for path in PACKAGE.rglob("*.py")
    }
    assert {module: names for module, names in offending.items() if names} == {}


def test_quarantine_rows_are_built_only_by_the_quarantine_module():
    """Every quarantine row comes from :func:`lakehouse.quarantine.quarantine_rows` (its columns are named there)."""
    builders = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if path.name != "quarantine.py" and '"quarantined_at"' in path.read_text()
    )
    assert '"quarantined_at"' in (PACKAGE / "quarantine.py").read_text()  # the pattern finds the real builder
    assert builders == []
