"""lcov tracefiles (``.info``): written in the classic v1 shape and read
back, see :mod:`.write` and :mod:`.read` (which documents how lines and
functions are represented as points)."""
from __future__ import annotations

from typing import Any

from ...model import CoverageData
from ..base import Handler, Option, decode
from . import read, write


class LcovHandler(Handler):
    name = "lcov"
    description = "lcov tracefile (.info), classic v1 records, for genhtml"
    extensions = (".info", ".lcov")
    can_read = True
    can_write = True
    write_options = (
        Option("test_name", str, "",
               "the TN: of every record (no comma or newline)"),
    )

    def render(self, data: CoverageData, **opts: Any) -> str:
        o = self.options(self.write_options, opts)
        return write.render(data, test_name=o["test_name"])

    def sniff(self, head: bytes) -> bool:
        first = head.lstrip().split(b"\n", 1)[0]
        return first.startswith((b"TN:", b"SF:", b"VER:"))

    def parse(self, raw: bytes, source: str, **opts: Any) -> CoverageData:
        self.options(self.read_options, opts)
        return read.parse(decode(raw, source, "lcov"), source)
