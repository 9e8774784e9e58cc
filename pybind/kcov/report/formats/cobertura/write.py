"""Write Cobertura XML that validates against coverage-04.dtd.

Mapping: a package per directory (relative to the root, ``/`` as ``.``), a
class per source file, a method per instrumented function, a ``line`` per
line with a point, ``hits`` = the number of tests that reached it (as in
lcov).  Cobertura has no partly covered line, but it has branches, which
CI pages show as partial: a line holding several coverage points is
written as ``branch="true"`` with ``condition-coverage="50% (1/2)"`` (its
points reached / its points), and the branch counters and rates count the
points of such lines.  A trace-pc point marks a basic block, so this is
"blocks of the line", close to what branch coverage shows.
"""
from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr as _quoteattr

from ...model import CoverageData, LineStat
from ..base import common_root, function_line, function_lines, relative

DOCTYPE = ('<!DOCTYPE coverage SYSTEM '
           '"http://cobertura.sourceforge.net/xml/coverage-04.dtd">')


# Characters XML 1.0 cannot hold, even escaped (a damaged input may name a
# file with them): replaced, so the document stays well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(s: str) -> str:
    return _escape(_NOT_XML.sub("\ufffd", s))


def quoteattr(s: str) -> str:
    return _quoteattr(_NOT_XML.sub("\ufffd", s))


def _rate(part: int, whole: int) -> str:
    return repr(round(part / whole, 4)) if whole else "0.0"


class _Count:
    def __init__(self) -> None:
        self.lines = self.lines_hit = self.branches = self.branches_hit = 0

    def add(self, ls: LineStat) -> None:
        self.lines += 1
        self.lines_hit += bool(ls.hit)
        if ls.points > 1:
            self.branches += ls.points
            self.branches_hit += ls.hit

    def rates(self) -> str:
        return (f'line-rate="{_rate(self.lines_hit, self.lines)}" '
                f'branch-rate="{_rate(self.branches_hit, self.branches)}" '
                'complexity="0.0"')


def _line(n: int, ls: LineStat) -> str:
    attrs = f'number="{n}" hits="{len(ls.tests)}"'
    if ls.points > 1:
        pct = 100 * ls.hit // ls.points
        attrs += (f' branch="true" condition-coverage='
                  f'"{pct}% ({ls.hit}/{ls.points})"')
    else:
        attrs += ' branch="false"'
    return f"<line {attrs}/>"


def render(data: CoverageData, root: str = "", timestamp: int = -1) -> str:
    from .... import __version__

    if timestamp < 0:
        timestamp = int(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    files = data.files()
    root = root or common_root(files)
    flines = function_lines(data)
    packages: dict[str, list[str]] = defaultdict(list)
    for path in files:
        d = os.path.dirname(relative(path, root))
        packages[d.replace("/", ".") or "."].append(path)

    body: list[str] = []
    total = _Count()
    for pkg in sorted(packages):
        pcount = _Count()
        classes: list[str] = []
        for path in packages[pkg]:
            st = files[path]
            if not st.lines and not any(fs.instrumented
                                        for fs in st.functions.values()):
                continue
            ccount = _Count()
            for ls in st.lines.values():
                ccount.add(ls)
                pcount.add(ls)
                total.add(ls)
            rel = relative(path, root)
            cls = [f"    <class name={quoteattr(rel)} "
                   f"filename={quoteattr(rel)} {ccount.rates()}>",
                   "     <methods>"]
            funcs = sorted(
                (function_line(data, path, fs.name, fs.line), fs.name)
                for fs in st.functions.values()
                if fs.instrumented and fs.name)
            for _, name in funcs:
                mlines = sorted(n for n in flines.get((path, name), ())
                                if n in st.lines)
                mcount = _Count()
                for n in mlines:
                    mcount.add(st.lines[n])
                cls.append(f"      <method name={quoteattr(name)} "
                           f'signature="" {mcount.rates()}>')
                cls.append("       <lines>")
                cls += [f"        {_line(n, st.lines[n])}" for n in mlines]
                cls.append("       </lines>")
                cls.append("      </method>")
            cls.append("     </methods>")
            cls.append("     <lines>")
            cls += [f"      {_line(n, ls)}"
                    for n, ls in sorted(st.lines.items())]
            cls.append("     </lines>")
            cls.append("    </class>")
            classes += cls
        if not classes:
            continue
        body.append(f"  <package name={quoteattr(pkg)} {pcount.rates()}>")
        body.append("   <classes>")
        body += classes
        body.append("   </classes>")
        body.append("  </package>")

    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        DOCTYPE,
        f'<coverage line-rate="{_rate(total.lines_hit, total.lines)}" '
        f'branch-rate="{_rate(total.branches_hit, total.branches)}" '
        f'lines-covered="{total.lines_hit}" lines-valid="{total.lines}" '
        f'branches-covered="{total.branches_hit}" '
        f'branches-valid="{total.branches}" complexity="0.0" '
        f'version="kcov {escape(__version__)}" timestamp="{timestamp}">',
        " <sources>",
        f"  <source>{escape(root or '.')}</source>",
        " </sources>",
        " <packages>",
    ]
    return "\n".join(head + body + [" </packages>", "</coverage>"]) + "\n"
