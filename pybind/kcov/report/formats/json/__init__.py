"""JSON: the versioned interchange form of the model (``kcov-coverage``,
read and written; see :meth:`kcov.report.model.CoverageData.to_json`) and a
per-file summary (``kcov-summary``, written only), both with numbers as
numbers."""
from __future__ import annotations

from typing import Any

from ...model import CoverageData
from ..base import Handler, Option
from . import read, write


class JsonHandler(Handler):
    name = "json"
    description = "kcov coverage JSON (format kcov-coverage), for merging"
    extensions = (".json",)
    can_read = True
    can_write = True

    def render(self, data: CoverageData, **opts: Any) -> str:
        self.options(self.write_options, opts)
        return data.dumps()

    def sniff(self, head: bytes) -> bool:
        return read.sniff(head) == "coverage"

    def parse(self, raw: bytes, source: str, **opts: Any) -> CoverageData:
        self.options(self.read_options, opts)
        return read.parse(raw, source)


class JsonSummaryHandler(Handler):
    name = "json-summary"
    description = ("per-file and total numbers as JSON (format kcov-summary), "
                   "for CI")
    extensions = ()
    can_write = True
    write_options = (
        Option("root", str, "", "file names relative to this directory "
               "(default: the files' common directory)"),
    )

    def render(self, data: CoverageData, **opts: Any) -> str:
        o = self.options(self.write_options, opts)
        return write.render_summary(data, root=o["root"])

    def sniff(self, head: bytes) -> bool:
        return read.sniff(head) == "summary"
