"""From PC dumps and binaries to :class:`~kcov.report.model.CoverageData`.

``collect(dumps, binaries=..., universe=True, inventory=None,
progress=None, force=False) -> CoverageData``:

1. Each recorded PC is a return address; the call site is the PC minus the
   call's length (:data:`~kcov.report.points.CALL_LENGTH`, 5 on x86-64, as
   syzkaller's ``PreviousInstructionPC``).  This is the only place it is
   subtracted.
2. The call site is placed in a module of the dump's map: ``site - start +
   file_offset`` is a file offset of the binary, turned into a
   module-relative offset through ``PT_LOAD`` (executables, shared objects,
   vmlinux) or the synthetic section layout (kernel modules); see
   :mod:`kcov.report.elf`.
3. The local binary of each module is found: a file given in ``binaries``
   with the same build id, else one with the same file name, else the
   path recorded in the dump.  Build ids must agree.
4. With ``universe=True`` the module's points are every call site of the
   callback (:func:`~kcov.report.points.coverage_points`) and the module
   says ``universe=True``; the reached offsets must be points, after the
   returns from functions that tail-call the callback are counted at that
   tail call (:func:`~kcov.report.points.match_pcs`).  Without it only the
   reached offsets become points.
5. Points are symbolised (:mod:`kcov.report.symbolize`), hits recorded per
   test, and the functions of a kcov-build inventory added as
   :class:`~kcov.report.model.FunctionDecl` (named as the symboliser names
   the function defined at the same lines, so that reached and unreached
   functions match).

Files given in ``binaries`` that no PC reached are reported too (0 of N).

Checks, each a :class:`~kcov.report.model.ReportError` with a one-line
message and an ``exit_status``:

* a binary that is missing (66), not ELF or not x86-64 (65), without DWARF
  line information (65: "no DWARF line info in X: rebuild with -g"), or
  with another build id than the run's (65);
* PCs in no module of the dump (65, when more than half of a dump's PCs
  are; fewer are dropped with a warning: a tail call to the callback
  returns into whatever called the instrumented function);
* reached offsets that are not callback call sites (65, when more than half
  of a module's are: "N of M PCs do not match coverage callbacks in X:
  wrong binary or base?"; fewer are kept as hits without frames, listed by
  :meth:`CoverageData.unmatched`).  ``force=True`` keeps going in both
  cases.

``progress`` is called with one line of text per step (and "warning: ..."
lines); the CLI prints them.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Union

import numpy as np
import numpy.typing as npt

from .. import inventory
from .elf import EM_X86_64, ElfFile, MissingFileError, read_elf
from .model import CoverageData, FormatError, FunctionDecl, Module, ReportError
from .pcs import ModuleMap, PcDump, read_pcs
from .points import CALL_LENGTH, Universe, find_universe, match_pcs
from .symbolize import get_symbolizer

__all__ = [
    "BuildIdMismatchError",
    "NoDebugInfoError",
    "PointMismatchError",
    "UnmappedPcsError",
    "collect",
    "read_inventory",
]

Progress = Callable[[str], None]
DumpArg = Union[PcDump, str, Path]
DEBUG_DIRS = ("/usr/lib/debug",)


class NoDebugInfoError(ReportError):
    """The binary has no DWARF line information."""


class BuildIdMismatchError(ReportError):
    """The binary found is not the one that ran (another build id)."""


class UnmappedPcsError(ReportError):
    """Most PCs of a dump lie in no module of its map."""


class PointMismatchError(ReportError):
    """Most PCs of a module are not call sites of the coverage callback:
    the wrong binary, or the wrong load address."""


@dataclass
class _Reached:
    """What the dumps recorded for one binary."""

    maps: list[ModuleMap] = field(default_factory=list)
    file_offsets: dict[str, list[npt.NDArray[np.uint64]]] = field(default_factory=lambda: defaultdict(list))
    count: int = 0


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def collect(dumps: DumpArg | Iterable[DumpArg], *, binaries: Iterable[str | Path] = (),
            universe: bool = True, inventory: str | Path | None = None,
            progress: Progress | None = None, force: bool = False,
            modules: Iterable[ModuleMap] | None = None) -> CoverageData:
    """Coverage of the given PC dumps (paths or :class:`PcDump` objects);
    see the module docstring.  ``modules`` places bare-PC files (syzkaller's
    rawcover), see :func:`~kcov.report.pcs.read_pcs`."""
    if isinstance(dumps, (PcDump, str, Path)):
        dumps = [dumps]
    extra = list(modules) if modules is not None else None
    loaded: list[PcDump] = []
    for d in dumps:
        if isinstance(d, PcDump):
            loaded.append(d)
        else:
            dump = read_pcs(d, extra)
            _say(progress, f"read {d}: {dump.count} PCs, {len(dump.tests)} test(s), "
                           f"{len(dump.modules)} module map(s)")
            loaded.append(dump)

    given = [_Candidate(Path(b)) for b in binaries]
    reached: dict[str, _Reached] = {}
    tests: set[str] = set()
    for dump in loaded:
        _place(dump, reached, tests, progress, force)

    data = CoverageData()
    data.tests |= tests
    done: set[Path] = set()
    for ident, r in reached.items():
        path = _find_binary(ident, r, given)
        done.add(path.resolve())
        _add_module(data, path, r, universe, progress, force)
    for c in given:
        if c.path.resolve() not in done:
            done.add(c.path.resolve())
            _add_module(data, c.path, _Reached(), universe, progress, force)
    if inventory is not None:
        decls = read_inventory(inventory)
        n = _add_functions(data, decls)
        _say(progress, f"inventory {inventory}: {len(decls)} functions, {n} without any point")
    return data


# -- placing PCs --------------------------------------------------------------


def _ident(m: ModuleMap) -> str:
    return f"build-id:{m.build_id}" if m.build_id else f"path:{os.path.abspath(m.path)}"


def _place(dump: PcDump, reached: dict[str, _Reached], tests: set[str],
           progress: Progress | None, force: bool) -> None:
    call = CALL_LENGTH[EM_X86_64]  # modules of other machines fail in find_universe
    maps = sorted(dump.modules, key=lambda m: m.start)
    total = outside = 0
    for test, pcs in dump.tests.items():
        pcs = np.unique(np.asarray(pcs, dtype=np.uint64))
        tests.add(test)  # a test that reached nothing still ran
        if not len(pcs):
            continue
        total += len(pcs)
        ok = pcs >= np.uint64(call)
        sites = pcs[ok] - np.uint64(call)
        placed = np.zeros(len(sites), dtype=bool)
        for m in maps:
            inside = (sites >= np.uint64(m.start)) & (sites < np.uint64(m.end)) & ~placed
            if not inside.any():
                continue
            placed |= inside
            r = reached.setdefault(_ident(m), _Reached())
            if m not in r.maps:
                r.maps.append(m)
            fo = sites[inside] - np.uint64(m.start) + np.uint64(m.file_offset)
            r.file_offsets[test].append(fo)
            r.count += int(inside.sum())
        outside += int((~ok).sum()) + int((~placed).sum())
    src = dump.source or "the dump"
    if total and outside * 2 > total and not force:
        raise UnmappedPcsError(
            f"{src}: {outside} of {total} PCs lie in no module of the dump "
            f"({len(maps)} module map(s)): wrong process, or a module map is missing", os.EX_DATAERR)
    if outside:
        _say(progress, f"warning: {src}: {outside} of {total} PCs lie in no module of the dump "
                       "(ignored)")


# -- binaries -----------------------------------------------------------------


class _Candidate:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._id: str | None = None

    @property
    def build_id(self) -> str:
        if self._id is None:
            with read_elf(self.path) as e:  # missing / not ELF: the right error
                self._id = e.build_id
        return self._id


def _find_binary(ident: str, r: _Reached, given: list[_Candidate]) -> Path:
    m = r.maps[0]
    name = os.path.basename(m.path)
    for c in given:
        if m.build_id and c.build_id == m.build_id:
            return c.path
    for c in given:
        if c.path.name == name:
            if m.build_id and c.build_id and c.build_id != m.build_id:
                raise BuildIdMismatchError(
                    f"{c.path}: build id {c.build_id}, but the run's {name} had {m.build_id}: "
                    "not the binary that ran", os.EX_DATAERR)
            return c.path
    p = Path(m.path)
    try:
        exists = p.exists()
    except OSError as e:  # a path the file system refuses (too long...)
        raise MissingFileError(f"{m.path[:200]}: cannot read: {e.strerror}", os.EX_NOINPUT) from None
    if not exists:
        raise MissingFileError(f"{m.path}: no such file ({r.count} PCs were recorded in it; "
                               "give its binary)", os.EX_NOINPUT)
    if m.build_id:
        with read_elf(p) as elf:
            if elf.build_id and elf.build_id != m.build_id:
                raise BuildIdMismatchError(
                    f"{p}: build id {elf.build_id}, but the one that ran had {m.build_id}: the file "
                    "changed since the run; give the binary that ran", os.EX_DATAERR)
    return p


_UNIVERSES: dict[tuple[str, int, int, int], Universe] = {}


def _universe(elf: ElfFile) -> Universe:
    st = elf.path.stat()
    key = (str(elf.path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    uni = _UNIVERSES.get(key)
    if uni is None:
        if len(_UNIVERSES) >= 32:
            _UNIVERSES.clear()
        uni = _UNIVERSES[key] = find_universe(elf)
    return uni


def _has_debug(elf: ElfFile) -> bool:
    if elf.has_line_info:
        return True
    bid = elf.build_id
    if len(bid) > 2:
        return any(os.path.isfile(os.path.join(d, ".build-id", bid[:2], bid[2:] + ".debug"))
                   for d in DEBUG_DIRS)
    return False


def _add_module(data: CoverageData, path: Path, r: _Reached, universe: bool,
                progress: Progress | None, force: bool) -> None:
    with read_elf(path) as elf:
        name = path.name
        offsets: dict[str, npt.NDArray[np.uint64]] = {}
        bad_fo = 0
        for test, parts in r.file_offsets.items():
            fo = np.unique(np.concatenate(parts))
            off, ok = elf.offsets_from_file(fo)
            bad_fo += int((~ok).sum())
            offsets[test] = off[ok]
        if bad_fo:
            _say(progress, f"warning: {name}: {bad_fo} PCs fall outside its loaded segments "
                           "(ignored)")
        hit = (np.unique(np.concatenate(list(offsets.values())))
               if offsets else np.zeros(0, dtype=np.uint64))
        pts: npt.NDArray[np.uint64] | None = None
        if universe:
            _say(progress, f"finding the coverage points of {name}")
            uni = _universe(elf)
            pts = uni.points
            if len(hit) and not len(pts) and not force:
                raise PointMismatchError(
                    f"{path}: no call to __sanitizer_cov_trace_pc in it, but {len(hit)} PCs: "
                    "not built with -fsanitize-coverage=trace-pc, or the wrong binary", os.EX_DATAERR)
            # Call sites of functions that end in a tail call to the
            # callback stand for that tail call (see points.match_pcs).
            mapped = match_pcs(elf, uni, hit)
            tails = int((mapped != hit).sum())
            if tails:
                for test, offs in offsets.items():
                    offsets[test] = np.unique(mapped[np.searchsorted(hit, offs)])
                _say(progress, f"{name}: {tails} PCs are returns from functions that tail-call "
                               "the callback (counted at that tail call)")
            matched = int(np.isin(mapped, pts).sum()) if len(hit) else 0
            missing = len(hit) - matched
            if missing * 2 > len(hit) and not force:
                raise PointMismatchError(
                    f"{missing} of {len(hit)} PCs do not match coverage callbacks in {name}: "
                    "wrong binary or base?", os.EX_DATAERR)
            if missing:
                _say(progress, f"warning: {missing} of {len(hit)} PCs do not match coverage "
                               f"callbacks in {name} (kept as unmatched)")
            hit = np.unique(mapped)
            want = pts
        else:
            want = hit
        module = Module(Module.make_key(name, elf.build_id), name, str(path.resolve()),
                        elf.build_id, elf.kind, universe)
        data.add_module(module)
        if len(want):
            if not _has_debug(elf):
                raise NoDebugInfoError(f"no DWARF line info in {path}: rebuild with -g", os.EX_DATAERR)
            _say(progress, f"symbolising {len(want)} {'points' if universe else 'PCs'} of {name}")
            frames = get_symbolizer(path).frames(want.tolist())
            for pc_off, fr in frames.items():
                data.add_point(module.key, pc_off, fr)
        n_hit = 0
        for test, offs in offsets.items():
            for off in offs.tolist():
                data.add_hit(module.key, off, test)
            n_hit += len(offs)
        reached = int(np.isin(hit, pts).sum()) if pts is not None else len(hit)
        reach = f", {reached} reached" if reached else ", not reached"
        total = f"{len(pts)} points" if pts is not None else f"{len(want)} PCs (no universe)"
        _say(progress, f"{name} ({elf.kind}): {total}{reach}")


# -- the function inventory ---------------------------------------------------


def read_inventory(path: str | Path) -> list[FunctionDecl]:
    """The functions of a ``kcov-build inventory -o FILE`` JSON file
    (:mod:`kcov.inventory`)."""
    try:
        functions = inventory.read(path)
    except inventory.InventoryError as e:
        cls = MissingFileError if e.exit_status == os.EX_NOINPUT else FormatError
        raise cls(str(e), e.exit_status) from None
    return [FunctionDecl(f.name, f.file, f.start_line, f.end_line) for f in functions]


def _add_functions(data: CoverageData, decls: list[FunctionDecl]) -> int:
    """Add the declarations, each named as the symboliser names the
    function whose frames lie in its lines; the number with no frame."""
    by_file: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for frames in data.points.values():
        for fr in frames:
            if fr.line:
                by_file[fr.file].append((fr.line, fr.function))
    real: dict[str, str] = {}
    for f in by_file:
        real.setdefault(os.path.realpath(f), f)
    cache: dict[str, list[tuple[int, str]]] = {}
    missing = 0
    for d in decls:
        file = d.file if d.file in by_file else real.get(os.path.realpath(d.file), d.file)
        lines = cache.get(file)
        if lines is None:
            lines = cache[file] = sorted(set(by_file.get(file, ())))
        names = Counter(fn for ln, fn in lines if d.start_line <= ln <= d.end_line)
        if d.name in names or not names:
            name = d.name
            missing += not names
        else:
            name = names.most_common(1)[0][0]
        data.add_function(FunctionDecl(name, file, d.start_line, d.end_line))
    return missing
