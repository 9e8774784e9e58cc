"""Write the classic lcov tracefile (geninfo's v1 shape, read by genhtml
1.x and 2.x, Codecov, Coveralls, editors)::

    TN:<test name>
    SF:<absolute source path>
    FN:<line>,<function>        one per function, by line
    FNDA:<count>,<function>
    FNF:<functions>  FNH:<functions reached>
    DA:<line>,<count>           one per line with a point, by line
    LF:<lines>  LH:<lines reached>
    end_of_record

A count is the number of tests that reached the line (or function): 1 for
a run without test names, 0 for a line whose points were never reached.
lcov has no notion of a partly reached line; such a line is reached.
Functions without any point (known only from the inventory) are left out:
lcov lists instrumented code, and genhtml's totals then match ours; so are
points without a source file (the symboliser's ``??``), which lcov cannot
name.  A file or function name with a line break cannot be written (65).
"""
from __future__ import annotations

import os

from ...model import CoverageData, ReportError
from ..base import function_line


def render(data: CoverageData, test_name: str = "") -> str:
    if "\n" in test_name or "," in test_name:
        raise ReportError("an lcov test name cannot contain a comma or a "
                          "newline", os.EX_USAGE)
    out: list[str] = []
    for path, st in data.files().items():
        if not path:
            continue
        funcs = sorted(
            ((function_line(data, path, fs.name, fs.line), fs.name,
              len(fs.tests)) for fs in st.functions.values()
             if fs.instrumented and fs.name),
            key=lambda f: (f[0], f[1]))
        lines = sorted(st.lines.items())
        if not funcs and not lines:
            continue
        for name in (path, *(f[1] for f in funcs)):
            if len(f"{name}.".splitlines()) > 1:
                raise ReportError(f"cannot write lcov: the name {name[:60]!r} holds a line break", os.EX_DATAERR)
        out.append(f"TN:{test_name}")
        out.append(f"SF:{path}")
        out.extend(f"FN:{line},{name}" for line, name, _ in funcs)
        out.extend(f"FNDA:{count},{name}" for _, name, count in funcs)
        out.append(f"FNF:{len(funcs)}")
        out.append(f"FNH:{sum(1 for f in funcs if f[2])}")
        out.extend(f"DA:{n},{len(ls.tests)}" for n, ls in lines)
        out.append(f"LF:{len(lines)}")
        out.append(f"LH:{sum(1 for _, ls in lines if ls.hit)}")
        out.append("end_of_record")
    if not out:  # no source file: a TN line keeps it an lcov file to merge again
        out.append(f"TN:{test_name}")
    return "".join(line + "\n" for line in out)
