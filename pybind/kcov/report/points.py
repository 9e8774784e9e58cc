"""The coverage universe: every call site of the PC callback in a binary.

``coverage_points(binary)`` returns the module-relative offsets (see
:mod:`kcov.report.elf`) of every instruction that calls
``__sanitizer_cov_trace_pc``, sorted.  These are the points of the
report's denominator ("X% of N points").

How the calls are found, as syzkaller does on amd64
(``pkg/cover/backend/dwarf.go``):

* executables, shared objects and vmlinux: the executable sections are
  scanned for ``e8 rel32`` (a near call) and ``e9 rel32`` (a near jump)
  whose target is the callback.  The target is the callback itself when it
  is defined in the binary (vmlinux, a static runtime) or a PLT stub that
  jumps through the callback's GOT slot (``jmp *GOT(%rip)``, after an
  optional ``endbr64`` and ``bnd``): the stub is decoded at each branch
  target in a ``.plt*`` section and its GOT slot looked up in the
  ``JUMP_SLOT``/``GLOB_DAT`` relocations, so GNU ld, lld, IBT
  (``.plt.sec``) and ``.plt.got`` layouts all work;
* relocatable objects (kernel modules): relocations ``R_X86_64_PLT32`` or
  ``R_X86_64_PC32`` against the callback whose preceding byte is ``e8`` or
  ``e9``.

Matching recorded PCs (:func:`match_pcs`).  kcov records the callback's
return address.  For a ``call`` point that is the point plus 5
(:data:`CALL_LENGTH`, syzkaller's ``PreviousInstructionPC``).  A ``jmp``
point is a tail call: compilers end a function F with ``jmp
__sanitizer_cov_trace_pc`` when the coverage call is its last action, and
the callback then returns into F's caller, so the PC recorded is the
return address of the ``call F`` in the caller.  ``match_pcs`` therefore
also decodes the call at ``PC - 5``; when its callee F (a function of the
symbol table) holds exactly one tail-call point, that point is the one
reached.  gcc's kernel code does this often (about 5% of the PCs of a
system call).  Calls through the GOT without a PLT (``-fno-plt``,
``ff 15``, 6 bytes long) are not recognised.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .elf import (EM_X86_64, ET_REL, SHT_DYNSYM, SHT_RELA, SHT_SYMTAB, ElfFile,
                  read_elf)
from .model import ReportError

__all__ = ["CALLBACK", "CALL_LENGTH", "Universe", "UnsupportedArchError", "coverage_points",
           "find_universe", "match_pcs"]

#: The PC-mode callback of SanitizerCoverage's trace-pc (clang and gcc).
CALLBACK = "__sanitizer_cov_trace_pc"
#: Length of the call instruction whose return address kcov records, per
#: ELF machine (syzkaller's PreviousInstructionPC): 5 on x86-64.
CALL_LENGTH = {EM_X86_64: 5}

R_X86_64_PC32, R_X86_64_PLT32 = 2, 4
R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT = 6, 7
STT_FUNC = 2
_CALL, _JMP, _ENDBR64, _BND = 0xE8, 0xE9, b"\xf3\x0f\x1e\xfa", 0xF2
_EMPTY = np.zeros(0, dtype=np.uint64)


class UnsupportedArchError(ReportError):
    """The binary is for a machine whose call encoding we do not decode."""


@dataclass(frozen=True)
class Universe:
    """The callback's call sites (``calls``) and tail-call sites
    (``tails``) of one binary, each a sorted ``uint64`` array of
    module-relative offsets."""

    calls: npt.NDArray[np.uint64]
    tails: npt.NDArray[np.uint64]

    @property
    def points(self) -> npt.NDArray[np.uint64]:
        return np.union1d(self.calls, self.tails)


def coverage_points(binary: str | Path | ElfFile, callback: str = CALLBACK) -> npt.NDArray[np.uint64]:
    """Module-relative offsets of every call and tail call (``jmp``) of
    ``callback``, sorted (a ``uint64`` array: vmlinux addresses do not fit
    in ``int64``).

    Raises :class:`~kcov.report.elf.MissingFileError`,
    :class:`~kcov.report.elf.NotElfError` or :class:`UnsupportedArchError`.
    """
    elf = binary if isinstance(binary, ElfFile) else read_elf(binary)
    return find_universe(elf, callback).points


def find_universe(elf: ElfFile, callback: str = CALLBACK) -> Universe:
    if elf.machine != EM_X86_64:
        raise UnsupportedArchError(
            f"{elf.path}: ELF machine {elf.machine}: coverage points are decoded for x86-64 only")
    if elf.type == ET_REL:
        calls, tails = _relocatable_points(elf, callback)
    else:
        calls, tails = _linked_points(elf, callback)
    return Universe(np.unique(calls.astype(np.uint64)), np.unique(tails.astype(np.uint64)))


def match_pcs(elf: ElfFile, universe: Universe, sites: npt.NDArray[np.uint64]
              ) -> npt.NDArray[np.uint64]:
    """The point each call site (recorded PC minus :data:`CALL_LENGTH`, as
    a module-relative offset) stands for: itself when it is a call point,
    the callee's single tail-call point when it calls a function that has
    exactly one, else itself (an unmatched offset)."""
    sites = np.asarray(sites, dtype=np.uint64)
    out = sites.copy()
    if not len(universe.tails):
        return out
    todo = np.nonzero(~np.isin(sites, universe.calls))[0]
    if not len(todo):
        return out
    funcs = _functions(elf)
    if not funcs[0]:
        return out
    starts, ends = funcs
    tails = universe.tails.tolist()
    for i in todo.tolist():
        callee = _callee(elf, int(sites[i]))
        if callee is None:
            continue
        k = bisect.bisect_right(starts, callee) - 1
        if k < 0 or not starts[k] <= callee < ends[k]:
            continue
        lo = bisect.bisect_left(tails, starts[k])
        hi = bisect.bisect_left(tails, ends[k])
        if hi - lo == 1:
            out[i] = tails[lo]
    return out


def _functions(elf: ElfFile) -> tuple[list[int], list[int]]:
    """Sorted starts and ends of the sized functions of the symbol table
    (module-relative offsets)."""
    cache = elf.memo.get("functions")
    if cache is not None:
        return cache  # type: ignore[no-any-return]
    symtab = next((s for s in elf.sections if s.type == SHT_SYMTAB), None) or \
        next((s for s in elf.sections if s.type == SHT_DYNSYM), None)
    pairs: list[tuple[int, int]] = []
    if symtab is not None:
        syms = elf.symbols(symtab)
        m = ((syms["info"] & 0xF) == STT_FUNC) & (syms["size"] > 0) & (syms["shndx"] != 0)
        vals, sizes, shn = syms["value"][m].tolist(), syms["size"][m].tolist(), syms["shndx"][m].tolist()
        layout = elf.layout
        for v, z, x in zip(vals, sizes, shn):
            if elf.type == ET_REL:
                if x not in layout:
                    continue
                v += layout[x]
            pairs.append((v, v + z))
    pairs = sorted(set(pairs))
    out = ([a for a, _ in pairs], [b for _, b in pairs])
    elf.memo["functions"] = out
    return out


def _callee(elf: ElfFile, site: int) -> int | None:
    """The target of the ``call rel32`` at module offset ``site``, or None."""
    fo = elf.file_offset_of(site)
    if fo is None:
        return None
    code = elf.bytes_at(fo, 5)
    if len(code) != 5 or code[0] != _CALL:
        return None
    rel = _relocation_at(elf).get(site + 1) if elf.type == ET_REL else None
    if rel is not None:
        sym_start, addend = rel
        return sym_start + addend + 4  # S + A - P = target - (P + 4)
    # Linked code; or, in an object, a call the assembler resolved itself
    # (a local function of the same section: no relocation).
    return (site + 5 + int.from_bytes(code[1:], "little", signed=True)) & 0xFFFFFFFFFFFFFFFF


def _relocation_at(elf: ElfFile) -> dict[int, tuple[int, int]]:
    """Relocatable objects: layout offset -> (layout offset of the symbol,
    addend) of every PC-relative relocation against a defined symbol of an
    executable section."""
    cache = elf.memo.get("relocations")
    if cache is not None:
        return cache  # type: ignore[no-any-return]
    out: dict[int, tuple[int, int]] = {}
    layout = elf.layout
    for rs in elf.sections:
        if rs.type != SHT_RELA or rs.info not in layout:
            continue
        syms = elf.symbols(elf.sections[rs.link])
        off, sym, typ, add = elf.relocations(rs, addends=True)
        m = (typ == R_X86_64_PLT32) | (typ == R_X86_64_PC32)
        for o, si, a in zip(off[m].tolist(), sym[m].tolist(), add[m].tolist()):
            shndx = int(syms["shndx"][si])
            if shndx in layout:
                out[o + layout[rs.info]] = (layout[shndx] + int(syms["value"][si]), a)
    elf.memo["relocations"] = out
    return out


def _relocatable_points(elf: ElfFile, callback: str) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    symtab = next((s for s in elf.sections if s.type == SHT_SYMTAB), None)
    if symtab is None:
        return _EMPTY, _EMPTY
    wanted = elf.symbol_indices(symtab, callback).astype(np.uint64)
    calls, tails = [], []
    for rs in elf.sections:
        if rs.type != SHT_RELA or rs.link != symtab.index or rs.info not in elf.layout:
            continue
        target = elf.sections[rs.info]
        off, sym, typ = elf.relocations(rs)
        m = np.isin(sym, wanted) & ((typ == R_X86_64_PLT32) | (typ == R_X86_64_PC32)) & (off >= 1)
        pos = off[m].astype(np.int64) - 1
        if not len(pos):
            continue
        code = np.frombuffer(elf.data(target), dtype=np.uint8)
        pos = pos[pos < len(code)]
        base = elf.layout[rs.info]
        calls.append((pos[code[pos] == _CALL] + base).astype(np.uint64))
        tails.append((pos[code[pos] == _JMP] + base).astype(np.uint64))
    return (np.concatenate(calls) if calls else _EMPTY, np.concatenate(tails) if tails else _EMPTY)


def _branches(code: npt.NDArray[np.uint8], addr: int, opcode: int
              ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(address, target) of every ``opcode rel32`` byte pattern in ``code``.

    Arithmetic is modulo 2**64 in ``uint64`` (vmlinux lives at the top of
    the address space; a negative rel32 wraps as the CPU's does)."""
    idx = np.nonzero(code[:-4] == opcode)[0] if len(code) >= 5 else np.zeros(0, dtype=np.int64)
    rel = (code[idx + 1].astype(np.int64) | code[idx + 2].astype(np.int64) << 8
           | code[idx + 3].astype(np.int64) << 16 | code[idx + 4].astype(np.int64) << 24)
    rel = np.where(rel >= 1 << 31, rel - (1 << 32), rel)
    at = idx.astype(np.uint64) + np.uint64(addr)
    with np.errstate(over="ignore"):
        tgt = at + np.uint64(5) + rel.astype(np.uint64)
    return at, tgt


def _linked_points(elf: ElfFile, callback: str) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    targets: set[int] = set()
    dynsym_idx: dict[int, npt.NDArray[np.uint64]] = {}
    for st in elf.sections:
        if st.type not in (SHT_SYMTAB, SHT_DYNSYM):
            continue
        idx = elf.symbol_indices(st, callback)
        dynsym_idx[st.index] = idx.astype(np.uint64)
        syms = elf.symbols(st)
        for i in idx.tolist():
            if syms["shndx"][i] != 0 and syms["value"][i] != 0:
                targets.add(int(syms["value"][i]))
    # GOT slots the dynamic linker fills with the callback's address.
    slots: set[int] = set()
    for rs in elf.sections:
        if rs.type != SHT_RELA or rs.link not in dynsym_idx or not len(dynsym_idx[rs.link]):
            continue
        off, sym, typ = elf.relocations(rs)
        m = np.isin(sym, dynsym_idx[rs.link]) & ((typ == R_X86_64_JUMP_SLOT) | (typ == R_X86_64_GLOB_DAT))
        slots.update(int(x) for x in off[m].tolist())

    found: dict[int, list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]]] = {_CALL: [], _JMP: []}
    for base, foff, size in elf.text_ranges():
        code = np.frombuffer(elf.bytes_at(foff, size), dtype=np.uint8)
        for op in found:
            found[op].append(_branches(code, base, op))
    if not found[_CALL]:
        return _EMPTY, _EMPTY
    at = {op: np.concatenate([c[0] for c in v]) for op, v in found.items()}
    tgt = {op: np.concatenate([c[1] for c in v]) for op, v in found.items()}
    if slots:
        every = np.concatenate(list(tgt.values()))
        plts = [s for s in elf.sections if s.executable and s.name.startswith((".plt", ".iplt"))]
        for s in plts:
            lo, hi = s.addr, s.addr + s.size
            cand = np.unique(every[(every >= np.uint64(lo)) & (every < np.uint64(hi))])
            for t in cand.tolist():
                if _plt_slot(elf, s.offset + t - s.addr, t) in slots:
                    targets.add(t)
    if not targets:
        return _EMPTY, _EMPTY
    want = np.array(sorted(targets), dtype=np.uint64)
    return (at[_CALL][np.isin(tgt[_CALL], want)], at[_JMP][np.isin(tgt[_JMP], want)])


def _plt_slot(elf: ElfFile, foff: int, addr: int) -> int | None:
    """The GOT slot a PLT stub at ``addr`` jumps through, or None."""
    code = elf.bytes_at(foff, 16)
    i = 0
    if code[:4] == _ENDBR64:
        i = 4
    if i < len(code) and code[i] == _BND:
        i += 1
    if code[i:i + 2] != b"\xff\x25" or len(code) < i + 6:
        return None
    disp = int.from_bytes(code[i + 2:i + 6], "little", signed=True)
    return addr + i + 6 + disp
