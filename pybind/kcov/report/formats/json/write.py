"""The ``kcov-summary`` JSON: totals and per-file numbers, like gcovr's
``--json-summary``.  Percentages are numbers rounded to two decimals, or
``null`` where there is nothing to count (a file without functions)."""
from __future__ import annotations

import json
from typing import Any

from ...model import CoverageData, Totals
from ..base import common_root, relative

SUMMARY_FORMAT = "kcov-summary"
SUMMARY_VERSION = 1


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _numbers(t: Totals) -> dict[str, Any]:
    return {
        "points": t.points, "points_hit": t.hit,
        "point_percent": _pct(t.hit, t.points),
        "lines": t.lines, "lines_hit": t.lines_hit,
        "line_percent": _pct(t.lines_hit, t.lines),
        "functions": t.functions, "functions_hit": t.functions_hit,
        "function_percent": _pct(t.functions_hit, t.functions),
    }


def summary(data: CoverageData, root: str = "") -> dict[str, Any]:
    from .... import __version__

    files = data.files()
    root = root or common_root(files)
    rows = []
    for path, st in files.items():
        t = Totals(
            points=st.points, hit=st.hit,
            lines=len(st.lines),
            lines_hit=sum(1 for ls in st.lines.values() if ls.hit),
            functions=sum(1 for fs in st.functions.values()
                          if fs.instrumented),
            functions_hit=sum(1 for fs in st.functions.values() if fs.hit))
        rows.append({"file": relative(path, root), **_numbers(t)})
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "producer": {"name": "kcov", "version": __version__},
        "root": root,
        "tests": len(data.tests),
        "totals": _numbers(data.totals(files)),
        "files": rows,
    }


def render_summary(data: CoverageData, root: str = "") -> str:
    return json.dumps(summary(data, root), indent=1) + "\n"
