"""Report formats: one package per format, one handler class each.

=============  =====  =====  ==========================================
name           read   write  output
=============  =====  =====  ==========================================
json           yes    yes    kcov coverage JSON (``kcov-coverage`` v1)
json-summary   no     yes    per-file numbers (``kcov-summary`` v1)
lcov           yes    yes    lcov tracefile, classic v1 records
cobertura      no     yes    Cobertura XML (coverage-04.dtd)
html           no     yes    HTML report: a directory, or one ``.html``
text           no     yes    terminal summary
=============  =====  =====  ==========================================

Use::

    from kcov.report import formats
    data = formats.read("run.json")               # format detected
    data = data.merge(formats.read("old.info"))   # lcov input
    formats.write(data, "html", "report/")        # directory of pages
    formats.write(data, "lcov", "coverage.info")
    print(formats.render(data, "text"), end="")

Every writer writes atomically; errors are :class:`ReportError` subclasses
with a one-line message and a sysexits ``exit_status``.  A new format is a
new package with a :class:`~.base.Handler` subclass, registered below (or
at run time with :func:`register`).
"""
from __future__ import annotations

import os
from os import EX_USAGE
from typing import Any

from ..model import CoverageData, FormatError, ReportError
from .base import Handler, Option, read_input
from .cobertura import CoberturaHandler
from .html import HtmlHandler
from .json import JsonHandler, JsonSummaryHandler
from .lcov import LcovHandler
from .text import TextHandler

__all__ = ["FORMATS", "Handler", "Option", "detect", "for_path", "get",
           "read", "read_bytes", "register", "render", "write"]

#: Registered handlers by name, in the order detection tries them.
FORMATS: dict[str, Handler] = {}


def register(handler: Handler) -> Handler:
    """Add (or replace) a format; returns it."""
    FORMATS[handler.name] = handler
    return handler


for _h in (JsonHandler(), JsonSummaryHandler(), LcovHandler(),
           CoberturaHandler(), HtmlHandler(), TextHandler()):
    register(_h)


def get(name: str) -> Handler:
    """The handler named ``name``; unknown names are a usage error (64)."""
    h = FORMATS.get(name)
    if h is None:
        raise ReportError(f"unknown format {name!r} (known: "
                          f"{', '.join(FORMATS)})", EX_USAGE)
    return h


def for_path(path: str | os.PathLike[str]) -> str | None:
    """The output format a path's suffix names (``.info`` lcov, ``.xml``
    cobertura, ``.json`` json, ``.html`` html, ``.txt`` text), or None."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    for h in FORMATS.values():
        if h.can_write and suffix in h.extensions:
            return h.name
    return None


def render(data: CoverageData, fmt: str, **opts: Any) -> str:
    """The output of a single-file format as a string."""
    h = get(fmt)
    if not h.can_write:
        raise ReportError(f"format {fmt!r} cannot be written", EX_USAGE)
    return h.render(data, **opts)


def write(data: CoverageData, fmt: str, path: str | os.PathLike[str],
          **opts: Any) -> None:
    """Write ``data`` as ``fmt`` to ``path`` atomically (``"-"``: stdout,
    for single-file formats).  ``opts`` are the handler's
    :attr:`~.base.Handler.write_options`."""
    h = get(fmt)
    if not h.can_write:
        raise ReportError(f"format {fmt!r} cannot be written", EX_USAGE)
    h.write(data, path, **opts)


def detect(head: bytes, source: str = "input") -> str:
    """The name of the readable format whose input starts with ``head``."""
    for h in FORMATS.values():
        if h.sniff(head):
            if not h.can_read:
                raise FormatError(f"{source}: {h.description} cannot be read "
                                  "back as coverage data")
            return h.name
    stripped = head.lstrip()
    if stripped.startswith(b"kcov-pcs"):
        raise FormatError(f"{source}: a kcov-pcs dump: read it with "
                          "kcov.report.collect, which needs its binaries")
    if stripped.startswith(b"{"):
        raise FormatError(f"{source}: JSON, but not a kcov coverage file "
                          "(no \"format\": \"kcov-coverage\")")
    readable = ", ".join(n for n, h in FORMATS.items() if h.can_read)
    raise FormatError(f"{source}: unknown coverage format (readable: "
                      f"{readable})")


def read_bytes(raw: bytes, source: str = "input", fmt: str | None = None,
               **opts: Any) -> CoverageData:
    """Parse ``raw`` (format detected unless ``fmt`` is given)."""
    name = fmt or detect(raw[:4096], source)
    h = get(name)
    if not h.can_read:
        raise ReportError(f"format {name!r} cannot be read", EX_USAGE)
    return h.parse(raw, source, **opts)


def read(path: str | os.PathLike[str], fmt: str | None = None,
         **opts: Any) -> CoverageData:
    """Read a coverage file (``"-"``: stdin); the format is detected from
    its first bytes unless ``fmt`` names it.  Missing or unreadable files
    raise :class:`ReportError` with status 66, malformed ones
    :class:`FormatError` (65)."""
    source = "<stdin>" if os.fspath(path) == "-" else os.fspath(path)
    return read_bytes(read_input(path), source, fmt, **opts)
