"""Coverage reports: from recorded PCs to lines, functions and files.

:mod:`kcov.report.model` holds the data model shared by every reader and
writer; :mod:`kcov.report.formats` the formats.
"""
from __future__ import annotations

from .model import (CoverageData, FileStat, FormatError, Frame, FunctionDecl,
                    FunctionStat, LineStat, MergeConflictError, Module,
                    ReportError, Totals)

__all__ = [
    "CoverageData",
    "FileStat",
    "FormatError",
    "Frame",
    "FunctionDecl",
    "FunctionStat",
    "LineStat",
    "MergeConflictError",
    "Module",
    "ReportError",
    "Totals",
]
