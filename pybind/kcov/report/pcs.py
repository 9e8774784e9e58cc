"""PC dumps: the recorded PCs of a run and where each module was loaded.

The dump format, ``kcov-pcs v1``, is text::

    kcov-pcs v1
    # comments, e.g. the producer
    module <start> <end> <file-offset> <kind> <build-id or -> <path>
    test <name>
    0xffffffff81234567

* ``module`` lines (hex numbers, ``0x`` optional) say that the bytes of
  ``path`` at ``file-offset`` are mapped at ``start`` up to ``end``
  (exclusive), like a line of ``/proc/<pid>/maps``; ``kind`` is ``exe``,
  ``dso``, ``kmod`` or ``vmlinux``; ``path`` is the rest of the line.  A
  kernel module has one line per executable section (the ``.text`` line's
  ``start`` is ``/sys/module/<name>/sections/.text``, its file offset the
  section's ``sh_offset``).
* ``test <name>`` starts the PCs of a test (the name is the rest of the
  line and may contain spaces; before any ``test`` line, PCs belong to the
  test ``""``).
* Every other line is one PC, in hex, exactly as kcov recorded it: the
  return address of the coverage callback.  Writers store each test's PCs
  once each, sorted (coverage is a set).

``read_pcs`` also reads bare PCs, one hex number per line (syzkaller's
``rawcover``, ``kcovtrace``), when told where they belong
(``modules=``, e.g. from :func:`module_maps`).

Producing dumps:

* hosted (user space): ``write_pcs(path, pcs, snapshot_modules())`` in the
  traced process, or :func:`snapshot_modules` with the pid of another
  process, or :func:`modules_from_maps` over a saved copy of its maps;
* a kernel module, as root inside the machine that runs it:
  :func:`kmod_maps` reads ``/sys/module/<name>/sections/*``;
* vmlinux: :func:`kernel_maps` reads ``_stext`` from ``/proc/kallsyms``
  (root, or ``kptr_restrict`` 0) to find the KASLR slide.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Union

import numpy as np
import numpy.typing as npt

from .._base.files import write_atomic
from .elf import ET_REL, ElfFile, MissingFileError, NotElfError, gnu_build_id, read_elf
from .model import FormatError, ReportError

__all__ = [
    "MAGIC",
    "ModuleMap",
    "PcDump",
    "kernel_maps",
    "kmod_maps",
    "module_maps",
    "modules_from_maps",
    "read_pcs",
    "snapshot_modules",
    "write_pcs",
]

MAGIC = "kcov-pcs v1"
_KINDS = ("exe", "dso", "kmod", "vmlinux")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]+")
_U64 = 1 << 64

PcArray = npt.NDArray[np.uint64]
PcsArg = Union[npt.ArrayLike, Mapping[str, npt.ArrayLike]]


@dataclass(frozen=True)
class ModuleMap:
    """``path``'s bytes at ``file_offset`` are mapped at ``start``..``end``."""

    start: int
    end: int
    file_offset: int
    kind: str
    build_id: str
    path: str

    def line(self) -> str:
        return (f"module 0x{self.start:x} 0x{self.end:x} 0x{self.file_offset:x} {self.kind} "
                f"{self.build_id or '-'} {self.path}")


@dataclass
class PcDump:
    """A dump as read: the module map and each test's PCs (``uint64``
    arrays of return addresses, in file order)."""

    modules: list[ModuleMap]
    tests: dict[str, PcArray] = field(default_factory=dict)
    source: str = ""

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.tests.values())


# -- writing ------------------------------------------------------------------


def write_pcs(path: str | Path, pcs: PcsArg, modules: Iterable[ModuleMap], test: str = "",
              comment: str = "") -> None:
    """Write a ``kcov-pcs v1`` dump atomically (temporary file in the same
    directory, then rename).  ``pcs`` is one array of PCs (for ``test``) or
    a mapping ``{test name: PCs}``."""
    from .. import __version__

    runs: Mapping[str, npt.ArrayLike] = pcs if isinstance(pcs, Mapping) else {test: pcs}
    lines = [MAGIC, f"# producer: kcov {__version__}"]
    lines += [f"# {c}" for c in comment.splitlines()]
    for m in modules:
        if m.kind not in _KINDS:
            raise ValueError(f"module kind {m.kind!r} is not one of {', '.join(_KINDS)}")
        if "\n" in m.path:
            raise ValueError(f"module path {m.path!r} contains a newline")
        lines.append(m.line())
    for name, arr in runs.items():
        if "\n" in name:
            raise ValueError(f"test name {name!r} contains a newline")
        lines.append(f"test {name}" if name else "test")
        u = np.unique(np.asarray(arr, dtype=np.uint64))
        lines.extend(f"0x{int(x):x}" for x in u.tolist())
    _write_atomic(Path(path), "\n".join(lines) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_atomic(path, text, mkdir=False)
    except OSError as e:
        # Only the temporary file's creation fails naming one file; the
        # rename names two, a write none.
        verb = "cannot create" if e.filename and not e.filename2 else "cannot write"
        raise ReportError(f"{path}: {verb}: {e.strerror}", os.EX_CANTCREAT) from None


# -- reading ------------------------------------------------------------------


def read_pcs(path: str | Path, modules: Iterable[ModuleMap] | None = None) -> PcDump:
    """Read a ``kcov-pcs v1`` dump, or a file of bare hex PCs when
    ``modules`` says where they belong (then all PCs are the test ``""``;
    ``modules`` also adds to a dump's own map).  Errors are
    :class:`~kcov.report.model.FormatError` (65) with the line number, or
    :class:`~kcov.report.elf.MissingFileError` (66)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"{p}: no such file", os.EX_NOINPUT) from None
    except IsADirectoryError:
        raise FormatError(f"{p}: is a directory, not a PC dump") from None
    except OSError as e:
        raise MissingFileError(f"{p}: cannot read: {e.strerror}", os.EX_NOINPUT) from None
    if raw[:4] == b"\x7fELF":
        raise FormatError(f"{p}: is an ELF file, not a PC dump (give binaries with --binary)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{p}: not a kcov-pcs dump (binary data)") from None
    lines = text.splitlines()
    extra = list(modules) if modules is not None else []
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("kcov-pcs"):
        if first != MAGIC:
            raise FormatError(f"{p}: {first!r}: this kcov reads {MAGIC!r} dumps")
        dump = _parse_dump(p, lines)
        dump.modules.extend(extra)
        return dump
    if not first:
        raise FormatError(f"{p}: empty file, not a kcov-pcs dump")
    if not _HEX.fullmatch(first):
        what = "JSON" if first[:1] in "{[" else repr(first[:40])
        raise FormatError(f"{p}: not a kcov-pcs dump (starts with {what}; the first line "
                          f"must be {MAGIC!r}, or bare hex PCs with their modules given)")
    if not extra:
        raise FormatError(f"{p}: bare PCs (rawcover/kcovtrace) but no module given: "
                          "say which binary they belong to and where it was loaded")
    pcs = []
    for n, ln in enumerate(lines, 1):
        s = ln.strip()
        if not s:
            continue
        if not _HEX.fullmatch(s):
            raise FormatError(f"{p}:{n}: not a hex PC: {s[:40]!r}")
        pcs.append(_pc(int(s, 16), p, n, s))
    return PcDump(extra, {"": np.array(pcs, dtype=np.uint64)}, str(p))


def _parse_dump(p: Path, lines: list[str]) -> PcDump:
    mods: list[ModuleMap] = []
    runs: dict[str, list[int]] = {}
    cur = runs.setdefault("", [])
    seen_magic = False
    for n, ln in enumerate(lines, 1):
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        if not seen_magic:
            seen_magic = True
            continue
        if s[0] in "0123456789abcdefABCDEF":  # "module" and "test" start with no hex digit
            try:
                pc = int(s, 16)
            except ValueError:
                raise FormatError(f"{p}:{n}: not a hex PC: {s[:40]!r}") from None
            cur.append(_pc(pc, p, n, s))
            continue
        if s == "test" or s.startswith("test "):
            cur = runs.setdefault(ln.lstrip()[5:].rstrip("\r\n"), [])
            continue
        if s.startswith("module "):
            parts = s.split(None, 6)
            if len(parts) != 7:
                raise FormatError(f"{p}:{n}: a module line needs start, end, file offset, "
                                  "kind, build id and path")
            _, a, b, off, kind, bid, path = parts
            try:
                start, end, foff = int(a, 16), int(b, 16), int(off, 16)
            except ValueError:
                raise FormatError(f"{p}:{n}: module addresses must be hex") from None
            if max(start, end, foff) >= _U64:
                raise FormatError(f"{p}:{n}: module addresses must fit in 64 bits")
            if kind not in _KINDS:
                raise FormatError(f"{p}:{n}: module kind {kind!r} is not one of {', '.join(_KINDS)}")
            if end <= start:
                raise FormatError(f"{p}:{n}: module end 0x{end:x} is not above its start 0x{start:x}")
            mods.append(ModuleMap(start, end, foff, kind, "" if bid == "-" else bid.lower(), path))
            continue
        raise FormatError(f"{p}:{n}: unexpected line: {s[:60]!r}")
    tests = {k: np.array(v, dtype=np.uint64) for k, v in runs.items() if v or k}
    return PcDump(mods, tests, str(p))


def _pc(value: int, p: Path, n: int, text: str) -> int:
    if value >= _U64:
        raise FormatError(f"{p}:{n}: PC {text[:40]!r} does not fit in 64 bits")
    return value


# -- module maps --------------------------------------------------------------

_ELF_INFO: dict[tuple[str, int, int], tuple[str, str]] = {}


def _kind_and_id(path: str) -> tuple[str, str] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_mtime_ns, st.st_size)
    got = _ELF_INFO.get(key)
    if got is None:
        try:
            with read_elf(path) as e:
                got = (e.kind, e.build_id)
        except ReportError:
            return None
        _ELF_INFO[key] = got
    return got


def modules_from_maps(text: str) -> list[ModuleMap]:
    """The executable file mappings of a ``/proc/<pid>/maps`` text that
    are ELF files (the vdso, anonymous memory and non-ELF files are left
    out)."""
    out = []
    for ln in text.splitlines():
        parts = ln.split(None, 5)
        if len(parts) < 6 or "x" not in parts[1] or not parts[5].startswith("/"):
            continue
        path = parts[5]
        if path.endswith(" (deleted)"):
            continue
        lo, hi = parts[0].split("-")
        info = _kind_and_id(path)
        if info is None:
            continue
        out.append(ModuleMap(int(lo, 16), int(hi, 16), int(parts[2], 16), info[0], info[1], path))
    return out


def snapshot_modules(pid: int | str = "self") -> list[ModuleMap]:
    """The ELF files mapped executable in process ``pid`` now."""
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError as e:
        raise ReportError(f"/proc/{pid}/maps: cannot read: {e.strerror}", os.EX_NOINPUT) from None
    return modules_from_maps(text)


def kmod_maps(name: str, ko: str | Path, sysfs: str | Path = "/sys/module") -> list[ModuleMap]:
    """Where the kernel module ``name`` (built as ``ko``) is loaded: one
    map per executable section, from ``/sys/module/<name>/sections/``
    (readable by root only).  The build id in ``notes/`` must match."""
    base = Path(sysfs) / name
    if not base.is_dir():
        raise ReportError(f"{base}: no such module loaded", os.EX_NOINPUT)
    with read_elf(ko) as e:
        if e.type != ET_REL:
            raise NotElfError(f"{ko}: not a kernel module (ELF type {e.type})")
        note = base / "notes" / ".note.gnu.build-id"
        if e.build_id and note.is_file():
            try:
                loaded = gnu_build_id(note.read_bytes(), e.endian) or None
            except OSError:
                loaded = None
            if loaded is not None and loaded != e.build_id:
                raise ReportError(f"{ko}: build id {e.build_id} but the loaded {name} has "
                                  f"{loaded}: not the module that is loaded")
        out = []
        for idx in e.layout:
            sec = e.sections[idx]
            f = base / "sections" / sec.name
            try:
                start = int(f.read_text().strip(), 16)
            except FileNotFoundError:
                continue
            except PermissionError:
                raise ReportError(f"{f}: permission denied (section addresses need root)", os.EX_NOPERM) from None
            if start == 0:  # kptr_restrict hides the address
                raise ReportError(f"{f}: reads 0 (section addresses need root)", os.EX_NOPERM)
            out.append(ModuleMap(start, start + sec.size, sec.offset, "kmod", e.build_id,
                                 str(Path(ko).resolve())))
        if not out:
            raise ReportError(f"{base}/sections: no executable section of {ko} is listed", os.EX_DATAERR)
        return out


def kernel_maps(vmlinux: str | Path, kallsyms: str | Path = "/proc/kallsyms") -> list[ModuleMap]:
    """Where vmlinux's executable segments are in the running kernel: the
    slide is ``_stext`` in ``kallsyms`` minus ``_stext`` in vmlinux."""
    with read_elf(vmlinux) as e:
        link = _symbol_value(e, "_stext")
        if link is None:
            raise ReportError(f"{vmlinux}: no _stext symbol: not a vmlinux?", os.EX_DATAERR)
        run = None
        try:
            with open(kallsyms) as f:
                for ln in f:
                    parts = ln.split()
                    if len(parts) >= 3 and parts[2] == "_stext":
                        run = int(parts[0], 16)
                        break
        except OSError as e2:
            raise ReportError(f"{kallsyms}: cannot read: {e2.strerror}", os.EX_NOINPUT) from None
        if not run:
            raise ReportError(f"{kallsyms}: _stext is missing or 0 (needs root)", os.EX_NOPERM)
        return module_maps(e, base=run - link)


def _symbol_value(e: ElfFile, name: str) -> int | None:
    for st in e.sections:
        if st.name == ".symtab":
            idx = e.symbol_indices(st, name)
            if len(idx):
                return int(e.symbols(st)["value"][idx[0]])
    return None


def module_maps(binary: str | Path | ElfFile, base: int = 0) -> list[ModuleMap]:
    """Module maps for PCs recorded from ``binary`` loaded at ``base``:
    for executables, shared objects and vmlinux ``base`` is the load bias
    (run-time minus link-time address: 0 for a non-PIE executable or a
    vmlinux without KASLR, the load address for a PIE or a library); for a
    kernel module it is the address of its ``.text``
    (``/sys/module/<name>/sections/.text``), and only ``.text`` is mapped.
    """
    e = binary if isinstance(binary, ElfFile) else read_elf(binary)
    path = str(e.path.resolve())
    mask = 0xFFFFFFFFFFFFFFFF
    if e.type == ET_REL:
        text = e.section(".text")
        if text is None or text.index not in e.layout:
            raise ReportError(f"{e.path}: no .text section to place at 0x{base:x}", os.EX_DATAERR)
        return [ModuleMap(base, base + text.size, text.offset, e.kind, e.build_id, path)]
    return [ModuleMap((s.vaddr + base) & mask, (s.vaddr + s.memsz + base) & mask, s.offset,
                      e.kind, e.build_id, path)
            for s in e.segments if s.executable and s.memsz]
