"""The terminal summary: a per-file table like ``llvm-cov report`` and
gcovr's text output, totals, and optionally the functions never reached."""
from __future__ import annotations

from typing import Any

from ...model import CoverageData
from ..base import Handler, Option
from . import write


class TextHandler(Handler):
    name = "text"
    description = "terminal summary: per-file table and totals"
    extensions = (".txt",)
    can_write = True
    write_options = (
        Option("root", str, "", "file names relative to this directory "
               "(default: the files' common directory)"),
        Option("functions", str, "", "also list functions: 'unreached' "
               "(instrumented, never reached, and those without points) or "
               "'all'"),
    )

    def render(self, data: CoverageData, **opts: Any) -> str:
        o = self.options(self.write_options, opts)
        return write.render(data, root=o["root"], functions=o["functions"])
