"""The HTML report (see :mod:`.write`): a directory of pages, or one
self-contained page when the output path ends in ``.html``."""
from __future__ import annotations

import os
from os import EX_USAGE
from typing import Any

from ...model import CoverageData, ReportError
from ..base import Handler, Option, atomic_directory, atomic_write
from . import write


class HtmlHandler(Handler):
    name = "html"
    description = ("HTML report: a directory (index.html + a page per "
                   "file), or one page if the path ends in .html")
    extensions = (".html", ".htm")
    can_write = True
    write_options = (
        Option("root", str, "", "file names relative to this directory "
               "(default: the files' common directory)"),
        Option("title", str, "kcov coverage", "the report's title"),
        Option("source_map", str, "", "OLD=NEW[,...]: read sources "
               "recorded under OLD from NEW"),
        Option("max_test_names", int, 20, "test names shown per line on "
               "hover"),
    )

    def _options(self, opts: dict[str, Any]) -> write.Options:
        from .... import __version__

        o = self.options(self.write_options, opts)
        if o["max_test_names"] < 0:
            raise ReportError("html: max_test_names must be >= 0", EX_USAGE)
        return write.Options(o["root"], o["title"],
                             write.parse_source_map(o["source_map"]),
                             o["max_test_names"], __version__)

    def render(self, data: CoverageData, **opts: Any) -> str:
        """The single-page report."""
        return write.render_pages(data, self._options(opts), True)[
            "index.html"]

    def write(self, data: CoverageData, path: str | os.PathLike[str],
              **opts: Any) -> None:
        o = self._options(opts)
        p = os.fspath(path)
        if p == "-":
            raise ReportError("html: a report directory cannot be written "
                              "to stdout", EX_USAGE)
        if os.path.splitext(p)[1].lower() in self.extensions:
            atomic_write(p, write.render_pages(data, o, True)["index.html"])
            return
        pages = write.render_pages(data, o, False)
        with atomic_directory(p, "html") as tmp:
            for name, text in pages.items():
                (tmp / name).write_text(text, encoding="utf-8")
