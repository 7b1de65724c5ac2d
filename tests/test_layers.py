"""The import layers hold: no import cycle, service and workers apart, the dashboard web-only, the ASL core pure.

Read from the source with ast, so a lazy import (inside a function) is seen too; imports under
`if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "workers", "statemachines", "stepline")
ASL = "statemachines.engine.asl"
# report_step reconciles its run in its own job (service.reporter.reconcile_now imports the reconciler
# there), while the reconciler builds on the reporter's helpers; splitting the reporter is its own change
KNOWN_DEFERRED_CYCLES = [["service.reconcile", "service.reporter"]]
WEB_APP = "service.app"  # create_app: registers the dashboard's blueprints
ASL_MAY_IMPORT = {"statemachines.nesting"}  # how deep a document may nest, shared with the service
NOT_IN_ASL = {
    "redis",
    "rq",
    "flask",
    "boto3",
    "botocore",
    "socket",
    "asyncio",
    "threading",
    "multiprocessing",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (PROJECT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST, top_level: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement and whether it runs when the module is imported (not in a function)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            yield from (pair for item in child.orelse for pair in _import_nodes(item, top_level))
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, top_level
        inner = top_level and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _import_nodes(child, inner)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, bool]]:
    """(imported module, at import time) for every import in the module, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, top_level in _import_nodes(ast.parse(path.read_text()), True):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module; `from module import name` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            yield target, top_level


def import_graph(at_import_time: bool) -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, top_level in imports_of(name, path, modules):
            if at_import_time and not top_level:
                continue
            # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                prefix = ".".join(parts[:end])
                if prefix in modules and prefix != name:
                    graph[name].add(prefix)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_when_modules_are_imported():
    assert cycles(import_graph(at_import_time=True)) == []


def test_no_import_cycle_through_imports_inside_functions():
    """An import inside a function only defers a cycle: the two modules still need each other."""
    found = cycles(import_graph(at_import_time=False))
    assert [cycle for cycle in found if cycle not in KNOWN_DEFERRED_CYCLES] == []


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_service_and_workers_never_import_each_other():
    modules = project_modules()
    crossing = [
        (name, target)
        for name, path in modules.items()
        for target, _ in imports_of(name, path, modules)
        if {name.split(".")[0], target.split(".")[0]} == {"service", "workers"}
    ]
    assert crossing == []


def test_statemachines_is_shared_and_imports_no_process():
    """service and workers import statemachines, never the other way; nothing imports the stepline command."""
    modules = project_modules()
    upward = [
        (name, target)
        for name, path in modules.items()
        for target, _ in imports_of(name, path, modules)
        if (
            name.split(".")[0] == "statemachines"
            and target.split(".")[0] in {"service", "workers", "stepline"}
        )
        or (name.split(".")[0] != "stepline" and target.split(".")[0] == "stepline")
    ]
    assert upward == []


def test_the_dashboard_is_imported_only_by_the_web_app():
    """service.dashboard is the web side: only the web app's factory imports it, so no jobs-process
    module (runs, reporter, check requests, …) loads Flask's views; what both need lives in service/."""
    modules = project_modules()
    dashboard = "service.dashboard"
    outside = [
        (name, target)
        for name, path in modules.items()
        if not (name == dashboard or name.startswith(dashboard + "."))
        for target, _ in imports_of(name, path, modules)
        if (target == dashboard or target.startswith(dashboard + ".")) and name != WEB_APP
    ]
    assert any(name.startswith(dashboard + ".") for name in modules)
    assert outside == []


def test_the_asl_core_imports_only_itself_and_the_nesting_limits():
    modules = project_modules()
    outside = [
        (name, target)
        for name, path in modules.items()
        if name == ASL or name.startswith(ASL + ".")
        for target, _ in imports_of(name, path, modules)
        if (target.split(".")[0] in {*PACKAGES, *NOT_IN_ASL})
        and not (target == ASL or target.startswith(ASL + "."))
        and target not in ASL_MAY_IMPORT
    ]
    assert any(name.startswith(ASL + ".") for name in modules)
    assert outside == []
