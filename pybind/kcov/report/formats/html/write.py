"""Render the HTML report: directory -> file -> function, and every source
line coloured by what reached it.

Two layouts share the same fragments: a directory (``index.html`` with the
directory and file tables, one page per source file) and a single page
(the index followed by every file, for small programs).  Pages are
self-contained: inline CSS and JS, no fonts, images or other files, links
only between our own pages.

Line colours follow syzkaller's coverage page: covered black, partly
covered (some of the line's points reached) orange ``#c86400``, uncovered
red, not instrumented (no point on the line) grey ``#505050``; the test
count column is also filled with one colour per status.  Sources are read
from disk when the report is written; a missing one gives a note in the
page, and its instrumented lines are listed without text.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from ...model import CoverageData, FileStat, FunctionStat, LineStat, Totals
from ..base import common_root, function_line, function_lines, relative

STATUS_TEXT = {"c": "covered", "p": "partly covered", "u": "uncovered",
               "n": "not instrumented"}
#: Fill of the test-count cell per line status (the screenshot test looks
#: for exactly these).
FILL = {"c": (176, 232, 176), "p": (255, 213, 154), "u": (255, 176, 176)}

CSS = """\
body{font:14px/1.4 sans-serif;margin:1em 2em;color:#000;background:#fff}
h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}
a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}
.meta{color:#444}.note{background:#fff4d0;border:1px solid #e0c060;\
padding:.4em .8em;display:inline-block}
table{border-collapse:collapse;margin:.3em 0}
th,td{padding:2px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#e8e8e8;border-bottom:1px solid #999}
table.sortable thead th{cursor:pointer;user-select:none}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
tbody tr:nth-child(even){background:#f6f6f6}
tfoot td{font-weight:bold;border-top:1px solid #999}
td.lo{color:#b00000}td.mid{color:#a05000}td.hi{color:#006000}
table.src{font:13px/1.35 monospace;border-collapse:collapse;width:100%}
table.src td{padding:0 8px;text-align:left;white-space:pre;tab-size:8;\
vertical-align:top}
table.src td.ln{text-align:right;color:#888;width:1%;user-select:none}
table.src td.ln a{color:#888}
table.src td.tc{text-align:right;width:1%;min-width:3em}
table.src tr:nth-child(even){background:none}
tr.c td.code{color:#000;font-weight:bold}
tr.p td.code{color:#c86400;font-weight:bold}
tr.u td.code{color:#ff0000;font-weight:bold}
tr.n td.code{color:#505050}
""" + "".join(f"tr.{k} td.tc,span.{k}{{background:rgb{v}}}\n"
              for k, v in FILL.items()) + """\
span.c,span.p,span.u,span.n{padding:0 .5em;margin-right:.5em}
tr:target td{outline:2px solid #8ab}
"""

# Sorting: a click on a header sorts the body rows by that column (numbers
# by data-v, text otherwise); a second click reverses.  The sort is stable,
# so sorting by directory, then by coverage, keeps directories grouped.
JS = """\
function kcovSort(th){
 var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
 var asc=th.getAttribute('data-dir')!=='asc';
 t.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('data-dir')});
 th.setAttribute('data-dir',asc?'asc':'desc');
 function key(r){var c=r.cells[i],v=c.getAttribute('data-v');return v!==null?parseFloat(v):c.textContent.toLowerCase()}
 var rows=Array.prototype.slice.call(b.rows).map(function(r,n){return [key(r),n,r]});
 rows.sort(function(x,y){var d=x[0]<y[0]?-1:x[0]>y[0]?1:0;return (asc?d:-d)||x[1]-y[1]});
 rows.forEach(function(x){b.appendChild(x[2])});
}
document.querySelectorAll('table.sortable thead th').forEach(function(th){
 th.addEventListener('click',function(){kcovSort(th)});
});
"""

_NUM = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Options:
    root: str
    title: str
    source_map: tuple[tuple[str, str], ...]
    max_test_names: int
    version: str


def file_page_name(rel: str) -> str:
    """The page of a source file: its base name and a hash of its path
    relative to the report's root (stable across runs and checkouts,
    unique within a report)."""
    h = hashlib.sha1(rel.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{_NUM.sub('_', os.path.basename(rel))}.{h[:10]}.html"


def _anchor(rel: str) -> str:
    return "f-" + file_page_name(rel).rsplit(".", 2)[-2]


def _e(s: str) -> str:
    return html.escape(s, quote=True)


def _pct_cell(part: int, whole: int) -> str:
    if not whole:
        return '<td data-v="-1">-</td>'
    p = 100.0 * part / whole
    cls = "hi" if p >= 90 else "mid" if p >= 50 else "lo"
    return f'<td class="{cls}" data-v="{p:.4f}">{p:.2f}%</td>'


def _num(n: int) -> str:
    return f'<td data-v="{n}">{n}</td>'


def _trio(part: int, whole: int) -> str:
    return _num(part) + _num(whole) + _pct_cell(part, whole)


_COLS = ("Points hit", "Points", "%", "Lines hit", "Lines", "%",
         "Functions hit", "Functions", "%")


def _file_totals(st: FileStat) -> Totals:
    return Totals(
        points=st.points, hit=st.hit, lines=len(st.lines),
        lines_hit=sum(1 for ls in st.lines.values() if ls.hit),
        functions=sum(1 for fs in st.functions.values() if fs.instrumented),
        functions_hit=sum(1 for fs in st.functions.values() if fs.hit))


def _numbers(t: Totals) -> str:
    return (_trio(t.hit, t.points) + _trio(t.lines_hit, t.lines)
            + _trio(t.functions_hit, t.functions))


def _head(first: str, cols: Iterable[str] = _COLS) -> str:
    cells = "".join(f"<th>{_e(c)}</th>" for c in (first, *cols))
    return f"<thead><tr>{cells}</tr></thead>"


def _test_names(tests: Iterable[str], limit: int) -> str:
    names = sorted(t or "(unnamed run)" for t in tests)
    more = len(names) - limit
    shown = names[:limit] + ([f"... and {more} more"] if more > 0 else [])
    return "\n".join(shown)


def _page(title: str, body: list[str], o: Options) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="kcov {_e(o.version)}">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{CSS}</style>",
        "</head><body>",
        *body,
        f"<script>\n{JS}</script>",
        "</body></html>",
    ]) + "\n"


class _Report:
    def __init__(self, data: CoverageData, o: Options, single: bool) -> None:
        self.data = data
        self.o = o
        self.single = single
        self.files = data.files()
        self.root = o.root or common_root(self.files)
        self.flines = function_lines(data)
        self.by_dir: dict[str, list[str]] = defaultdict(list)
        for path in self.files:
            self.by_dir[os.path.dirname(relative(path, self.root))].append(
                path)

    def link(self, path: str, line: int = 0) -> str:
        rel = relative(path, self.root)
        if self.single:
            a = _anchor(rel)
            return f"#{a}-L{line}" if line else f"#{a}"
        page = file_page_name(rel)
        return f"{page}#L{line}" if line else page

    # -- index ------------------------------------------------------------

    def index(self) -> list[str]:
        d = self.data
        tot = d.totals(self.files)
        nt = len(d.tests)
        mods = ", ".join(
            f"{_e(m.name)} ({_e(m.kind)})"
            for m in sorted(d.modules.values(), key=lambda m: m.key))
        out = [f"<h1>{_e(self.o.title)}</h1>",
               f'<p class="meta">Root: {_e(self.root or "-")}<br>'
               f"{nt} test{'s' if nt != 1 else ''}; modules: "
               f"{mods or '-'}</p>",
               '<table class="totals" id="totals">',
               _head("", ("Hit", "Total", "%")), "<tbody>",
               f"<tr><td>Points</td>{_trio(tot.hit, tot.points)}</tr>",
               f"<tr><td>Lines</td>{_trio(tot.lines_hit, tot.lines)}</tr>",
               f"<tr><td>Functions</td>"
               f"{_trio(tot.functions_hit, tot.functions)}</tr>",
               "</tbody></table>"]
        # Directories: each with the points, lines and functions of the
        # files directly in it (a point counted once per directory).
        out += ["<h2>Directories</h2>",
                '<table class="sortable" id="dirs">', _head("Directory"),
                "<tbody>"]
        dir_of = {p: os.path.dirname(relative(p, self.root))
                  for p in self.files}
        dpoints: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for pid, frames in d.points.items():
            for fr in frames:
                if fr.file in dir_of:
                    dpoints[dir_of[fr.file]].add(pid)
        for dname in sorted(self.by_dir):
            pts = dpoints.get(dname, set())
            sts = [_file_totals(self.files[p]) for p in self.by_dir[dname]]
            t = Totals(len(pts), sum(1 for p in pts if p in d.hits),
                       sum(s.lines for s in sts),
                       sum(s.lines_hit for s in sts),
                       sum(s.functions for s in sts),
                       sum(s.functions_hit for s in sts))
            out.append(f'<tr><td><a href="#{self._dir_id(dname)}">'
                       f"{_e(dname or '.')}/</a></td>{_numbers(t)}</tr>")
        out.append("</tbody></table>")
        for dname in sorted(self.by_dir):
            did = self._dir_id(dname)
            out += [f'<h2 id="{did}">{_e(dname or ".")}/</h2>',
                    f'<table class="sortable" id="files-{did}">',
                    _head("File"), "<tbody>"]
            for path in self.by_dir[dname]:
                t = _file_totals(self.files[path])
                out.append(f'<tr><td><a href="{_e(self.link(path))}">'
                           f"{_e(os.path.basename(path))}</a></td>"
                           f"{_numbers(t)}</tr>")
            out.append("</tbody></table>")
        return out

    @staticmethod
    def _dir_id(dname: str) -> str:
        return "d-" + hashlib.sha1(dname.encode("utf-8", "surrogateescape")
                                   ).hexdigest()[:10]

    # -- a file -----------------------------------------------------------

    def file(self, path: str) -> list[str]:
        st = self.files[path]
        rel = relative(path, self.root)
        pre = f"{_anchor(rel)}-" if self.single else ""
        t = _file_totals(st)
        out = []
        if not self.single:
            out.append('<p class="meta"><a href="index.html">index</a> / '
                       f'<a href="index.html#{self._dir_id(os.path.dirname(rel))}">'
                       f"{_e(os.path.dirname(rel) or '.')}</a> / "
                       f"{_e(os.path.basename(rel))}</p>")
        out += [f"<h1>{_e(rel)}</h1>",
                f'<table class="totals">{_head("")}<tbody>'
                f"<tr><td>{_e(os.path.basename(rel))}</td>{_numbers(t)}</tr>"
                "</tbody></table>"]
        out += self._functions(path, st, pre)
        out += self._source(path, st, pre)
        return out

    def _functions(self, path: str, st: FileStat, pre: str) -> list[str]:
        out = ["<h2>Functions</h2>",
               f'<table class="sortable" id="{pre}functions">',
               _head("Function", ("Line", "Points hit", "Points", "%",
                                  "Lines hit", "Lines", "Tests", "Status")),
               "<tbody>"]
        funcs = sorted(st.functions.values(), key=lambda fs: (
            function_line(self.data, path, fs.name, fs.line), fs.name))
        for fs in funcs:
            out.append(self._function_row(path, st, fs, pre))
        out.append("</tbody></table>")
        return out

    def _function_row(self, path: str, st: FileStat, fs: FunctionStat,
                      pre: str) -> str:
        line = function_line(self.data, path, fs.name, fs.line)
        lines = [n for n in self.flines.get((path, fs.name), ())
                 if n in st.lines]
        lhit = sum(1 for n in lines if st.lines[n].hit)
        status = fs.status.replace("-", " ")
        name = _e(fs.name or "(no function)")
        if line:
            name = f'<a href="#{pre}L{line}">{name}</a>'
        tests = (f'<td data-v="{len(fs.tests)}" title="'
                 f'{_e(_test_names(fs.tests, self.o.max_test_names))}">'
                 f"{len(fs.tests)}</td>")
        if not fs.instrumented:
            return (f"<tr><td>{name}</td>{_num(line)}"
                    + '<td data-v="-1">-</td>' * 5
                    + f'<td data-v="-1">-</td><td>{status}</td></tr>')
        return (f"<tr><td>{name}</td>{_num(line)}{_trio(fs.hit, fs.points)}"
                f"{_num(lhit)}{_num(len(lines))}{tests}"
                f"<td>{status}</td></tr>")

    def _source(self, path: str, st: FileStat, pre: str) -> list[str]:
        out = ["<h2>Source</h2>",
               '<p class="legend">' + "".join(
                   f'<span class="{k}">{v}</span>'
                   for k, v in STATUS_TEXT.items()) + "</p>"]
        text = _read_source(path, self.o.source_map)
        last = max(st.lines, default=0)
        if text is None:
            out.append(f'<p class="note">Source file not found: '
                       f"{_e(_mapped(path, self.o.source_map))}. Its "
                       "instrumented lines are listed without text.</p>")
            numbers: Iterable[int] = sorted(st.lines)
            src: list[str] = []
        else:
            src = text
            if last > len(src):
                out.append(f'<p class="note">The source has {len(src)} '
                           f"lines but coverage names line {last}: it has "
                           "changed since the build.</p>")
            # Lines past the end are listed, not the gap up to them: a
            # damaged input may name line 4000000000.
            numbers = [*range(1, len(src) + 1), *(n for n in sorted(st.lines) if n > len(src))]
        out.append(f'<table class="src" id="{pre}source"><tbody>')
        for n in numbers:
            ls = st.lines.get(n)
            code = _e(src[n - 1]) if n <= len(src) else ""
            out.append(self._line(n, ls, code, pre))
        out.append("</tbody></table>")
        return out

    def _line(self, n: int, ls: LineStat | None, code: str, pre: str) -> str:
        if ls is None:
            return (f'<tr class="n" id="{pre}L{n}"><td class="ln">'
                    f'<a href="#{pre}L{n}">{n}</a></td><td class="tc"></td>'
                    f'<td class="code">{code}</td></tr>')
        k = {"covered": "c", "partial": "p", "uncovered": "u"}[ls.status]
        title = f"{ls.hit} of {ls.points} point{'s' if ls.points != 1 else ''} reached"
        if ls.tests:
            title += ("; tests:\n"
                      + _test_names(ls.tests, self.o.max_test_names))
        return (f'<tr class="{k}" id="{pre}L{n}"><td class="ln">'
                f'<a href="#{pre}L{n}">{n}</a></td>'
                f'<td class="tc" title="{_e(title)}">{len(ls.tests)}</td>'
                f'<td class="code">{code}</td></tr>')


def _mapped(path: str, source_map: tuple[tuple[str, str], ...]) -> str:
    for old, new in source_map:
        if path == old or path.startswith(old.rstrip("/") + "/"):
            return new.rstrip("/") + path[len(old.rstrip("/")):]
    return path


def _read_source(path: str, source_map: tuple[tuple[str, str], ...]
                 ) -> list[str] | None:
    src = _mapped(path, source_map)
    try:
        # Only a regular file: /dev/zero would never end, and a FIFO would
        # wait for a writer.
        if not stat.S_ISREG(os.stat(src).st_mode):
            return None
        with open(src, "rb") as f:
            raw = f.read()
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    # Split on newlines only: kernel sources hold form feeds, which
    # str.splitlines() would count as line ends.
    lines = raw.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def parse_source_map(spec: str) -> tuple[tuple[str, str], ...]:
    """``"OLD=NEW[,OLD2=NEW2]"`` -> pairs."""
    out = []
    for item in filter(None, spec.split(",")):
        old, sep, new = item.partition("=")
        if not sep or not old:
            from ...model import ReportError
            raise ReportError(f"html: source_map entry {item!r} is not "
                              "OLD=NEW", 64)
        out.append((old, new))
    return tuple(out)


def render_pages(data: CoverageData, o: Options, single: bool
                 ) -> dict[str, str]:
    """``{file name: page}``: ``index.html`` and one page per source file,
    or only ``index.html`` holding everything when ``single``."""
    r = _Report(data, o, single)
    if single:
        body = r.index()
        for path in r.files:
            body.append(
                f'<section id="{_anchor(relative(path, r.root))}">')
            body += r.file(path)
            body.append("</section>")
        return {"index.html": _page(o.title, body, o)}
    pages = {"index.html": _page(o.title, r.index(), o)}
    for path in r.files:
        rel = relative(path, r.root)
        pages[file_page_name(rel)] = _page(f"{rel} - {o.title}",
                                            r.file(path), o)
    return pages
