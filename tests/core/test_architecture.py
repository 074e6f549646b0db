"""The house rules of docs/architecture.md, checked on the source with ``ast``.

* no import cycle between trackkit's modules (imports inside functions count; imports under
  ``if TYPE_CHECKING:`` do not, they never run);
* no module imports another module's ``_private`` name (``from .run import _x``, or
  ``mod._x`` on an imported module);
* an adapter in ``trackkit/backends/`` imports only ``events``, ``errors``, ``backend``, its own
  package's modules, the standard library and its own SDK;
* no source file over 700 lines, ``run.py`` under 600.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "trackkit"

#: the third-party packages each adapter may import (its SDK and what the SDK ships with)
#: an adapter's SDK, and what the SDK's own media API takes (an image as a PIL image or a numpy
#: array); every one of these SDKs depends on numpy and pillow itself
MEDIA_DEPS = {"numpy", "PIL"}
ADAPTER_SDKS = {
    "tensorboard": {"tensorboard", "crc32c"} | MEDIA_DEPS,  # crc32c: the C checksum (backends/tensorboard/crc.py)
    "wandb": {"wandb", "google"} | MEDIA_DEPS,
    "mlflow": {"mlflow"} | MEDIA_DEPS,
    "memory": set(),
}
ADAPTER_CORE = {"trackkit.events", "trackkit.errors", "trackkit.backend"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


class _Import:
    def __init__(self, target: str, names: list[str], line: int) -> None:
        self.target, self.names, self.line = target, names, line


def _imports(mod: str) -> list[_Import]:
    """Every import a module runs (at import time or inside functions), resolved to module names."""
    tree = ast.parse(MODULES[mod].read_text())
    skip = _type_checking_nodes(tree)
    base = mod.split(".") if _is_package(mod) else mod.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend(_Import(a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            # ``from . import run``: the submodule is what is imported
            subs = [n for n in names if f"{target}.{n}" in MODULES]
            if subs:
                out.extend(_Import(f"{target}.{n}", [], node.lineno) for n in subs)
                names = [n for n in names if n not in subs]
            if names:
                out.append(_Import(target, names, node.lineno))
    return out


def _internal(target: str) -> str | None:
    """The trackkit module an import target names (a submodule import binds its package too)."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod in MODULES:
        for imp in _imports(mod):
            tgt = _internal(imp.target)
            if tgt is None or tgt == mod:
                continue
            graph[mod].add(tgt)
            # importing ``trackkit.a.b`` runs ``trackkit.a`` first: an arrow to each package above it
            parts = tgt.split(".")
            for i in range(1, len(parts)):
                pkg = ".".join(parts[:i])
                if pkg != mod and not mod.startswith(pkg + "."):
                    graph[mod].add(pkg)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = _cycles(graph)
    shown = []
    for comp in cycles:
        members = set(comp)
        arrows = sorted(f"{a} -> {b}" for a in comp for b in graph[a] if b in members)
        shown.append("; ".join(arrows))
    assert not cycles, "import cycles:\n" + "\n".join(shown)


def _owner_package(mod: str) -> str:
    return mod if _is_package(mod) else mod.rpartition(".")[0]


def test_no_private_names_across_modules() -> None:
    bad = []
    for mod in MODULES:
        for imp in _imports(mod):
            tgt = _internal(imp.target)
            if tgt is None or tgt == mod:
                continue
            # a private *module* may be used by its own package (provenance/_git.py by provenance/)
            private_mod = [p for p in tgt.split(".") if p.startswith("_") and not p.startswith("__")]
            if private_mod and not mod.startswith(_owner_package(tgt)):
                bad.append(f"{mod}:{imp.line} imports the private module {tgt}")
            for name in imp.names:
                if name.startswith("_") and not name.startswith("__"):
                    bad.append(f"{mod}:{imp.line} imports {tgt}.{name}")
        # ``mod._name`` on an imported module (``from . import run as _run_mod; _run_mod._x``)
        tree = ast.parse(MODULES[mod].read_text())
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for imp in _imports_of(node, mod):
                    if imp[1] in MODULES and imp[1] != mod:
                        aliases[imp[0]] = imp[1]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{mod}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "private names used across modules:\n" + "\n".join(sorted(set(bad)))


def _imports_of(node: ast.Import | ast.ImportFrom, mod: str) -> list[tuple[str, str]]:
    """(local name, module) pairs of the modules an import statement binds."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            out.append((a.asname or a.name.split(".")[0], a.name if a.asname else a.name.split(".")[0]))
        return out
    base = mod.split(".") if _is_package(mod) else mod.split(".")[:-1]
    anchor = base[: len(base) - (node.level - 1)] if node.level else []
    target = ".".join(anchor + ([node.module] if node.module else []))
    for a in node.names:
        out.append((a.asname or a.name, f"{target}.{a.name}"))
    return out


def test_adapters_import_only_the_core_seam_and_their_sdk() -> None:
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for mod in MODULES:
        if not mod.startswith("trackkit.backends.") :
            continue
        adapter = mod.split(".")[2]
        own = f"trackkit.backends.{adapter}"
        for imp in _imports(mod):
            top = imp.target.split(".")[0]
            if top == "trackkit":
                tgt = _internal(imp.target) or imp.target
                if tgt in ADAPTER_CORE or tgt == own or tgt.startswith(own + "."):
                    continue
                bad.append(f"{mod}:{imp.line} imports {tgt}")
            elif top not in stdlib and top not in ADAPTER_SDKS.get(adapter, set()):
                bad.append(f"{mod}:{imp.line} imports {imp.target}")
    assert not bad, "adapters reach past their seam:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_source_file_over_700_lines(path: Path) -> None:
    limit = 600 if path == PKG / "run.py" else 700
    n = len(path.read_text().splitlines())
    assert n < limit if path == PKG / "run.py" else n <= limit, f"{path.relative_to(PKG)} has {n} lines (limit {limit})"


def test_the_walk_sees_cycles_and_private_imports(tmp_path: Path) -> None:
    """The checks above are not vacuous: the graph holds known arrows of the package."""
    graph = _graph()
    assert "trackkit.events" in graph["trackkit.journal"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_architecture_page_names_every_module() -> None:
    """docs/architecture.md stays true: every module and package of trackkit/ is named there."""
    page = (PKG.parent / "docs" / "architecture.md").read_text()
    missing = []
    for mod in MODULES:
        parts = mod.split(".")[1:]
        if not parts or parts[-1].startswith("_") or parts[0] == "__main__":
            continue
        # a top-level module by its name, a module inside a package by its package
        name = parts[0] if len(parts) == 1 else parts[0] + "/"
        if f"`{name}`" not in page and f"`{parts[0]}" not in page and f"{parts[0]}/" not in page:
            missing.append(mod)
    assert not missing, f"docs/architecture.md does not name: {missing}"
