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

The markup lives in Jinja2 templates beside this module (``templates/``:
``page.html`` includes ``index.html`` and ``file.html``, whose cells come
from the macros of ``cells.html``; ``kcov.css`` and ``kcov.js`` are inlined
into every page).  Jinja2 because gcovr, the model for our report formats,
builds its HTML report with it (so its users already have it), and because
its autoescape escapes every value a template prints unless it is marked
as markup: source text holding ``</script>`` or ``<img onerror=...>``
cannot reach the page as a tag, where a hand-written f-string only had to
forget one call.  This module only gathers plain values (:class:`_Index`,
:class:`_File`); the templates decide how they look.
"""
from __future__ import annotations

import functools
import hashlib
import html
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator

import jinja2

from ...model import CoverageData, FileStat, FunctionStat, Module, Totals
from ..base import common_root, function_line, function_lines, relative

STATUS_TEXT = {"c": "covered", "p": "partly covered", "u": "uncovered",
               "n": "not instrumented"}
#: Fill of the test-count cell per line status (the screenshot test looks
#: for exactly these).
FILL = {"c": (176, 232, 176), "p": (255, 213, 154), "u": (255, 176, 176)}

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


class _Escaped(str):
    """Text escaped by :func:`_escape`: Jinja2's autoescape leaves it as
    it is (a plain str subclass: cheaper to make than Markup, and a page
    has one per source line and cell)."""
    __slots__ = ()

    def __html__(self) -> str:
        return self


def _escape(value: object) -> object:
    """Every ``{{ }}`` of the templates goes through here (Jinja2's
    ``finalize``), before autoescape.  Text is escaped as
    :func:`html.escape` does (``&quot;``, ``&#x27;``): what the pages held
    before they came from templates, where markupsafe would write
    ``&#34;`` and ``&#39;``.  Markup (a macro's output) is already HTML, and
    a number needs no escaping."""
    if value.__class__ is str:
        return _Escaped(html.escape(value, quote=True))
    if value.__class__ is int or hasattr(value, "__html__"):
        return value
    return _Escaped(html.escape(str(value), quote=True))


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(__name__.rpartition(".")[0], "templates"),
        autoescape=True, finalize=_escape, undefined=jinja2.StrictUndefined,
        # A template line holding only a block tag leaves nothing behind,
        # and a fragment keeps its last newline: each emitted line is one
        # line of the template.
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _file_totals(st: FileStat) -> Totals:
    return Totals(
        points=st.points, hit=st.hit, lines=len(st.lines),
        lines_hit=sum(1 for ls in st.lines.values() if ls.hit),
        functions=sum(1 for fs in st.functions.values() if fs.instrumented),
        functions_hit=sum(1 for fs in st.functions.values() if fs.hit))


def _test_names(tests: Iterable[str], limit: int) -> str:
    names = sorted(t or "(unnamed run)" for t in tests)
    more = len(names) - limit
    shown = names[:limit] + ([f"... and {more} more"] if more > 0 else [])
    return "\n".join(shown)


def _dir_id(dname: str) -> str:
    return "d-" + hashlib.sha1(dname.encode("utf-8", "surrogateescape")
                               ).hexdigest()[:10]


# What the templates are given: plain values, no markup.  index.html shows
# an _Index, file.html a _File.

@dataclass(frozen=True)
class _Entry:
    """A row of a directory's file table."""
    name: str
    link: str
    totals: Totals


@dataclass(frozen=True)
class _Dir:
    id: str
    name: str
    totals: Totals
    files: list[_Entry]


@dataclass(frozen=True)
class _Index:
    title: str
    root: str
    tests: int
    modules: list[Module]
    totals: Totals
    dirs: list[_Dir]


@dataclass(frozen=True)
class _Function:
    name: str
    line: int
    instrumented: bool
    hit: int
    points: int
    lines_hit: int
    lines: int
    ntests: int
    tests: str
    status: str


@dataclass(frozen=True)
class _File:
    rel: str
    anchor: str
    pre: str
    dir_id: str
    totals: Totals
    functions: list[_Function]
    source: str
    lines: list[str] | None  # None: the source was not found
    st: FileStat
    max_test_names: int

    @property
    def dirname(self) -> str:
        return os.path.dirname(self.rel)

    @property
    def basename(self) -> str:
        return os.path.basename(self.rel)

    @property
    def last(self) -> int:
        return max(self.st.lines, default=0)

    def rows(self) -> Iterator[tuple[str, int, str, str, int, str]]:
        """(id, number, status class, hover text, test count, text) of
        each line shown: every line of the source, then instrumented lines
        past its end (not the gap up to them: a damaged input may name
        line 4000000000); only the instrumented lines if the source is
        missing."""
        src = self.lines or []
        lines = self.st.lines
        numbers: Iterable[int] = sorted(lines)
        if self.lines is not None:
            numbers = [*range(1, len(src) + 1),
                       *(n for n in numbers if n > len(src))]
        for n in numbers:
            code = src[n - 1] if n <= len(src) else ""
            ls = lines.get(n)
            if ls is None:
                yield f"{self.pre}L{n}", n, "n", "", 0, code
                continue
            title = (f"{ls.hit} of {ls.points} "
                     f"point{'s' if ls.points != 1 else ''} reached")
            if ls.tests:
                title += ("; tests:\n"
                          + _test_names(ls.tests, self.max_test_names))
            yield (f"{self.pre}L{n}", n, _CLASS[ls.status], title,
                   len(ls.tests), code)


_CLASS = {"covered": "c", "partial": "p", "uncovered": "u"}


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

    def link(self, path: str) -> str:
        rel = relative(path, self.root)
        return f"#{_anchor(rel)}" if self.single else file_page_name(rel)

    def index(self) -> _Index:
        d = self.data
        # Directories: each with the points, lines and functions of the
        # files directly in it (a point counted once per directory).
        dir_of = {p: os.path.dirname(relative(p, self.root))
                  for p in self.files}
        dpoints: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for pid, frames in d.points.items():
            for fr in frames:
                if fr.file in dir_of:
                    dpoints[dir_of[fr.file]].add(pid)
        dirs = []
        for dname in sorted(self.by_dir):
            pts = dpoints.get(dname, set())
            entries = [_Entry(os.path.basename(p), self.link(p),
                              _file_totals(self.files[p]))
                       for p in self.by_dir[dname]]
            sts = [e.totals for e in entries]
            t = Totals(len(pts), sum(1 for p in pts if p in d.hits),
                       sum(s.lines for s in sts),
                       sum(s.lines_hit for s in sts),
                       sum(s.functions for s in sts),
                       sum(s.functions_hit for s in sts))
            dirs.append(_Dir(_dir_id(dname), dname or ".", t, entries))
        return _Index(self.o.title, self.root, len(d.tests),
                      sorted(d.modules.values(), key=lambda m: m.key),
                      d.totals(self.files), dirs)

    def file(self, path: str) -> _File:
        st = self.files[path]
        rel = relative(path, self.root)
        funcs = sorted(st.functions.values(), key=lambda fs: (
            function_line(self.data, path, fs.name, fs.line), fs.name))
        return _File(rel, _anchor(rel),
                     f"{_anchor(rel)}-" if self.single else "",
                     _dir_id(os.path.dirname(rel)), _file_totals(st),
                     [self._function(path, st, fs) for fs in funcs],
                     _mapped(path, self.o.source_map),
                     _read_source(path, self.o.source_map), st,
                     self.o.max_test_names)

    def _function(self, path: str, st: FileStat,
                  fs: FunctionStat) -> _Function:
        lines = [n for n in self.flines.get((path, fs.name), ())
                 if n in st.lines]
        return _Function(
            fs.name or "(no function)",
            function_line(self.data, path, fs.name, fs.line),
            fs.instrumented, fs.hit, fs.points,
            sum(1 for n in lines if st.lines[n].hit), len(lines),
            len(fs.tests), _test_names(fs.tests, self.o.max_test_names),
            fs.status.replace("-", " "))

    def page(self, title: str, index: _Index | None,
             files: Iterable[_File]) -> str:
        return _environment().get_template("page.html").render(
            title=title, version=self.o.version, fill=FILL,
            status_text=STATUS_TEXT, single=self.single, index=index,
            files=files)


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
        # Files one by one: a source is read when its turn comes.
        return {"index.html": r.page(o.title, r.index(),
                                     map(r.file, r.files))}
    pages = {"index.html": r.page(o.title, r.index(), [])}
    for path in r.files:
        f = r.file(path)
        pages[file_page_name(f.rel)] = r.page(f"{f.rel} - {o.title}", None,
                                              [f])
    return pages
