"""Questions asked of coverage data: what one run reached that another did
not, which tests reach a function, and what a test added.

These are the answers ``kcov-report diff`` and ``kcov-report tests`` print
(and the pytest plugin points to); they are computed on
:class:`~kcov.report.model.CoverageData` with the model's attribution (a
point counts for every frame of its inline chain).

* :func:`gain` ``(a, b)``: the points ``a`` reached and ``b`` did not, the
  functions they lie in (``first=True`` when ``b`` reached none of the
  function's points) and the lines ``a`` reached that ``b`` never did.
* :func:`gain_of_test` ``(data, test, baseline=None)``: the same for one test
  against every other test of ``data`` (the points only this test
  reaches), or against a baseline run.
* :func:`tests_reaching` ``(data, name)``: the tests that reach a function
  (``name`` or ``file:name``).
* :func:`per_test` ``(data)``: per test, the points, the points no other
  test reaches, and the functions reached.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from os import EX_DATAERR
from typing import Iterable, Mapping

from .model import CoverageData, LineStat, ReportError


class UnknownNameError(ReportError):
    """A function or test the coverage data does not contain (65)."""

    exit_status = EX_DATAERR


@dataclass(frozen=True)
class FunctionGain:
    """A function in which ``a`` reached points that ``b`` did not."""

    file: str
    name: str
    line: int
    points: int     # newly reached points of the function
    total: int      # the function's points
    first: bool     # b reached none of its points
    tests: tuple[str, ...]  # tests of a that reached the new points


@dataclass(frozen=True)
class Gain:
    """What ``a`` reached that ``b`` did not (see :func:`gain`)."""

    points: int
    a_hit: int
    b_hit: int
    total: int
    functions: tuple[FunctionGain, ...]
    lines: dict[str, tuple[int, ...]]
    data: CoverageData  # a.diff(b): a's universe, only the new hits

    @property
    def empty(self) -> bool:
        return self.points == 0 and not self.lines


def gain(a: CoverageData, b: CoverageData) -> Gain:
    """What run ``a`` reached that run ``b`` did not."""
    d = a.diff(b)
    fa, fb, fd = a.files(), b.files(), d.files()
    funcs = []
    for path, st in fd.items():
        for fs in st.functions.values():
            if not fs.hit:
                continue
            old = fb.get(path)
            ofs = old.functions.get(fs.name) if old is not None else None
            funcs.append(FunctionGain(path, fs.name, fs.line, fs.hit, fs.points,
                                      ofs is None or ofs.hit == 0,
                                      tuple(sorted(fs.tests))))
    funcs.sort(key=lambda f: (not f.first, f.file, f.line, f.name))
    lines: dict[str, tuple[int, ...]] = {}
    for path, st in fa.items():
        old = fb.get(path)
        new = tuple(sorted(ln for ln, ls in st.lines.items()
                           if ls.hit and (old is None or not _line_hit(old.lines, ln))))
        if new:
            lines[path] = new
    ta, tb = a.totals(fa), b.totals(fb)
    return Gain(len(d.hits), ta.hit, tb.hit, ta.points, tuple(funcs), lines, d)


def _line_hit(lines: Mapping[int, LineStat], ln: int) -> bool:
    ls = lines.get(ln)
    return ls is not None and ls.hit > 0


def find_test(data: CoverageData, test: str) -> str:
    """``test`` if ``data`` has it; else :class:`UnknownNameError` naming
    the closest test names."""
    if test in data.tests:
        return test
    hint = difflib.get_close_matches(test, sorted(data.tests), n=3, cutoff=0.5)
    ends = sorted(t for t in data.tests if t.endswith(test))[:3]
    near = ends or hint
    raise UnknownNameError(
        f"no test {test!r} in the coverage data ({len(data.tests)} tests"
        + (f"; did you mean {', '.join(map(repr, near))}?)" if near else ")"))


def gain_of_test(data: CoverageData, test: str,
                 baseline: CoverageData | None = None) -> Gain:
    """What ``test`` added: the points it reached that no other test of
    ``data`` reached, or, with ``baseline``, that the baseline did not."""
    test = find_test(data, test)
    mine = data.only_tests([test])
    other = baseline if baseline is not None else data.only_tests(data.tests - {test})
    return gain(mine, other)


def _split(spec: str) -> tuple[str | None, str]:
    """``file:name`` -> (file, name); a plain name or a C++ name (with
    ``::``) has no file."""
    if "::" in spec or ":" not in spec:
        return None, spec
    f, _, n = spec.rpartition(":")
    return (f, n) if f and n else (None, spec)


def tests_reaching(data: CoverageData, function: str) -> set[str]:
    """The tests that reached a point of ``function`` (a name, or
    ``file:name`` where ``file`` is the source path or its tail).

    A function the data does not know is :class:`UnknownNameError`; a
    known function that no test reached gives the empty set."""
    want_file, name = _split(function)
    known = False
    out: set[str] = set()
    for pid, frames in data.points.items():
        for fr in frames:
            if fr.function == name and _file_matches(fr.file, want_file):
                known = True
                out |= data.hits.get(pid, frozenset())
                break
    if not known:
        known = any(d.name == name and _file_matches(d.file, want_file)
                    for d in data.functions.values())
    if not known:
        names = sorted({fr.function for frames in data.points.values() for fr in frames}
                       | {d.name for d in data.functions.values()})
        hint = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        raise UnknownNameError(
            f"no function {function!r} in the coverage data"
            + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else ""))
    return out


def _file_matches(path: str, want: str | None) -> bool:
    if want is None:
        return True
    return path == want or path.endswith("/" + want.lstrip("/"))


@dataclass(frozen=True)
class PerTest:
    test: str
    points: int
    only: int       # points no other test reached
    functions: int  # functions with a point the test reached


def per_test(data: CoverageData) -> list[PerTest]:
    """Per test of ``data``: what it reached, sorted by test name."""
    pts: dict[str, int] = {t: 0 for t in data.tests}
    only: dict[str, int] = {t: 0 for t in data.tests}
    funcs: dict[str, set[tuple[str, str]]] = {t: set() for t in data.tests}
    for pid, tests in data.hits.items():
        frames = data.points.get(pid, ())
        fn = {(fr.file, fr.function) for fr in frames}
        for t in tests:
            pts[t] = pts.get(t, 0) + 1
            funcs.setdefault(t, set()).update(fn)
        if len(tests) == 1:
            (t,) = tests
            only[t] = only.get(t, 0) + 1
    return [PerTest(t, pts.get(t, 0), only.get(t, 0), len(funcs.get(t, ())))
            for t in sorted(set(pts) | set(data.tests))]


def line_ranges(lines: Iterable[int]) -> str:
    """``1, 3-5, 9``."""
    out: list[str] = []
    run: list[int] = []
    for ln in sorted(lines):
        if run and ln == run[-1] + 1:
            run.append(ln)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [ln]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)
