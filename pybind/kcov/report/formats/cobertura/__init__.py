"""Cobertura XML (coverage-04.dtd), for CI coverage pages (GitLab,
Jenkins, Azure DevOps) and editors; see :mod:`.write`."""
from __future__ import annotations

from typing import Any

from ...model import CoverageData
from ..base import Handler, Option
from . import write


class CoberturaHandler(Handler):
    name = "cobertura"
    description = "Cobertura XML (coverage-04.dtd), for CI coverage pages"
    extensions = (".xml",)
    can_write = True
    write_options = (
        Option("root", str, "", "the <source> directory; file names are "
               "relative to it (default: the files' common directory)"),
        Option("timestamp", int, -1, "the coverage timestamp in seconds "
               "(default: $SOURCE_DATE_EPOCH, else now)"),
    )

    def render(self, data: CoverageData, **opts: Any) -> str:
        o = self.options(self.write_options, opts)
        return write.render(data, root=o["root"], timestamp=o["timestamp"])
