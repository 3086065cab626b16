"""The import graph as the project means it: no cycles, and each layer only sits on the ones below.

    plugins/ (Resolve, Premiere)  ──►  otio_adapters/  ──►  edidub_engine/ (public names only)

The graph is read from the source with ``ast`` (every import, lazy ones in functions too), so a
cycle is caught even where the import happens inside a command at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edidub_engine", "otio_adapters", "plugins")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> list[tuple[str, str]]:
    """(imported module inside the tree, imported name) for every import in ``module``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [(a.name, "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, a.name) for a in node.names]
        else:
            continue
        for target, name in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                out.append((target, name))
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in {t for t, _ in GRAPH[v]}:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_every_module():
    assert len(MODULES) > 100 and "edidub_engine.cli" in MODULES and "plugins.davinci.install" in MODULES
    assert ("edidub_engine.commandline", "run_command") in GRAPH["edidub_engine.daemon.__main__"]


def test_no_module_imports_itself_back():
    assert _cycles() == []


def test_the_engine_never_imports_a_plugin():
    reaching = sorted({(m, t) for m, deps in GRAPH.items() if not m.startswith("plugins") for t, _ in deps if t.startswith("plugins")})
    assert reaching == [], "plugin commands are found through the 'edidub.commands' entry points, not imported"


def test_adapters_and_plugins_use_only_the_engines_public_names():
    private = sorted({(m, f"{t}.{name}") for m, deps in GRAPH.items() if not m.startswith("edidub_engine")
                      for t, name in deps if t.startswith("edidub_engine") and name.startswith("_") and name != "__version__"})
    assert private == []


def test_command_modules_do_not_reach_up_into_the_cli():
    up = sorted(m for m, deps in GRAPH.items() if m != "edidub_engine.__main__" for t, _ in deps if t == "edidub_engine.cli")
    assert up == [], "shared entry-point helpers live in edidub_engine.commandline"
