"""kcov-build and kcov are layered: their import graph has no cycle.

The graph is read from the sources with `ast`, so it sees every import a
module can make: at module level, inside functions (the ones that hid the
old build -> kmod_profile -> settings -> pgo -> build cycle), relative and
absolute.  kcov_build stands on kcov and never the other way round, and it
uses only kcov's public names.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Mapping

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"kcov_build": ROOT / "build_plugin" / "kcov_build", "kcov": ROOT / "pybind" / "kcov"}
# Compiled modules: no source to parse, and they import nothing of ours.
EXTENSIONS = ("kcov._core",)


def source_modules(packages: Mapping[str, Path]) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (source file, whether it is a package)."""
    out: dict[str, tuple[Path, bool]] = {}
    for pkg, root in packages.items():
        for path in sorted(root.rglob("*.py")):
            parts = [pkg, *path.relative_to(root).with_suffix("").parts]
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _ours(name: str, known: Iterable[str]) -> str | None:
    """The innermost module of ours that importing `name` runs, if any."""
    known = set(known)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path, module: str, is_pkg: bool) -> Iterable[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file."""
    package = module if is_pkg else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base, [a.name for a in node.names], node.lineno


def import_graph(packages: Mapping[str, Path], extensions: Iterable[str] = ()) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (a `from P import m` of a
    submodule m is an edge to P.m)."""
    mods = source_modules(packages)
    known = set(mods) | set(extensions)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for name, (path, is_pkg) in mods.items():
        for base, names, _ in imports(path, name, is_pkg):
            targets = [f"{base}.{n}" if f"{base}.{n}" in known else _ours(base, known) for n in names or [""]]
            if not names:
                targets = [_ours(base, known)]
            graph[name].update(t for t in targets if t is not None and t != name)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_planted_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e", "f"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .high import g\n    return g\n")
    (pkg / "high.py").write_text("from p import low\nfrom p.low import f as g\n")
    graph = import_graph({"p": pkg})
    assert graph["p.high"] == {"p.low"} and graph["p.low"] == {"p.high"}
    assert cycles(graph) == [["p.high", "p.low"]]


def test_kcov_build_and_kcov_have_no_import_cycle() -> None:
    graph = import_graph(PACKAGES, EXTENSIONS)
    assert len([m for m in graph if m.startswith("kcov_build.")]) > 10, sorted(graph)
    assert {"kcov_build.pgo", "kcov_build.settings"} <= graph["kcov_build.capability"]
    assert cycles(graph) == []


def test_kcov_never_imports_kcov_build() -> None:
    graph = import_graph(PACKAGES, EXTENSIONS)
    upward = {m: sorted(d for d in deps if d.split(".")[0] == "kcov_build")
              for m, deps in graph.items() if m.split(".")[0] == "kcov"}
    assert {m: d for m, d in upward.items() if d} == {}


# kcov._base, the shared base for files, errors and CLIs, is private to the
# toolkit but made for kcov_build as much as for kcov (kcov/_base/__init__.py).
SHARED_BASE = "_base"


def private_uses(packages: Mapping[str, Path], user: str, provider: str) -> list[str]:
    """`from provider... import _name` (or a private submodule) in user's modules."""
    found = []
    shared = f"{provider}.{SHARED_BASE}"
    for name, (path, is_pkg) in source_modules(packages).items():
        if name.split(".")[0] != user:
            continue
        for base, names, line in imports(path, name, is_pkg):
            if base.split(".")[0] != provider or base == shared or base.startswith(shared + "."):
                continue
            bad = [p for p in base.split(".")[1:] if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if bad:
                found.append(f"{path.name}:{line}: {base} {bad}")
    return found


def test_private_use_finder_finds_a_planted_one(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "m.py").write_text(
        "def f():\n    from prov.llvm import _hidden, shown\n    from prov._base import ok\n    import prov._x\n")
    found = private_uses({"user": tmp_path / "user"}, "user", "prov")
    assert found == ["m.py:2: prov.llvm ['_hidden']", "m.py:4: prov._x ['_x']"]


def test_kcov_build_uses_only_public_names_of_kcov() -> None:
    assert private_uses(PACKAGES, "kcov_build", "kcov") == []


def elf_readers(packages: Mapping[str, Path]) -> list[str]:
    """Modules that parse ELF notes or headers themselves: they hold the
    GNU note name or the ELF section-header layout as a constant."""
    found = []
    for name, (path, _) in source_modules(packages).items():
        consts = [n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)]
        # The note name, or the struct format of a 64-bit section header.
        if any(c == b"GNU\0" or (isinstance(c, str) and "IIQQQQ" in c) for c in consts):
            found.append(name)
    return sorted(found)


def test_one_elf_reader(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "copy.py").write_text('import struct\nN = b"GNU\\0"\n')
    (tmp_path / "p" / "other.py").write_text("X = 1\n")
    assert elf_readers({"p": tmp_path / "p"}) == ["p.copy"]
    assert elf_readers(PACKAGES) == ["kcov.report.elf"]
