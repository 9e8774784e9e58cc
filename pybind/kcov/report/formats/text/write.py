"""Render the terminal summary.

Per-file points count a point once in each file its frames name (a point
of a helper inlined from a header counts in the header and in the caller's
file); the TOTAL row counts each point once, so it is not the column sum.
"""
from __future__ import annotations

import os

from collections import Counter
from typing import Callable

from ...model import CoverageData, FileStat, FunctionStat, ReportError, Totals
from ..base import common_root, function_line, percent_text, relative

_HEAD = ("File", "Points", "Hit", "Cover", "Lines", "Hit", "Cover",
         "Functions", "Hit", "Cover")


def _file_totals(st: FileStat) -> Totals:
    return Totals(
        points=st.points, hit=st.hit, lines=len(st.lines),
        lines_hit=sum(1 for ls in st.lines.values() if ls.hit),
        functions=sum(1 for fs in st.functions.values() if fs.instrumented),
        functions_hit=sum(1 for fs in st.functions.values() if fs.hit))


def _row(name: str, t: Totals) -> tuple[str, ...]:
    return (name, str(t.points), str(t.hit), percent_text(t.hit, t.points),
            str(t.lines), str(t.lines_hit),
            percent_text(t.lines_hit, t.lines),
            str(t.functions), str(t.functions_hit),
            percent_text(t.functions_hit, t.functions))


def render(data: CoverageData, root: str = "", functions: str = "") -> str:
    if functions not in ("", "unreached", "all"):
        raise ReportError(f"text: functions must be 'unreached' or 'all', "
                          f"not {functions!r}", os.EX_USAGE)
    files = data.files()
    root = root or common_root(files)
    rows = [_row(relative(p, root), _file_totals(st))
            for p, st in files.items()]
    total = _row("TOTAL", data.totals(files))
    widths = [max(len(r[i]) for r in [_HEAD, total, *rows])
              for i in range(len(_HEAD))]

    def fmt(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(tuple("x" * w for w in widths)))
    out = [_header(data, root), rule, fmt(_HEAD), rule]
    out += [fmt(r) for r in rows]
    out += [rule, fmt(total), rule]
    if functions:
        out += _functions(data, files, root, functions)
    return "\n".join(out) + "\n"


def _header(data: CoverageData, root: str) -> str:
    mods = sorted(data.modules.values(), key=lambda m: m.key)
    npoints = Counter(key for key, _ in data.points)
    nhits = Counter(key for key, _ in data.hits)
    parts = []
    for m in mods:
        n, h = npoints[m.key], nhits[m.key]
        known = "" if m.universe else ", universe unknown"
        parts.append(f"{m.name} ({m.kind}, {h}/{n} points{known})")
    tests = len(data.tests)
    lines = [f"kcov coverage: {tests} test{'s' if tests != 1 else ''}, "
             f"root {root or '-'}"]
    lines += [f"module {p}" for p in parts]
    return "\n".join(lines)


def _functions(data: CoverageData, files: dict[str, FileStat], root: str,
               which: str) -> list[str]:
    out: list[str] = []
    groups: list[tuple[str, Callable[[FunctionStat], bool]]] = [
        ("Functions never reached", lambda fs: fs.instrumented and not fs.hit),
        ("Functions without coverage points (not instrumented)", lambda fs: not fs.instrumented)]
    if which == "all":
        groups.insert(0, ("Functions reached", lambda fs: fs.hit > 0))
    for title, keep in groups:
        items = sorted((
            (relative(p, root), function_line(data, p, fs.name, fs.line),
             fs.name, fs)
            for p, st in files.items() for fs in st.functions.values()
            if fs.name and keep(fs)), key=lambda x: x[:3])
        if not items:
            continue
        out += ["", f"{title} ({len(items)}):"]
        for rel, line, name, fs in items:
            extra = ""
            if fs.instrumented:
                nt = len(fs.tests)
                extra = (f"  {fs.hit}/{fs.points} points, "
                         f"{nt} test{'s' if nt != 1 else ''}")
            out.append(f"  {rel}:{line}  {name}{extra}")
    return out
