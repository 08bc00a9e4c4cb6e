"""The layout rules of ARCHITECTURE.md, checked on the source (by `ast`, nothing imported).

* no import cycle between modules — counting every import, also those inside functions
  and under `if TYPE_CHECKING:` — and none between the packages under `s3dest/`;
* imports point inward: nothing below the edges (`api`, `dashboard`, `cli`, `devtools`,
  `app`) imports them or the composition root (`runtime`); the composition root imports no
  edge; `api` and `dashboard` import neither each other nor the other edges; `store` and
  `s3` import none of the services above them;
* no module in `src/` over 500 lines;
* only `s3dest.s3` imports obstore;
* only `s3dest.store` opens database sessions (`transaction(...)`, `engine.begin()`,
  `engine.connect()`).

Run as a script (`python tests/unit/test_architecture.py`) to print every finding.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "s3dest"
MAX_LINES = 500
SESSION_OPENERS = {"begin", "connect", "raw_connection"}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lines: int
    # imported module -> first line that imports it
    imports: dict[str, int] = field(default_factory=dict)


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        name, is_package = _module_name(path)
        text = path.read_text()
        modules[name] = Module(
            name=name,
            path=path,
            is_package=is_package,
            tree=ast.parse(text, str(path)),
            lines=len(text.splitlines()),
        )
    for module in modules.values():
        module.imports = _imports(module, modules)
    return modules


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: dict[str, Module]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: Module, modules: dict[str, Module]) -> dict[str, int]:
    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target is not None and target != module.name:
            found.setdefault(target, line)

    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_known(alias.name, modules), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                # `from pkg import sub` imports the module pkg.sub when there is one
                add(_known(f"{base}.{alias.name}", modules) or _known(base, modules), node.lineno)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    # Restored after: the key templates' nesting guard is the interpreter's recursion
    # limit, and a test run after this one in the same process saw 1,000-deep templates
    # compile (test_properties and test_key_template_words failed in a serial run).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(10_000, limit))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def _describe(
    component: list[str], graph: dict[str, set[str]], where: dict[tuple[str, str], str]
) -> str:
    members = set(component)
    edges = [
        f"    {a} -> {b}  ({where[(a, b)]})"
        for a in component
        for b in sorted(graph.get(a, set()) & members)
    ]
    return "cycle among " + ", ".join(component) + ":\n" + "\n".join(edges)


def module_cycles(modules: dict[str, Module]) -> list[str]:
    """Cycles between modules. A package's `__init__` counts as importing nothing of its own
    submodules' importers: only real import statements make edges."""
    graph = {name: set(m.imports) for name, m in modules.items()}
    where = {
        (name, target): f"{m.path.relative_to(SRC)}:{line}"
        for name, m in modules.items()
        for target, line in m.imports.items()
    }
    return [_describe(c, graph, where) for c in _cycles(graph)]


def _package_of(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2])  # s3dest.<package or top-level module>


def package_cycles(modules: dict[str, Module]) -> list[str]:
    """Cycles between the packages (and top-level modules) directly under s3dest/."""
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for name, m in modules.items():
        if name == PACKAGE:
            continue  # the lazy public surface re-exports from everywhere
        source = _package_of(name)
        for target, line in m.imports.items():
            if target == PACKAGE:
                continue
            dest = _package_of(target)
            if dest != source:
                graph.setdefault(source, set()).add(dest)
                where.setdefault((source, dest), f"{m.path.relative_to(SRC)}:{line}")
    return [_describe(c, graph, where) for c in _cycles(graph)]


EDGES = frozenset({"api", "dashboard", "cli", "devtools", "app"})
ROOT = "runtime"
SERVICES = frozenset({"access", "delivery", "destinations", "ingest", "manifest", "providers"})


def _top(name: str) -> str:
    """`s3dest.api.routes.x` -> "api"; the package itself -> ""."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _forbidden(source: str, target: str) -> str | None:
    """Why `source` (a top-level package or module of s3dest) may not import `target`."""
    if source == target or not target:
        return None
    if source not in EDGES and source != ROOT and (target in EDGES or target == ROOT):
        return "only the edges import the edges and the composition root"
    if source == ROOT and target in EDGES:
        return "the composition root imports no edge"
    if source in ("api", "dashboard") and target in EDGES:
        return "api and dashboard import neither each other nor the other edges"
    if source in ("store", "s3") and target in SERVICES:
        return "store and s3 import no service above them"
    return None


def outward_imports(modules: dict[str, Module]) -> list[str]:
    found = []
    for name, m in modules.items():
        if name == PACKAGE:
            continue  # the lazy public surface
        for target, line in m.imports.items():
            why = _forbidden(_top(name), _top(target))
            if why:
                found.append(f"{m.path.relative_to(SRC)}:{line} imports {target}: {why}")
    return found


def long_modules(modules: dict[str, Module]) -> list[str]:
    return [
        f"{m.path.relative_to(SRC)}: {m.lines} lines (at most {MAX_LINES})"
        for m in modules.values()
        if m.lines > MAX_LINES
    ]


def _external_imports(module: Module) -> Iterator[tuple[str, int]]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module, node.lineno


def obstore_outside_s3(modules: dict[str, Module]) -> list[str]:
    return [
        f"{m.path.relative_to(SRC)}:{line} imports {name}"
        for m in modules.values()
        if not m.name.startswith(f"{PACKAGE}.s3.") and m.name != f"{PACKAGE}.s3"
        for name, line in _external_imports(m)
        if name == "obstore" or name.startswith("obstore.")
    ]


def _in_store(name: str) -> bool:
    return name == f"{PACKAGE}.store" or name.startswith(f"{PACKAGE}.store.")


def sessions_outside_store(modules: dict[str, Module]) -> list[str]:
    found = []
    for m in modules.values():
        if _in_store(m.name):
            continue
        where = m.path.relative_to(SRC)
        for node in ast.walk(m.tree):
            if isinstance(node, ast.ImportFrom) and _resolve(m, node) == f"{PACKAGE}.store.engine":
                for alias in node.names:
                    if alias.name == "transaction":
                        found.append(f"{where}:{node.lineno} imports store.engine.transaction")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                text = ast.unparse(receiver)
                if node.func.attr in SESSION_OPENERS and "engine" in text.lower():
                    found.append(f"{where}:{node.lineno} calls {text}.{node.func.attr}()")
                elif node.func.attr == "transaction" and text.endswith("engine"):
                    found.append(f"{where}:{node.lineno} calls {text}.transaction()")
    return found


def _report(findings: list[str]) -> str:
    return "\n" + "\n".join(findings)


def test_no_import_cycle_between_modules() -> None:
    found = module_cycles(load_modules())
    assert not found, _report(found)


def test_no_import_cycle_between_packages() -> None:
    found = package_cycles(load_modules())
    assert not found, _report(found)


def test_imports_point_inward() -> None:
    found = outward_imports(load_modules())
    assert not found, _report(found)


def test_no_module_over_500_lines() -> None:
    found = long_modules(load_modules())
    assert not found, _report(found)


def test_only_s3_imports_obstore() -> None:
    found = obstore_outside_s3(load_modules())
    assert not found, _report(found)


def test_only_store_opens_sessions() -> None:
    found = sessions_outside_store(load_modules())
    assert not found, _report(found)


if __name__ == "__main__":  # pragma: no cover
    loaded = load_modules()
    for title, check in (
        ("module cycles", module_cycles),
        ("package cycles", package_cycles),
        ("imports pointing outward", outward_imports),
        ("modules over 500 lines", long_modules),
        ("obstore outside s3/", obstore_outside_s3),
        ("sessions outside store/", sessions_outside_store),
    ):
        results = check(loaded)
        print(f"== {title}: {len(results)}")
        for line in results:
            print(line)
