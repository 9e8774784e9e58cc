"""What a kcov-build'ed program records through kcov-run's /dev/kcov.

The client (data/client.c, not instrumented) enables FreeBSD PC or CMP mode,
calls into data/pc_target.c or data/cmp_target.c (built with kcov-build),
and prints the buffer and its load base.  The records are then checked
against the executable itself: symbol ranges from the ELF symbol table and
the instructions from a disassembler.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildhelp import Client, elf_symbols, kcov_run, need_tool, run

CONST = 1


def SIZE(n: int) -> int:  # noqa: N802  (the kernel's KCOV_CMP_SIZE)
    return n << 1


@dataclass(frozen=True)
class Output:
    base: int
    lines: list[list[str]]


def run_client(client: Client, mode: str) -> Output:
    p = kcov_run(client.exe, mode)
    lines = [ln.split() for ln in p.stdout.splitlines()]
    base = [int(ln[1], 16) for ln in lines if ln[0] == "base"]
    assert len(base) == 1, p.stdout
    return Output(base[0], lines)


def module_offset(exe: Path, base: int) -> int:
    """What to subtract from a run-time address to get a symbol value."""
    etype, _ = elf_symbols(exe)
    return base if etype == "ET_DYN" else 0


def disassemble(exe: Path, symbol: str) -> list[tuple[int, str]]:
    """(address, instruction text) of every instruction of `symbol`, in order."""
    tool = need_tool("llvm-objdump-19", "llvm-objdump", "objdump")
    p = run([tool, "-d", "--no-show-raw-insn", f"--disassemble-symbols={symbol}", exe])
    insns = []
    for line in p.stdout.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S.*)$", line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2)))
    assert insns, p.stdout
    return insns


def test_pc_records(client: Client) -> None:
    out = run_client(client, "pc")
    pcs = [int(ln[1], 16) for ln in out.lines if ln[0] == "pc"]
    (target,) = [int(ln[1], 16) for ln in out.lines if ln[0] == "target"]
    (result,) = [int(ln[1]) for ln in out.lines if ln[0] == "result"]
    assert result == 1  # pc_target(5); the instrumentation changes nothing

    _, syms = elf_symbols(client.exe)
    sym = syms["pc_target"]
    off = module_offset(client.exe, out.base)
    assert target - off == sym.value, "load base from dladdr disagrees with the symbol table"

    # A loop of 5 iterations with a branch inside: several distinct blocks,
    # some recorded more than once, and not thousands of records.
    assert 4 <= len(pcs) <= 200, pcs
    assert len(set(pcs)) >= 3, pcs
    rel = [pc - off for pc in pcs]
    outside = [hex(r) for r in rel if r not in sym]
    assert not outside, f"PCs outside pc_target [{sym.value:#x}, {sym.value + sym.size:#x}): {outside}"

    # Every PC is a return address: the instruction before it calls the
    # trace-pc callback.
    insns = disassemble(client.exe, "pc_target")
    preceding = {insns[i + 1][0]: insns[i][1] for i in range(len(insns) - 1)}
    for r in sorted(set(rel)):
        assert r in preceding, f"{r:#x} is not an instruction boundary after a call"
        text = preceding[r]
        assert re.match(r"call", text) and re.search(r"<__sanitizer_cov_trace_pc(@plt)?>", text), (hex(r), text)
    # ... and every trace-pc call site reached on this path is accounted for
    # at least once when the function has no untaken blocks at entry.
    calls = [insns[i + 1][0] for i in range(len(insns) - 1) if "__sanitizer_cov_trace_pc" in insns[i][1]]
    assert calls[0] in rel, "the entry block's trace-pc call was not recorded"


def f32(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def f64(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


# (function, type, arg1, arg2) in call order; values from cmp_target.c.
# Constants come first; everything is zero-extended to 64 bits.
INT_RECORDS = [
    ("cmp1", SIZE(0), 0xAB, 0xCD),
    ("ccmp1", SIZE(0) | CONST, 0x5A, 0xAB),
    ("scmp1", SIZE(0) | CONST, 0xF9, 0xFD),  # int8_t -7 == -3
    ("cmp2", SIZE(1), 0xBEEF, 0x8001),
    ("ccmp2", SIZE(1) | CONST, 0xA55A, 0xBEEF),
    ("cmp4", SIZE(2), 0xDEADBEEF, 0x80000001),
    ("ccmp4", SIZE(2) | CONST, 0xC0FFEE11, 0xDEADBEEF),
    ("cmp8", SIZE(3), 0xFEDCBA9876543210, 0x8000000000000001),
    ("ccmp8", SIZE(3) | CONST, 0x123456789ABCDEF0, 0xFEDCBA9876543210),
]
# GCC only (clang does not trace floating-point compares): the runtime
# records __sanitizer_cov_trace_cmpf/cmpd as 4- and 8-byte compares of the
# bit patterns.
FLOAT_RECORDS = [
    ("cmpf", SIZE(2), f32(1.5), f32(-2.25)),
    ("cmpd", SIZE(3), f64(3.0), f64(-0.125)),
]


def test_cmp_records(client: Client) -> None:
    out = run_client(client, "cmp")
    recs = [tuple(int(x, 0) for x in ln[1:]) for ln in out.lines if ln[0] == "cmp"]
    _, syms = elf_symbols(client.exe)
    off = module_offset(client.exe, out.base)

    expected = INT_RECORDS + (FLOAT_RECORDS if client.cc.startswith("gcc") else [])
    # Each function compares once: its record must be there, exactly, with
    # the PC of a call site inside that function.
    found = []
    for func, typ, a1, a2 in expected:
        sym = syms[func]
        mine = [(t, x, y) for t, x, y, ip in recs if ip - off in sym]
        assert mine == [(typ, a1, a2)], f"{func}: expected {(typ, hex(a1), hex(a2))}, got {mine}"
        found.append(next(r for r in recs if r[3] - off in sym))
    # ... in call order, with nothing recorded from elsewhere (cmp_run has no
    # compares, the client is not instrumented).
    assert recs == found
    assert all(0 <= t <= 7 for t, _, _, _ in recs)


def test_cmp_mode_records_no_pcs_and_pc_mode_no_cmps(client: Client) -> None:
    """The two modes do not leak into each other."""
    pc = run_client(client, "pc")
    assert not [ln for ln in pc.lines if ln[0] == "cmp"]
    cmp = run_client(client, "cmp")
    assert not [ln for ln in cmp.lines if ln[0] == "pc"]


@pytest.mark.parametrize("cc", ["clang-19"])
def test_trace_pc_only_build_records_no_cmps(cc: str, tmp_path: Path) -> None:
    """--mode pc: CMP mode then records nothing (no cmp callbacks compiled in)."""
    from buildhelp import DATA, kcov_build

    need_tool(cc)
    run([cc, "-O2", "-c", DATA / "client.c", "-o", tmp_path / "client.o"])
    for name in ("pc_target", "cmp_target"):
        kcov_build("--mode", "pc", cc, "-O2", "-c", DATA / f"{name}.c", "-o", tmp_path / f"{name}.o")
    exe = tmp_path / "client"
    kcov_build(cc, tmp_path / "client.o", tmp_path / "pc_target.o", tmp_path / "cmp_target.o", "-o", exe, "-ldl")
    out = run_client(Client(cc, exe), "cmp")
    assert not [ln for ln in out.lines if ln[0] == "cmp"]
    out = run_client(Client(cc, exe), "pc")
    assert [ln for ln in out.lines if ln[0] == "pc"]
