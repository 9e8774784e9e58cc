"""Read lcov tracefiles into the point model.

lcov knows lines and functions, not coverage points, so a tracefile is
represented as follows (and :mod:`.write` turns that back into the same
text, byte for byte, for every file it wrote):

* each source file ``SF:<path>`` is a module ``lcov:<path>`` of kind
  ``lcov`` whose universe is known (a ``DA`` line with count 0 is a known
  unreached line);
* each ``DA:<line>,<count>`` is one point at offset ``<line>``, with one
  frame ``(function, path, line)``; the function is the ``FN`` whose range
  holds the line (lcov 2's ``FN:<start>,<end>,<name>``), else the nearest
  ``FN`` starting at or before it, else ``""`` (code outside functions);
* each ``FN`` is one more point, at offset ``FN_BASE + crc32(name)``, with
  the frame ``(name, path, 0)``: line 0 adds it to its function and to no
  line, and carries ``FNDA``'s count; the ``FN`` line itself becomes a
  :class:`~kcov.report.model.FunctionDecl`, which writers use as the
  function's line (point counts of lcov input are therefore its lines
  plus its functions);
* a count is a number of tests: a count ``c`` in a record ``TN:<t>`` is read
  as the tests ``t, t#2, ... t#c`` (``""`` for the usual empty ``TN``, so a
  run without test names reads back as exactly that).  Set union then makes
  merging idempotent: merging a tracefile with itself changes nothing,
  where ``lcov -a`` would add the counts.  Tracefiles written by gcov or
  llvm-cov hold execution counts instead; they are clamped to
  :data:`MAX_COUNT` tests.

Branch records (``BRDA``/``BRF``/``BRH``) have no counterpart in the model
and are ignored; so are unknown ``KEY:value`` lines, as genhtml does.
"""
from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass, field

from ...model import CoverageData, FormatError, Frame, FunctionDecl, Module

#: Offsets of function points: above any line number.
FN_BASE = 1 << 32
#: Largest count read as that many tests (execution counts from gcov can be
#: in the millions; the model holds test *names*).
MAX_COUNT = 1024
KIND = "lcov"


def module_key(path: str) -> str:
    return f"lcov:{path}"


def function_offset(name: str) -> int:
    return FN_BASE + zlib.crc32(name.encode("utf-8"))


@dataclass
class _Source:
    """Everything one tracefile says about one source file, over all its
    records (one per TN, or repeated SF records)."""

    functions: dict[str, tuple[int, int]] = field(default_factory=dict)
    fn_tests: dict[str, frozenset[str]] = field(default_factory=dict)
    line_tests: dict[int, frozenset[str]] = field(default_factory=dict)


class _Tests:
    """Interned anonymous test sets, so a million lines reached by the same
    count share one set."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], frozenset[str]] = {}

    def __call__(self, tn: str, count: int) -> frozenset[str]:
        count = min(count, MAX_COUNT)
        key = (tn, count)
        s = self._cache.get(key)
        if s is None:
            s = frozenset([tn] + [f"{tn}#{k}" for k in range(2, count + 1)])
            self._cache[key] = s
        return s


def parse(text: str, source: str) -> CoverageData:
    sources: dict[str, _Source] = {}
    tests = _Tests()
    tn = ""
    cur: _Source | None = None
    fnl: dict[str, tuple[int, int]] = {}  # lcov 2 FNL index -> (start, end)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        if line == "end_of_record":
            if cur is None:
                raise FormatError(f"{where}: end_of_record outside a record")
            cur = None
            continue
        key, sep, val = line.partition(":")
        if not sep:
            raise FormatError(f"{where}: not an lcov line: {_clip(line)}")
        if key == "TN":
            tn = val
        elif key == "SF":
            if not val:
                raise FormatError(f"{where}: empty SF path")
            cur = sources.setdefault(val, _Source())
            fnl = {}
        elif key in ("DA", "FN", "FNDA", "FNL", "FNA"):
            if cur is None:
                raise FormatError(f"{where}: {key} record before SF")
            _record(cur, key, val, tn, tests, fnl, where)
        # VER, FNF, FNH, LF, LH, BRDA, BRF, BRH and unknown keys: ignored.
    if cur is not None:
        raise FormatError(f"{source}: last record has no end_of_record "
                          "(truncated file?)")
    return _build(sources)


def _record(cur: _Source, key: str, val: str, tn: str, tests: _Tests,
            fnl: dict[str, tuple[int, int]], where: str) -> None:
    try:
        if key == "DA":
            f = val.split(",")
            line, count = int(f[0]), int(f[1])
            if line <= 0 or count < 0:
                raise ValueError
            _add(cur.line_tests, line, tests(tn, count) if count else _NONE)
        elif key == "FN":
            # FN:<line>,<name> (v1) or FN:<line>,<end>,<name> (lcov 2)
            first, _, rest = val.partition(",")
            start, end = int(first), 0
            second, _, name3 = rest.partition(",")
            if name3 and second.isdigit():
                end, name = int(second), name3
            else:
                name = rest
            if not name or start < 0:
                raise ValueError
            cur.functions.setdefault(name, (start, end))
            _add(cur.fn_tests, name, _NONE)
        elif key == "FNDA":
            count_s, _, name = val.partition(",")
            count = int(count_s)
            if not name or count < 0:
                raise ValueError
            cur.functions.setdefault(name, (0, 0))
            _add(cur.fn_tests, name, tests(tn, count) if count else _NONE)
        elif key == "FNL":
            # lcov 2.2: FNL:<index>,<start>[,<end>]
            f = val.split(",")
            fnl[f[0]] = (int(f[1]), int(f[2]) if len(f) > 2 else 0)
        else:  # FNA:<index>,<count>,<name>
            idx, count_s, name = val.split(",", 2)
            count = int(count_s)
            if not name or count < 0 or idx not in fnl:
                raise ValueError
            cur.functions.setdefault(name, fnl[idx])
            _add(cur.fn_tests, name, tests(tn, count) if count else _NONE)
    except (ValueError, IndexError):
        raise FormatError(f"{where}: malformed {key} record: "
                          f"{_clip(key + ':' + val)}") from None


_NONE: frozenset[str] = frozenset()


def _add(d: dict, key: object, tests: frozenset[str]) -> None:  # type: ignore[type-arg]
    old = d.get(key)
    d[key] = tests if not old else old | tests


def _build(sources: dict[str, _Source]) -> CoverageData:
    out = CoverageData()
    for path in sorted(sources):
        src = sources[path]
        key = module_key(path)
        out.add_module(Module(key, path, path, "", KIND, True))
        owner = _owner(src.functions)
        for line in sorted(src.line_tests):
            out.add_point(key, line, (Frame(owner(line), path, line),))
            _hit(out, key, line, src.line_tests[line])
        for name, (start, end) in sorted(src.functions.items()):
            off = function_offset(name)
            old = out.points.get((key, off))
            if old and old[0].function != name:
                raise FormatError(
                    f"{path}: functions {old[0].function!r} and {name!r} "
                    "have the same crc32; kcov cannot read this tracefile")
            out.add_point(key, off, (Frame(name, path, 0),))
            _hit(out, key, off, src.fn_tests.get(name, _NONE))
            out.add_function(FunctionDecl(name, path, start, end or start))
    return out


def _hit(out: CoverageData, key: str, off: int, tests: frozenset[str]
         ) -> None:
    if tests:
        out.hits[(key, off)] = tests
        out.tests |= tests


def _owner(functions: dict[str, tuple[int, int]]):  # type: ignore[no-untyped-def]
    """line -> the function holding it (see the module docstring)."""
    ranged = sorted(((s, e, n) for n, (s, e) in functions.items() if e),
                    key=lambda f: (f[0], -f[1]))
    starts = sorted((s, n) for n, (s, e) in functions.items() if s)
    keys = [s for s, _ in starts]

    def owner(line: int) -> str:
        inner = ""
        for s, e, n in ranged:
            if s > line:
                break
            if line <= e:
                inner = n  # later start = more deeply nested
        if inner:
            return inner
        i = bisect.bisect_right(keys, line)
        return starts[i - 1][1] if i else ""

    return owner


def _clip(s: str) -> str:
    return s if len(s) <= 60 else s[:57] + "..."
