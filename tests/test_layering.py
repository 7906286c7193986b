"""The package's shape, checked from its source: layers without import cycles, and no strategy
named by a string outside its own module and the registry.

Both scans read every module under `prover/` with `ast`, imports inside functions included.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import networkx as nx

from prover.registry import strategy_specs

PACKAGE = Path(__file__).resolve().parents[1] / "prover"


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return trees


def _top(module: str) -> str:
    """`prover.lean_env.pool` -> `lean_env`; the root package itself is `prover`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imported(module: str, tree: ast.Module) -> set[str]:
    """Every `prover.*` module a module imports, anywhere in its body."""
    package = module if (PACKAGE / Path(*module.split(".")[1:]) / "__init__.py").exists() else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "prover" or name.startswith("prover.")}


def package_graph() -> nx.DiGraph:
    """Top-level package -> top-level packages it imports (edge data: the modules responsible)."""
    graph = nx.DiGraph()
    why: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, tree in _modules().items():
        source = _top(module)
        if source == "prover":  # the root facade only re-exports (lazily) for users
            continue
        graph.add_node(source)
        for target in {_top(name) for name in _imported(module, tree)}:
            if target not in (source, "prover"):
                why[(source, target)].append(module)
    for (source, target), modules in why.items():
        graph.add_edge(source, target, modules=sorted(modules))
    return graph


def test_no_import_cycle_between_top_level_packages() -> None:
    graph = package_graph()
    cycles = list(nx.simple_cycles(graph))
    described = [
        " -> ".join(cycle + [cycle[0]])
        + "  (" + "; ".join(f"{a}->{b}: {graph.edges[a, b]['modules'][0]}" for a, b in zip(cycle, cycle[1:] + cycle[:1])) + ")"
        for cycle in cycles
    ]
    assert not cycles, "import cycles between packages:\n" + "\n".join(described)


def test_the_layers_point_down() -> None:
    graph = package_graph()
    assert not graph.has_edge("datasets", "lean_env"), graph.edges.get(("datasets", "lean_env"))
    below_cluster = {"config", "types", "errors", "registry", "lean_env", "llm", "search", "eval", "datasets"}
    for package in below_cluster & set(graph):
        assert not graph.has_edge(package, "cluster"), (package, graph.edges[package, "cluster"])
        assert not graph.has_edge(package, "api"), (package, graph.edges[package, "api"])
    assert set(graph.successors("registry")) <= {"errors"}


def test_the_scan_sees_function_level_imports(tmp_path: Path) -> None:
    tree = ast.parse("def f():\n    from prover.cluster.driver import x\n    import prover.api\n")
    assert _imported("prover.eval.run", tree) == {"prover.cluster.driver", "prover.cluster.driver.x", "prover.api"}


def _owning_modules() -> dict[str, set[str]]:
    """Strategy name -> modules allowed to spell it: its own module and the registry."""
    return {
        name: {spec.factory.__module__, spec.config_model.__module__, "prover.registry"}
        for name, spec in strategy_specs().items()
    }


def test_no_strategy_name_is_tested_as_a_string() -> None:
    owners = _owning_modules()
    offences = []
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in owners:
                if module not in owners[node.value]:
                    offences.append(f"{module}:{node.lineno}: {node.value!r}")
    assert not offences, "strategy names spelled outside their module (use the registry):\n" + "\n".join(offences)
