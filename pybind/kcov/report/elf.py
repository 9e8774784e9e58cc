"""Just enough ELF to place coverage points: headers read with :mod:`struct`.

The one ELF reader of kcov: reports, profiles (kcov.profile.llvm asks it for
a binary's build id and compiler) and the CLIs read ELF files through it.

:func:`read_elf` returns an :class:`ElfFile`: its type (``EXEC``, ``DYN``,
``REL``), the report *kind* (``exe``, ``dso``, ``kmod``, ``vmlinux``), the
GNU build id, the ``PT_LOAD`` segments, the section headers, and whether it
carries DWARF line information.  Section contents, symbols and relocations
are read on demand (numpy views over the file's bytes, so a vmlinux symbol
table costs milliseconds).

Module-relative offsets (the offsets points are named by) are:

* executables, shared objects and vmlinux: the link-time virtual address,
  so a PIE or a library loaded anywhere names the same points;
* relocatable objects (kernel modules): an offset in a *synthetic layout*
  (:attr:`ElfFile.layout`) in which ``.text`` sits at 0 and every other
  allocated executable section (``.text.unlikely``, ``.init.text``, ...)
  follows it in section-header order, each aligned as the section asks.
  Offsets into ``.text`` are thus ``.text``-relative, as the kernel's
  ``/sys/module/<name>/sections/.text`` base expects, and cold code keeps
  offsets of its own.

A running program is found in memory by file offset (``/proc/<pid>/maps``
lists the file offset of each mapping; a kernel module section's file
offset is its ``sh_offset``): :meth:`ElfFile.offsets_from_file` maps file
offsets to module-relative offsets through ``PT_LOAD`` (so PIEs laid out by
lld, whose ``p_vaddr`` differs from ``p_offset``, are placed right) or
through the synthetic layout.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .model import FormatError, ReportError

__all__ = [
    "ElfFile",
    "MissingFileError",
    "NotElfError",
    "Section",
    "Segment",
    "gnu_build_id",
    "read_elf",
]

ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_DYNSYM = 2, 4, 8, 11
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
PF_X = 0x1
DT_NULL, DT_SONAME, DT_FLAGS_1 = 0, 14, 0x6FFFFFFB
DF_1_PIE = 0x08000000
NT_GNU_BUILD_ID = 3
EM_X86_64 = 62
# Kernel text lives in the top half of the address space.
_KERNEL_SPACE = 0xFFFF800000000000


class MissingFileError(ReportError):
    """A binary named by the input does not exist (exit status 66)."""

    exit_status = os.EX_NOINPUT


class NotElfError(FormatError):
    """A file that should be an ELF binary is not one."""


@dataclass(frozen=True)
class Segment:
    """A ``PT_LOAD`` program header."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    align: int
    entsize: int

    @property
    def executable(self) -> bool:
        return (self.flags & (SHF_ALLOC | SHF_EXECINSTR)) == (SHF_ALLOC | SHF_EXECINSTR)


class ElfFile:
    """One ELF file, opened read-only and memory-mapped."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self._map: Any = (mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
                                  if size else b"")
        except FileNotFoundError:
            raise MissingFileError(f"{path}: no such file", os.EX_NOINPUT) from None
        except IsADirectoryError:
            raise NotElfError(f"{path}: is a directory, not an ELF file") from None
        except OSError as e:
            raise MissingFileError(f"{path}: cannot read: {e.strerror}", os.EX_NOINPUT) from None
        data = self._map
        if len(data) < 16 or data[:4] != b"\x7fELF":
            raise NotElfError(f"{path}: not an ELF file")
        if data[4] not in (1, 2) or data[5] not in (1, 2):
            raise NotElfError(f"{path}: damaged ELF header")
        self.bits = 64 if data[4] == 2 else 32
        self.endian = "<" if data[5] == 1 else ">"
        en = self.endian
        try:
            if self.bits == 64:
                (self.type, self.machine, _v, self.entry, phoff, shoff, _fl, _eh,
                 phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(
                    en + "HHIQQQIHHHHHH", data, 16)
            else:
                (self.type, self.machine, _v, self.entry, phoff, shoff, _fl, _eh,
                 phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(
                    en + "HHIIIIIHHHHHH", data, 16)
            self.segments_all = self._read_phdrs(phoff, phentsize, phnum)
            self.sections = self._read_shdrs(shoff, shentsize, shnum, shstrndx)
        except struct.error:
            raise NotElfError(f"{path}: truncated or damaged ELF file") from None
        if self.type not in (ET_REL, ET_EXEC, ET_DYN):
            raise NotElfError(f"{path}: ELF type {self.type} is not an executable, a shared "
                              "object or a relocatable object (a core file?)")
        #: Per-file results derived by other modules (function ranges, ...).
        self.memo: dict[str, Any] = {}
        self._by_name: dict[str, Section] = {}
        for s in self.sections:
            self._by_name.setdefault(s.name, s)

    # -- headers ------------------------------------------------------------

    def _read_phdrs(self, off: int, entsize: int, num: int) -> list[tuple[int, Segment]]:
        out = []
        for i in range(num if off else 0):
            o = off + i * entsize
            if self.bits == 64:
                typ, flags, poff, vaddr, _pa, filesz, memsz, _al = struct.unpack_from(
                    self.endian + "IIQQQQQQ", self._map, o)
            else:
                typ, poff, vaddr, _pa, filesz, memsz, flags, _al = struct.unpack_from(
                    self.endian + "IIIIIIII", self._map, o)
            out.append((typ, Segment(vaddr, poff, filesz, memsz, flags)))
        return out

    def _read_shdrs(self, off: int, entsize: int, num: int, strndx: int) -> list[Section]:
        if not off:
            return []
        if num == 0:  # more than 0xff00 sections: the count is in section 0
            num = struct.unpack_from(self.endian + ("Q" if self.bits == 64 else "I"),
                                     self._map, off + (32 if self.bits == 64 else 20))[0]
        raw = []
        for i in range(num):
            o = off + i * entsize
            if self.bits == 64:
                raw.append(struct.unpack_from(self.endian + "IIQQQQIIQQ", self._map, o))
            else:
                raw.append(struct.unpack_from(self.endian + "IIIIIIIIII", self._map, o))
        if strndx == 0xFFFF and raw:
            strndx = raw[0][6]
        names = raw[strndx][4] if 0 < strndx < len(raw) else None
        out = []
        for i, (name, typ, flags, addr, soff, size, link, info, align, ent) in enumerate(raw):
            nm = self._cstr(names + name) if names is not None else ""
            out.append(Section(i, nm, typ, flags, addr, soff, size, link, info, align, ent))
        return out

    def _cstr(self, off: int) -> str:
        end = self._map.find(b"\0", off)
        return bytes(self._map[off:end if end >= 0 else len(self._map)]).decode("utf-8", "replace")

    @property
    def segments(self) -> list[Segment]:
        """The ``PT_LOAD`` segments, in header order."""
        return [s for t, s in self.segments_all if t == PT_LOAD]

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def data(self, sec: Section) -> memoryview:
        """The bytes of a section (empty for ``SHT_NOBITS``)."""
        if sec.type == SHT_NOBITS:
            return memoryview(b"")
        return memoryview(self._map)[sec.offset:sec.offset + sec.size]

    def bytes_at(self, offset: int, size: int) -> bytes:
        return bytes(self._map[offset:offset + size])

    # -- identity -------------------------------------------------------------

    @cached_property
    def build_id(self) -> str:
        """The GNU build id in hex, or ``""``."""
        notes = [(s.offset, s.size) for s in self.sections if s.name.startswith(".note")]
        notes += [(s.offset, s.filesz) for t, s in self.segments_all if t == PT_NOTE]
        for off, size in notes:
            found = gnu_build_id(self._map[off:off + size], self.endian)
            if found:
                return found
        return ""

    @cached_property
    def kind(self) -> str:
        """``exe``, ``dso``, ``kmod`` or ``vmlinux`` (see :class:`Module`)."""
        if self.type == ET_REL:
            return "kmod"
        if self.type == ET_EXEC:
            text = self.section(".text")
            addr = text.addr if text is not None else self.entry
            return "vmlinux" if addr >= _KERNEL_SPACE else "exe"
        flags1, soname = self._dynamic_flags()
        if flags1 & DF_1_PIE:
            return "exe"
        has_interp = any(t == PT_INTERP for t, _s in self.segments_all)
        return "exe" if has_interp and not soname else "dso"

    def _dynamic_flags(self) -> tuple[int, bool]:
        dyn = next((s for t, s in self.segments_all if t == PT_DYNAMIC), None)
        if dyn is None:
            return 0, False
        fmt = self.endian + ("qQ" if self.bits == 64 else "iI")
        step = struct.calcsize(fmt)
        flags1, soname = 0, False
        for pos in range(dyn.offset, dyn.offset + dyn.filesz - step + 1, step):
            tag, val = struct.unpack_from(fmt, self._map, pos)
            if tag == DT_NULL:
                break
            if tag == DT_FLAGS_1:
                flags1 = val
            elif tag == DT_SONAME:
                soname = True
        return flags1, soname

    @cached_property
    def has_line_info(self) -> bool:
        """True if the file carries DWARF line tables (``.debug_line``,
        compressed or not)."""
        return any(s.name in (".debug_line", ".zdebug_line") and s.size > 0 for s in self.sections)

    # -- module-relative offsets ---------------------------------------------

    @cached_property
    def layout(self) -> dict[int, int]:
        """Relocatable objects: section index -> base of that section in
        the synthetic layout (see the module docstring).  Empty otherwise."""
        if self.type != ET_REL:
            return {}
        execs = [s for s in self.sections if s.executable and s.size > 0]
        execs.sort(key=lambda s: (s.name != ".text", s.index))
        out: dict[int, int] = {}
        pos = 0
        for s in execs:
            align = max(s.align, 1)
            pos = (pos + align - 1) // align * align
            out[s.index] = pos
            pos += s.size
        return out

    def text_ranges(self) -> list[tuple[int, int, int]]:
        """``(module offset, file offset, size)`` of each executable section
        (or executable segment, for files without section headers)."""
        if self.type == ET_REL:
            return [(base, self.sections[i].offset, self.sections[i].size)
                    for i, base in sorted(self.layout.items(), key=lambda kv: kv[1])]
        secs = [s for s in self.sections if s.executable and s.size > 0 and s.type != SHT_NOBITS]
        if secs:
            return [(s.addr, s.offset, s.size) for s in secs]
        return [(s.vaddr, s.offset, s.filesz) for s in self.segments if s.executable]

    def offsets_from_file(self, file_offsets: npt.ArrayLike
                          ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
        """Module-relative offsets of file offsets, and a mask of those that
        lie in a loaded segment (an executable section, for objects)."""
        fo = np.asarray(file_offsets, dtype=np.uint64)
        out = np.zeros(fo.shape, dtype=np.uint64)
        ok = np.zeros(fo.shape, dtype=bool)
        if self.type == ET_REL:
            ranges = [(self.sections[i].offset, self.sections[i].size, base)
                      for i, base in self.layout.items()]
        else:
            ranges = [(s.offset, s.filesz, s.vaddr) for s in self.segments]
        for off, size, base in ranges:
            m = (fo >= np.uint64(off)) & (fo < np.uint64(off + size)) & ~ok
            out[m] = fo[m] - np.uint64(off) + np.uint64(base)
            ok |= m
        return out, ok

    def file_offset_of(self, offset: int) -> int | None:
        """The file offset holding module-relative ``offset`` (the inverse
        of :meth:`offsets_from_file`), or None."""
        if self.type == ET_REL:
            for i, base in self.layout.items():
                s = self.sections[i]
                if base <= offset < base + s.size:
                    return s.offset + offset - base
            return None
        for seg in self.segments:
            if seg.vaddr <= offset < seg.vaddr + seg.filesz:
                return seg.offset + offset - seg.vaddr
        return None

    # -- symbols and relocations ----------------------------------------------

    def symbols(self, sec: Section) -> npt.NDArray[Any]:
        """The entries of a symbol table section as a structured array
        (``name``, ``info``, ``shndx``, ``value``, ``size``)."""
        e = self.endian
        if self.bits == 64:
            dt = np.dtype([("name", e + "u4"), ("info", "u1"), ("other", "u1"),
                           ("shndx", e + "u2"), ("value", e + "u8"), ("size", e + "u8")])
        else:
            dt = np.dtype([("name", e + "u4"), ("value", e + "u4"), ("size", e + "u4"),
                           ("info", "u1"), ("other", "u1"), ("shndx", e + "u2")])
        n = sec.size // dt.itemsize
        return np.frombuffer(self._map, dtype=dt, count=n, offset=sec.offset)

    def symbol_name(self, strtab: Section, off: int) -> str:
        return self._cstr(strtab.offset + int(off))

    def symbol_indices(self, symtab: Section, name: str) -> npt.NDArray[np.int64]:
        """Indices of the symbols called ``name`` in a symbol table."""
        strtab = self.sections[symtab.link]
        syms = self.symbols(symtab)
        want = name.encode() + b"\0"
        blob = bytes(self.data(strtab))
        # Every string-table offset whose string is exactly `name` (linkers
        # share tails: "foo" may start inside "xfoo"; the NUL makes it exact).
        starts = []
        pos = blob.find(want)
        while pos >= 0:
            starts.append(pos)
            pos = blob.find(want, pos + 1)
        if not starts:
            return np.zeros(0, dtype=np.int64)
        return np.nonzero(np.isin(syms["name"], np.array(starts, dtype=np.uint32)))[0].astype(np.int64)

    def relocations(self, sec: Section, addends: bool = False) -> tuple[npt.NDArray[Any], ...]:
        """``(r_offset, symbol index, type)`` of a ``SHT_RELA`` section
        (``uint64`` arrays), and ``r_addend`` (``int64``) with ``addends``."""
        e = self.endian
        if self.bits == 64:
            dt = np.dtype([("off", e + "u8"), ("info", e + "u8"), ("add", e + "i8")])
        else:
            dt = np.dtype([("off", e + "u4"), ("info", e + "u4"), ("add", e + "i4")])
        n = sec.size // dt.itemsize
        r = np.frombuffer(self._map, dtype=dt, count=n, offset=sec.offset)
        info = r["info"].astype(np.uint64)
        if self.bits == 64:
            out = (r["off"].astype(np.uint64), info >> np.uint64(32), info & np.uint64(0xFFFFFFFF))
        else:
            out = (r["off"].astype(np.uint64), info >> np.uint64(8), info & np.uint64(0xFF))
        return (*out, r["add"].astype(np.int64)) if addends else out

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            try:
                self._map.close()
            except BufferError:  # a numpy view still refers to it
                pass

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ElfFile({str(self.path)!r}, kind={self.kind!r}, build_id={self.build_id!r})"


def gnu_build_id(notes: bytes, endian: str = "<") -> str:
    """The GNU build id (hex) in a run of ELF notes -- a ``.note`` section, a
    ``PT_NOTE`` segment, or a kernel module's
    ``/sys/module/<name>/notes/.note.gnu.build-id`` -- or ``""``."""
    pos, end = 0, len(notes)
    while pos + 12 <= end:
        namesz, descsz, typ = struct.unpack_from(endian + "III", notes, pos)
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if desc_end > end:
            break
        if typ == NT_GNU_BUILD_ID and bytes(notes[pos + 12:pos + 12 + namesz]) == b"GNU\0":
            return bytes(notes[name_end:name_end + descsz]).hex()
        pos = desc_end
    return ""


def read_elf(path: str | os.PathLike[str]) -> ElfFile:
    """Open an ELF file; :class:`MissingFileError` (66) if it does not
    exist, :class:`NotElfError` (65) if it is not ELF."""
    return ElfFile(path)
