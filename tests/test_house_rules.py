"""Rules of the package's layout, checked on its source: the package is layered in folders and imports run one way
(down the layers, never in a circle, even inside a function; the library imports nothing of a project's jobs/ or of
the tests), and quarantine rows are built in one place."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lakehouse"

# The package's folders by layer, lowest first: a module imports modules of its own layer and of those below it,
# never of a layer above. README "Where things are" says what each folder holds.
LAYERS = (
    ("install",),  # what an installation fetches once, and where: jars, real data sets, samples made from them
    ("sources",),  # reading each kind of source: file formats and lines, JDBC, pg_dump, manifests, label exports
    ("project",),  # declarations, no Spark I/O: the project folder, environments, tables, steps, the graph
    ("services",),  # what the project starts: PostgreSQL, metastore, SQL server, cluster, S3; Spark's settings
    ("storage", "quality"),  # the engine that gates, quarantines and commits; the quality gates
    ("transforms", "loaders"),  # DataFrame -> DataFrame; table versions -> tensors
    ("engine", "versioning"),  # running steps, pipelines, sessions; tags, history, diff, restore, retention
    ("lineage", "models", "labels", "notebooks", "scenario"),  # what is built on the tables
    ("cli",),  # the commands
)
LAYER_OF = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.AST, modules: frozenset[str] = frozenset()) -> set[str]:
    """Every absolute name an ``import`` or ``from ... import`` anywhere in ``tree`` may refer to: for
    ``from package import module`` (one of ``modules``), the module, not the package's ``__init__``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            names.update(submodules)
            if len(submodules) < len(node.names):
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports."""
    trees = {module_name(path): ast.parse(path.read_text(), str(path)) for path in PACKAGE.rglob("*.py")}
    modules = frozenset(trees)
    return {name: {t for t in imported_names(tree, modules) if t in trees} - {name} for name, tree in trees.items()}


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
    assert (
        "lakehouse.storage.writer" in graph and "lakehouse.storage.catalog" in graph["lakehouse.storage.writer"]
    )  # the graph is real
    assert circles(graph) == []


def upward_imports(graph: dict[str, set[str]], layer_of: dict[str, int]) -> list[str]:
    """``importer -> imported`` for each import of a module in a higher layer than the importer's (the layer of
    ``lakehouse.<folder>.<module>`` is its folder's)."""

    def layer(module: str) -> int:
        return layer_of[module.split(".")[1]]

    return sorted(
        f"{importer} -> {imported}"
        for importer, imports in graph.items()
        for imported in imports
        if importer != "lakehouse" and imported != "lakehouse" and layer(imported) > layer(importer)
    )


def test_the_checker_finds_an_upward_import():
    layer_of = {"storage": 0, "engine": 1}
    graph = {"lakehouse.storage.writer": {"lakehouse.engine.job"}, "lakehouse.engine.job": {"lakehouse.storage.writer"}}
    assert upward_imports(graph, layer_of) == ["lakehouse.storage.writer -> lakehouse.engine.job"]


def test_every_module_is_in_a_layer_folder_and_imports_only_down_the_layers():
    graph = import_graph()
    loose = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert loose == []  # lakehouse/<module>.py: put it in the folder of its layer
    unplaced = sorted({module.split(".")[1] for module in graph if module != "lakehouse"} - set(LAYER_OF))
    assert unplaced == []  # a new folder: give it its layer in LAYERS
    assert "lakehouse.storage.catalog" in graph["lakehouse.engine.session"]  # the graph is real
    assert upward_imports(graph, LAYER_OF) == []


def test_the_package_imports_itself_by_absolute_names():
    """Relative imports would slip past the checks above, which read absolute names."""
    relative = sorted(
        f"{module_name(path)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level
    )
    assert relative == []


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
    """Every quarantine row comes from :func:`lakehouse.storage.quarantine.quarantine_rows` (its columns are named
    there)."""
    builders = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if path.name != "quarantine.py" and '"quarantined_at"' in path.read_text()
    )
    assert (
        '"quarantined_at"' in (PACKAGE / "storage" / "quarantine.py").read_text()
    )  # the pattern finds the real builder
    assert builders == []
