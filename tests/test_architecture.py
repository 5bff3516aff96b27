"""The import graph of ``src/slimvec`` keeps its shape: no cycles, layers that point down, and
no reaching into another package's private members.

Every ``import`` is read with ``ast`` (module level and inside functions, ``TYPE_CHECKING``
blocks included: a type-only import still couples the two packages). A "unit" is a top-level
package (``slimvec.kernels``) or a top-level module (``slimvec.collection``); ``slimvec``
itself is the public facade (``slimvec.create``/``open``).

Layers, top to bottom; a unit may import its own layer or any layer below, never above:

0. entry points: ``cli``, ``demo``, ``server``, ``distributed``, ``integrations``
1. tools the entry points use: ``eval``, ``capacity``, ``datasets``
2. the public facade ``slimvec``, ``api`` (``create``/``open`` pick the collection class),
   ``protocol`` (the API every kind of collection implements), ``remote`` (``connect``:
   the HTTP client, below the server it talks to) and ``check`` (``slimvec check``: reads
   every file of a collection)
3. collections: ``collection``, ``multivector``, ``compat`` (models, adapters, upgrades)
4. the storage engine beneath them: ``engine`` (views, pins)
5. retrieval engines: ``search`` (funnel, fusion, filters), ``index``, ``sparse``, ``encoders``
6. ``transforms``, ``codecs``
7. ``kernels``
8. foundations: ``store``, ``validation``, ``errors``, ``spec``

A new package must be placed in ``LAYERS`` (the test says so), which is where its place in the
architecture gets decided.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "slimvec"

LAYERS: list[set[str]] = [
    {"cli", "demo", "server", "distributed", "integrations"},
    {"eval", "capacity", "datasets"},
    {"slimvec", "api", "protocol", "remote", "check"},
    {"collection", "multivector", "compat"},
    {"engine"},
    {"search", "index", "sparse", "encoders"},
    {"transforms", "codecs"},
    {"kernels"},
    {"store", "validation", "errors", "spec"},
]

#: Private members of a foreign object that are accessed on purpose, as (module, attribute),
#: each with its reason.
ALLOWED_PRIVATE: dict[tuple[str, str], str] = {}

#: Known violations, each with its reason (none today); a violation not listed here fails.
#:   ("cycle", importer unit, imported unit): an import edge that closes a cycle;
#:   ("private", module, attribute): a foreign object's private member used in module.
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


# -- reading the source ------------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module under src/slimvec."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def unit(module: str) -> str:
    """``slimvec.kernels.maxsim`` -> ``kernels``; ``slimvec.cli`` -> ``cli``; ``slimvec``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "slimvec"


def _resolve(name: str) -> str:
    """The slimvec module ``name`` refers to (an imported attribute -> its module)."""
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str) -> list[tuple[str, int]]:
    """(imported slimvec module, line) for every import statement in ``module``."""
    is_package = MODULES[module].name == "__init__.py"
    found = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package of ``module``
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from slimvec.codecs import binary`` imports the submodule slimvec.codecs.binary
            targets = [
                f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                for a in node.names
            ]
        else:
            continue
        found += [(_resolve(t), node.lineno) for t in targets if t.split(".")[0] == "slimvec"]
    return found


def _graph() -> dict[str, dict[str, list[str]]]:
    """importer unit -> imported unit -> ["module:line", ...] (edges between units only)."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module in MODULES:
        for target, line in imports(module):
            if unit(target) != unit(module):
                edges[unit(module)][unit(target)].append(f"{module}:{line}")
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _layer(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


# -- the checks --------------------------------------------------------------------------------
GRAPH = _graph()


def test_every_unit_has_a_layer():
    missing = sorted({unit(m) for m in MODULES} - set().union(*LAYERS))
    assert not missing, f"place these packages/modules in LAYERS of this test: {missing}"


def test_no_import_cycles_between_packages():
    known = {(a, b) for kind, a, b in KNOWN_VIOLATIONS if kind == "cycle"}
    edges = {a: {b for b in targets if (a, b) not in known} for a, targets in GRAPH.items()}
    cycles = _cycles(edges)
    detail = {
        " <-> ".join(c): {f"{a} -> {b}": GRAPH[a][b][:3] for a in c for b in c if b in edges[a]}
        for c in cycles
    }
    assert not cycles, f"import cycles between packages: {detail}"


def test_no_import_cycles_between_modules():
    known = {(a, b) for kind, a, b in KNOWN_VIOLATIONS if kind == "cycle"}
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        edges[module] = {
            target
            for target, _ in imports(module)
            if target != module and (unit(module), unit(target)) not in known
        }
    cycles = _cycles(edges)
    assert not cycles, f"import cycles between modules: {cycles}"


def test_layers_point_down():
    upward = {
        f"{a} -> {b}": places[:3]
        for a, targets in GRAPH.items()
        for b, places in targets.items()
        if _layer(b) < _layer(a)
    }
    assert not upward, f"imports from a lower layer into a higher one: {upward}"


def test_known_violations_are_still_real():
    """A fixed violation must leave KNOWN_VIOLATIONS, so the list never hides a new one."""
    uses = _private_uses()
    stale = {
        v
        for v in KNOWN_VIOLATIONS
        if (v[0] == "cycle" and v[2] not in GRAPH.get(v[1], {}))
        or (v[0] == "private" and (v[1], v[2]) not in uses)
    }
    assert not stale, f"fixed: remove from KNOWN_VIOLATIONS {sorted(stale)}"


def _owners() -> dict[str, set[str]]:
    """Private name -> the units that define it (def/class, module or class level assignment,
    or ``self._x = ...``)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for t in ast.walk(target):
                        if isinstance(t, ast.Name):
                            names.append(t.id)
                        elif (
                            isinstance(t, ast.Attribute)
                            and isinstance(t.value, ast.Name)
                            and t.value.id in ("self", "cls")
                        ):
                            names.append(t.attr)
            for name in names:
                if name.startswith("_"):
                    owners[name].add(unit(module))
    return owners


OWNERS = _owners()


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses() -> dict[tuple[str, str], list[str]]:
    """(module, attribute) -> places where ``module`` uses a private member that no module of
    its own unit defines: ``obj._x`` on anything but ``self``/``cls``/``super()``, or
    ``from slimvec.other import _x``."""
    owners = OWNERS
    uses: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                value = node.value
                if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                    continue
                if (
                    isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name)
                    and value.func.id == "super"
                ):
                    continue
                if unit(module) in owners.get(node.attr, set()):
                    continue  # the unit's own private member (e.g. another instance's)
                uses[(module, node.attr)].append(f"{ast.unparse(node)} (line {node.lineno})")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slimvec"):
                source = _resolve(node.module or "")
                for alias in node.names:
                    if _is_private(alias.name) and unit(source) != unit(module):
                        uses[(module, alias.name)].append(f"import (line {node.lineno})")
    return uses


def test_no_private_members_of_other_packages():
    found = {
        key: places[:3]
        for key, places in _private_uses().items()
        if key not in ALLOWED_PRIVATE and ("private", *key) not in KNOWN_VIOLATIONS
    }
    assert not found, f"private members of another package used: {found}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from slimvec.codecs import binary", ["slimvec.codecs.binary"]),
        ("from slimvec.codecs.binary import BinaryCodec", ["slimvec.codecs.binary"]),
        ("import slimvec.kernels.topk", ["slimvec.kernels.topk"]),
        ("def f():\n    from slimvec import collection", ["slimvec.collection"]),
        ("from . import base", ["slimvec.codecs.base"]),
        ("import numpy", []),
    ],
)
def test_imports_are_read_at_every_level(source, expected, monkeypatch):
    """The reader sees function-level, relative and submodule imports (else the checks above
    could pass by not looking)."""
    monkeypatch.setitem(TREES, "slimvec.codecs", ast.parse(source))
    assert [target for target, _ in imports("slimvec.codecs")] == expected


def test_checks_catch_what_they_guard():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _layer("kernels") > _layer("codecs") > _layer("search") > _layer("collection")


def test_an_upward_import_and_a_private_reach_are_caught(monkeypatch):
    monkeypatch.setitem(
        TREES,
        "slimvec.kernels.topk",
        ast.parse("def f(col):\n    from slimvec.collection import Collection\n    col._manifest"),
    )
    assert "collection" in _graph()["kernels"] and _layer("collection") < _layer("kernels")
    assert ("slimvec.kernels.topk", "_manifest") in _private_uses()
    monkeypatch.setitem(TREES, "slimvec.eval.metrics", ast.parse("from slimvec.spec import _x"))
    assert ("slimvec.eval.metrics", "_x") in _private_uses()


#: Issue 25's bounds: the local collection's module is its public face only, and no class
#: holds so much that it should be split by responsibility.
MAX_COLLECTION_LINES = 600
MAX_CLASS_LINES = 600


def test_the_collection_stays_a_facade_and_no_class_grows_past_its_bound():
    facade = (SRC / "collection.py").read_text().count("\n")
    assert facade <= MAX_COLLECTION_LINES, f"collection.py has {facade} lines: move engine work"
    big = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno >= MAX_CLASS_LINES:
                big.append(f"{path.relative_to(SRC)}:{node.name}")
    assert not big, f"classes over {MAX_CLASS_LINES} lines: {big}"
