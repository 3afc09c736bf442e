"""No import cycle anywhere in src/ (issue 28): each module can be read, built and tested with
what it imports alone. Imports made only for the type checker count too: a cycle hidden behind
TYPE_CHECKING is still two modules that cannot be understood apart. (pyproject.toml's
import-linter contract holds the services to the same rule in `make lint`.)"""

from __future__ import annotations

import grimp


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without
    recursion), each sorted: every module of one imports every other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            following = next(imported, None)
            if following is not None:
                if following not in index:
                    index[following] = low[following] = len(index)
                    stack.append(following)
                    on_stack.add(following)
                    nexts = iter(sorted(graph.find_modules_directly_imported_by(following)))
                    work.append((following, nexts))
                elif following in on_stack:
                    low[module] = min(low[module], index[following])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_src_is_in_an_import_cycle() -> None:
    graph = grimp.build_graph(
        "queue_manager", include_external_packages=False, exclude_type_checking_imports=False
    )
    assert "queue_manager.services.backfills" in graph.modules  # the graph is the real one
    found = cycles(graph)
    assert found == [], "modules importing each other:\n" + "\n".join(map(", ".join, found))


def test_the_check_finds_a_cycle_however_long() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.c"),
        ("pkg.c", "pkg.a"),  # a -> b -> c -> a
        ("pkg.c", "pkg.d"),
        ("pkg.d", "pkg.e"),
        ("pkg.e", "pkg.d"),  # d <-> e
        ("pkg.f", "pkg.a"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.d", "pkg.e"]]
