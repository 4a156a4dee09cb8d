"""The house's import direction: web → service → model, no package reaching into another's
views, and no cycles (read from the source with `ast`, lazy imports inside functions too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portal"
# The app factory mounts every blueprint: it is the one module allowed to import views.
FACTORY = "portal"


def module_name(path: Path) -> str:
    """`portal/keys/views.py` is `portal.keys.views`; a package's `__init__.py` is the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> Iterator[str]:
    """Every portal module `name` imports, wherever the import statement is."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from portal.keys import service` imports the module portal.keys.service
            targets = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (target for target in targets if target in MODULES and target != name)


GRAPH = {name: sorted(set(imported_modules(name))) for name in MODULES}


def package_of(name: str) -> str:
    """The area a module belongs to: `portal.keys.views` is in `keys`; `portal.web` is `web`."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_views(name: str) -> bool:
    """Whether the module is a package's web layer (its blueprint's views)."""
    return name.endswith(".views")


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph as a path, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in graph.get(node, []):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for node in graph:
        cycle = visit(node, [])
        if cycle:
            return cycle
    return None


def test_the_graph_sees_the_imports_it_checks() -> None:
    # If parsing missed imports, every rule below would pass for nothing.
    assert "portal.keys.service" in GRAPH["portal.keys.views"]
    assert "portal.accounts.access" in GRAPH["portal.usage.views"]
    assert "portal.keys.views" in GRAPH[FACTORY]  # a lazy import inside create_app's helpers
    assert len(MODULES) > 30


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_packages_views(name: str) -> None:
    if name == FACTORY:
        return
    foreign_views = [
        target
        for target in GRAPH[name]
        if is_views(target) and package_of(target) != package_of(name)
    ]
    assert not foreign_views, f"{name} imports {foreign_views}: share a service or a helper"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if not is_views(name)))
def test_only_the_factory_imports_views(name: str) -> None:
    if name == FACTORY:
        return
    assert not [target for target in GRAPH[name] if is_views(target)], name


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.endswith(".models")))
def test_models_import_no_service_or_views(name: str) -> None:
    upward = [
        target
        for target in GRAPH[name]
        if target.endswith((".service", ".views")) or target.startswith("portal.api")
    ]
    assert not upward, f"{name} imports {upward}: models are the bottom layer"


WEB_LAYER = sorted([*(name for name in MODULES if is_views(name)), "portal.web"])


@pytest.mark.parametrize("name", WEB_LAYER)
def test_views_query_nothing_themselves(name: str) -> None:
    """Thin views: the services own queries and commits, so views import no database access."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    imports = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "portal.extensions"
        for alias in node.names
    }
    assert not {module for module in imports if module.split(".")[0] == "sqlalchemy"}, name
    assert "db" not in names, f"{name} uses db.session: ask a service"


def test_no_import_cycle_between_modules() -> None:
    assert find_cycle(GRAPH) is None


def test_no_cycle_between_the_areas_below_the_web_layer() -> None:
    # Views may use any area's services (web → service → model); services and models of one area
    # never lean on an area that leans back on them (keys needs accounts, never the reverse).
    areas: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        if is_views(name) or name == FACTORY:
            continue
        source = package_of(name)
        areas.setdefault(source, set()).update(
            package_of(target) for target in targets if package_of(target) != source
        )
    assert find_cycle({area: sorted(targets) for area, targets in areas.items()}) is None, areas


DOMAIN_AREAS = ("accounts", "keys", "usage", "store", "api")


@pytest.mark.parametrize("name", sorted(name for name in MODULES if package_of(name) == "accounts"))
def test_accounts_is_the_base_every_area_stands_on(name: str) -> None:
    # Keys, usage, the store and the API all need merchants and sign-in; accounts needs none of
    # them, its pages included (the markets page with its key counts is the keys area's).
    other_areas = [target for target in GRAPH[name] if package_of(target) in DOMAIN_AREAS[1:]]
    assert not other_areas, f"{name} imports {other_areas}"
