"""Coverage reports: from recorded PCs to lines, functions and files.

:mod:`kcov.report.model` holds the data model shared by every reader and
writer; :mod:`kcov.report.formats` the formats.  From a run to the model:
:mod:`kcov.report.pcs` (PC dumps: ``write_pcs``, ``read_pcs``,
``snapshot_modules``, ``kmod_maps``), :mod:`kcov.report.points` (the
universe: ``coverage_points``), :mod:`kcov.report.symbolize`
(``Symbolizer``) and :mod:`kcov.report.collect` (``collect``).
"""
from __future__ import annotations

from .model import (CoverageData, FileStat, FormatError, Frame, FunctionDecl,
                    FunctionStat, LineStat, MergeConflictError, Module,
                    ReportError, Totals)
from .elf import MissingFileError, NotElfError
from .pcs import (ModuleMap, PcDump, kernel_maps, kmod_maps, module_maps,
                  modules_from_maps, read_pcs, snapshot_modules, write_pcs)
from .points import CALL_LENGTH, UnsupportedArchError, coverage_points
from .symbolize import (Symbolizer, SymbolizerError, SymbolizerUnavailableError,
                        get_symbolizer)
from .collect import (BuildIdMismatchError, NoDebugInfoError, PointMismatchError,
                      UnmappedPcsError, collect, read_inventory)

__all__ = [
    "BuildIdMismatchError",
    "CALL_LENGTH",
    "CoverageData",
    "FileStat",
    "FormatError",
    "Frame",
    "FunctionDecl",
    "FunctionStat",
    "LineStat",
    "MergeConflictError",
    "Module",
    "MissingFileError",
    "ModuleMap",
    "NoDebugInfoError",
    "NotElfError",
    "PcDump",
    "PointMismatchError",
    "ReportError",
    "Symbolizer",
    "SymbolizerError",
    "SymbolizerUnavailableError",
    "Totals",
    "UnmappedPcsError",
    "UnsupportedArchError",
    "collect",
    "coverage_points",
    "get_symbolizer",
    "kernel_maps",
    "kmod_maps",
    "module_maps",
    "modules_from_maps",
    "read_inventory",
    "read_pcs",
    "snapshot_modules",
    "write_pcs",
]
