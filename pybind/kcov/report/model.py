"""The coverage data model every reader and writer shares.

A *point* is one coverage callback call site in one module, named by
``(module key, offset)``; the offset is module-relative (the link-time
address for executables, shared objects and vmlinux, the offset in
``.text`` for a kernel module), so data from a PIE, a library loaded at
any address, or a module loaded under KASLR names the same points.  Each
point carries its source frames, innermost first (inlined callers follow).

What a run reached is kept per point as the *set of tests* that reached it,
never as a hit count: merging is then set union, which is associative,
commutative and idempotent, and a merged file can be merged again.  "Tests"
are whatever the producer names (a pytest node id, a run label); a run
without a name is the test ``""``.

The *universe* of a module is the set of its points.  When it was computed
from the binary (every callback call site, see :mod:`kcov.report.points`),
the module says so with ``universe=True`` and percentages are "X% of N
points"; without it only the reached points are known.

Attribution of a point to lines and functions: a point counts for every
frame of its inline chain (file and line of each frame, and the function of
each frame), as syzkaller does, so a line of an inlined helper and the
caller's line that inlined it are both shown as reached.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from .._base.errors import ToolkitError

FORMAT = "kcov-coverage"
VERSION = 1


class ReportError(ToolkitError):
    """A user-facing error: bad input, a conflict, a missing tool.

    ``str()`` is one line meant for the terminal; the CLI prints it and exits
    with :attr:`exit_status` (sysexits: 65 bad data, 66 missing input, 69
    tool unavailable, 73 cannot create)."""

    exit_status = os.EX_DATAERR


class FormatError(ReportError):
    """The input is not in the expected format, or is damaged."""


class MergeConflictError(ReportError):
    """Two inputs disagree about the same module or point."""


@dataclass(frozen=True, order=True)
class Frame:
    """One source location of a point; ``line`` 0 means unknown."""

    function: str
    file: str
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class Module:
    """A binary whose points are counted.

    ``key`` names it across runs: ``"build-id:<hex>"`` when the ELF file has
    a GNU build id, otherwise ``"name:<name>"``.  ``kind`` is one of
    ``exe``, ``dso``, ``kmod`` (offsets relative to ``.text``) or
    ``vmlinux``; ``lcov`` is a source file read from an lcov tracefile
    (offsets are line numbers, see :mod:`kcov.report.formats.lcov.read`)."""

    key: str
    name: str
    path: str = ""
    build_id: str = ""
    kind: str = "exe"
    universe: bool = False

    @staticmethod
    def make_key(name: str, build_id: str = "") -> str:
        return f"build-id:{build_id}" if build_id else f"name:{name}"


PointId = tuple[str, int]  # (module key, offset)


@dataclass(frozen=True)
class FunctionDecl:
    """A function known from source analysis (the libclang inventory), used
    to list functions that have no reached point, or no point at all."""

    name: str
    file: str
    start_line: int
    end_line: int


@dataclass
class LineStat:
    points: int = 0
    hit: int = 0
    tests: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        """``covered``, ``partial`` (some of the line's points reached) or
        ``uncovered``."""
        if self.hit == 0:
            return "uncovered"
        return "covered" if self.hit == self.points else "partial"


@dataclass
class FunctionStat:
    name: str
    file: str
    line: int  # first line with a point, or the declaration's start line
    points: int = 0
    hit: int = 0
    instrumented: bool = True
    tests: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        if not self.instrumented:
            return "not-instrumented"
        if self.hit == 0:
            return "uncovered"
        return "covered" if self.hit == self.points else "partial"


@dataclass
class FileStat:
    file: str
    lines: dict[int, LineStat] = field(default_factory=dict)
    functions: dict[str, FunctionStat] = field(default_factory=dict)
    points: int = 0
    hit: int = 0


@dataclass(frozen=True)
class Totals:
    points: int
    hit: int
    lines: int
    lines_hit: int
    functions: int
    functions_hit: int

    @staticmethod
    def percent(part: int, whole: int) -> float:
        return 100.0 * part / whole if whole else 0.0

    @property
    def point_percent(self) -> float:
        return self.percent(self.hit, self.points)

    @property
    def line_percent(self) -> float:
        return self.percent(self.lines_hit, self.lines)

    @property
    def function_percent(self) -> float:
        return self.percent(self.functions_hit, self.functions)


class CoverageData:
    """Points, what reached them, and the modules they belong to.

    Instances are plain containers; :meth:`merge` and :meth:`diff` return new
    ones and never modify their inputs."""

    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}
        self.points: dict[PointId, tuple[Frame, ...]] = {}
        self.hits: dict[PointId, frozenset[str]] = {}
        self.tests: set[str] = set()
        self.functions: dict[tuple[str, str], FunctionDecl] = {}

    # -- building ---------------------------------------------------------

    def add_module(self, module: Module) -> Module:
        old = self.modules.get(module.key)
        if old is None:
            self.modules[module.key] = module
            return module
        merged = _merge_module(old, module)
        self.modules[module.key] = merged
        return merged

    def add_point(self, module_key: str, offset: int,
                  frames: Iterable[Frame] = ()) -> None:
        pid = (module_key, int(offset))
        new = tuple(frames)
        old = self.points.get(pid)
        if old is None or not old:
            self.points[pid] = new
        elif new and new != old:
            raise MergeConflictError(
                f"point {module_key}+{offset:#x} has two different source "
                f"locations ({_where(old)} and {_where(new)}); the inputs "
                "come from different builds under the same module key")

    def add_hit(self, module_key: str, offset: int, test: str = "") -> None:
        pid = (module_key, int(offset))
        if pid not in self.points:
            self.points[pid] = ()
        self.hits[pid] = self.hits.get(pid, frozenset()) | {test}
        self.tests.add(test)

    def add_function(self, decl: FunctionDecl) -> None:
        self.functions.setdefault((decl.file, decl.name), decl)

    # -- algebra ----------------------------------------------------------

    def copy(self) -> CoverageData:
        out = CoverageData()
        out.modules = dict(self.modules)
        out.points = dict(self.points)
        out.hits = dict(self.hits)
        out.tests = set(self.tests)
        out.functions = dict(self.functions)
        return out

    def merge(self, *others: CoverageData) -> CoverageData:
        """Union of points, modules, functions and per-point test sets."""
        out = self.copy()
        for other in others:
            for m in other.modules.values():
                out.add_module(m)
            for pid, frames in other.points.items():
                out.add_point(pid[0], pid[1], frames)
            for pid, tests in other.hits.items():
                out.hits[pid] = out.hits.get(pid, frozenset()) | tests
            out.tests |= other.tests
            for decl in other.functions.values():
                out.add_function(decl)
        return out

    def diff(self, other: CoverageData) -> CoverageData:
        """What this run reached that ``other`` did not: same universe and
        modules as ``self``, hits kept only on points ``other`` never hit."""
        out = self.copy()
        out.hits = {pid: t for pid, t in self.hits.items()
                    if pid not in other.hits}
        return out

    def only_tests(self, tests: Iterable[str]) -> CoverageData:
        """The same universe, with only what the given tests reached."""
        keep = set(tests)
        out = self.copy()
        out.hits = {}
        for pid, t in self.hits.items():
            t2 = t & keep
            if t2:
                out.hits[pid] = frozenset(t2)
        out.tests = self.tests & keep
        return out

    # -- queries ----------------------------------------------------------

    def unmatched(self) -> list[PointId]:
        """Reached offsets that are not callback call sites of a module
        whose universe is known (syzkaller refuses such reports unless
        forced: they mean a wrong binary or a wrong module base)."""
        return sorted(pid for pid in self.hits
                      if self.modules.get(pid[0], _NO_MODULE).universe
                      and not self.points.get(pid))

    def tests_reaching(self, function: str) -> set[str]:
        out: set[str] = set()
        for pid, tests in self.hits.items():
            if any(f.function == function for f in self.points.get(pid, ())):
                out |= tests
        return out

    def files(self) -> dict[str, FileStat]:
        """Per-file line and function statistics, files sorted by path."""
        files: dict[str, FileStat] = {}

        def fstat(path: str) -> FileStat:
            st = files.get(path)
            if st is None:
                st = files[path] = FileStat(path)
            return st

        for pid, frames in self.points.items():
            if not frames:
                continue
            tests = self.hits.get(pid, frozenset())
            seen_lines: set[tuple[str, int]] = set()
            seen_funcs: set[tuple[str, str]] = set()
            seen_files: set[str] = set()
            for fr in frames:
                st = fstat(fr.file)
                if fr.file not in seen_files:
                    seen_files.add(fr.file)
                    st.points += 1
                    st.hit += bool(tests)
                if fr.line and (fr.file, fr.line) not in seen_lines:
                    seen_lines.add((fr.file, fr.line))
                    ls = st.lines.get(fr.line)
                    if ls is None:
                        ls = st.lines[fr.line] = LineStat()
                    ls.points += 1
                    ls.hit += bool(tests)
                    ls.tests |= tests
                if (fr.file, fr.function) not in seen_funcs:
                    seen_funcs.add((fr.file, fr.function))
                    fs = st.functions.get(fr.function)
                    if fs is None:
                        fs = st.functions[fr.function] = FunctionStat(
                            fr.function, fr.file, fr.line or 0)
                    elif fr.line and (not fs.line or fr.line < fs.line):
                        fs.line = fr.line
                    fs.points += 1
                    fs.hit += bool(tests)
                    fs.tests |= tests
        for decl in self.functions.values():
            st = fstat(decl.file)
            fs = st.functions.get(decl.name)
            if fs is None:
                st.functions[decl.name] = FunctionStat(
                    decl.name, decl.file, decl.start_line, instrumented=False)
        return dict(sorted(files.items()))

    def totals(self, files: Mapping[str, FileStat] | None = None) -> Totals:
        """Totals over modules: points are counted once each (not per
        frame); lines and functions over the per-file statistics."""
        files = self.files() if files is None else files
        # A reached offset that is not a call site of a module whose
        # universe is known is not a point (see unmatched()).
        pts = [pid for pid in self.points
               if self.points[pid] or (pid in self.hits and not self.modules.get(
                   pid[0], _NO_MODULE).universe)]
        return Totals(
            points=len(pts),
            hit=sum(1 for pid in pts if pid in self.hits),
            lines=sum(len(f.lines) for f in files.values()),
            lines_hit=sum(1 for f in files.values()
                          for ls in f.lines.values() if ls.hit),
            functions=sum(1 for f in files.values()
                          for fs in f.functions.values() if fs.instrumented),
            functions_hit=sum(1 for f in files.values()
                              for fs in f.functions.values() if fs.hit),
        )

    def directories(self, files: Mapping[str, FileStat] | None = None
                    ) -> dict[str, tuple[int, int]]:
        """``{directory: (points, hit)}`` for every directory on the path of
        a file, each point counted once per directory."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for pid, frames in self.points.items():
            dirs: set[str] = set()
            for fr in frames:
                d = os.path.dirname(fr.file)
                while True:
                    dirs.add(d)
                    parent = os.path.dirname(d)
                    if parent == d:
                        break
                    d = parent
            for d in dirs:
                out[d][0] += 1
                out[d][1] += pid in self.hits
        return {d: (v[0], v[1]) for d, v in sorted(out.items())}

    # -- JSON ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The versioned interchange form (numbers are numbers).

        Merge keys: a module by ``key``; a point by ``(module, offset)``;
        a function declaration by ``(file, name)``."""
        from .. import __version__

        by_mod: dict[str, list[PointId]] = defaultdict(list)
        for pid in self.points:
            by_mod[pid[0]].append(pid)
        modules = []
        for key in sorted(set(self.modules) | set(by_mod)):
            m = self.modules.get(key) or Module(key, key.split(":", 1)[-1])
            pts = []
            for pid in sorted(by_mod.get(key, ())):
                entry: dict[str, Any] = {
                    "offset": pid[1],
                    "frames": [[f.function, f.file, f.line, f.column]
                               for f in self.points[pid]],
                }
                if pid in self.hits:
                    entry["tests"] = sorted(self.hits[pid])
                pts.append(entry)
            modules.append({
                "key": m.key, "name": m.name, "path": m.path,
                "build_id": m.build_id, "kind": m.kind,
                "universe": m.universe, "points": pts,
            })
        return {
            "format": FORMAT,
            "version": VERSION,
            "producer": {"name": "kcov", "version": __version__},
            "tests": sorted(self.tests),
            "modules": modules,
            "functions": [[d.file, d.name, d.start_line, d.end_line]
                          for d in sorted(self.functions.values(),
                                          key=lambda d: (d.file, d.name))],
        }

    @classmethod
    def from_json(cls, doc: Any, source: str = "input") -> CoverageData:
        """Read :meth:`to_json`'s form, checking format and version first."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FormatError(f"{source}: not a kcov coverage file "
                              f"(no \"format\": \"{FORMAT}\")")
        ver = doc.get("version")
        if ver != VERSION:
            prod = doc.get("producer", {})
            raise FormatError(
                f"{source}: kcov coverage format version {ver!r} (written by "
                f"{_producer(prod)}); this kcov reads version {VERSION}: "
                "convert it with the kcov that wrote it")
        out = cls()
        try:
            out.tests = {_str(t) for t in doc.get("tests", [])}
            for m in doc["modules"]:
                mod = Module(_str(m["key"]), _str(m["name"]),
                             _str(m.get("path", "")),
                             _str(m.get("build_id", "")),
                             _str(m.get("kind", "exe")),
                             bool(m.get("universe", False)))
                out.add_module(mod)
                for p in m["points"]:
                    off = _int(p["offset"])
                    frames = tuple(Frame(_str(f[0]), _str(f[1]), _int(f[2]),
                                         _int(f[3])) for f in p["frames"])
                    out.add_point(mod.key, off, frames)
                    tests = p.get("tests")
                    if tests is not None:
                        ts = frozenset(_str(t) for t in tests)
                        if not ts:
                            raise FormatError(
                                f"{source}: point {mod.key}+{off:#x} has an "
                                "empty test list")
                        out.hits[(mod.key, off)] = ts
                        out.tests |= ts
            for f in doc.get("functions", []):
                out.add_function(FunctionDecl(_str(f[1]), _str(f[0]),
                                              _int(f[2]), _int(f[3])))
        except ReportError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise FormatError(f"{source}: malformed kcov coverage file "
                              f"({type(e).__name__}: {e})") from None
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoverageData):
            return NotImplemented
        return (self.modules == other.modules and self.points == other.points
                and self.hits == other.hits and self.tests == other.tests
                and self.functions == other.functions)

    def __iter__(self) -> Iterator[PointId]:
        return iter(sorted(self.points))


_NO_MODULE = Module("", "")


def _merge_module(a: Module, b: Module) -> Module:
    if a == b:
        return a
    if a.kind != b.kind:
        raise MergeConflictError(
            f"module {a.key}: kind {a.kind!r} in one input and {b.kind!r} in "
            "another")
    # Order-independent choice of the descriptive fields: the same build
    # may sit at different paths on different machines.
    path = min(p for p in (a.path, b.path) if p) if (a.path or b.path) else ""
    name = min(a.name, b.name)
    return Module(a.key, name, path, a.build_id or b.build_id, a.kind,
                  a.universe or b.universe)


def _where(frames: tuple[Frame, ...]) -> str:
    f = frames[0]
    return f"{f.function} {f.file}:{f.line}"


def _producer(prod: Any) -> str:
    if isinstance(prod, dict):
        return f"{prod.get('name', '?')} {prod.get('version', '?')}"
    return "an unknown producer"


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {type(v).__name__}")
    try:  # JSON escapes can spell lone surrogates, which no writer can encode
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"not Unicode text: {v[:40]!r}") from None
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise TypeError(f"expected a non-negative integer, got {v!r}")
    return v
