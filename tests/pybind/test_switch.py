"""Switch records: FreeBSD's quirk versus every other ABI, for both
compilers.

data/instr.c's sw() switches an int over {-2, 5, 100, 7000}.  Clang passes
the case values zero-extended and sorted; GCC passes them sign-extended in
source order.  The runtime cuts both to the operand width, so every record
carries 32-bit zero-extended values whichever compiler built the code.
"""
from __future__ import annotations

from typing import Any

import pytest

import kcov
from kcov import Mode

CASES = [-2, 5, 100, 7000]
M32 = 0xFFFFFFFF
SIZE4 = 2 << 1  # KCOV_CMP_SIZE(2)


def expected(abi: str, val: int) -> list[tuple[int, int, int]]:
    if abi == "freebsd":
        # subr_coverage.c: type = SIZE only, arg1 = val | CONST, arg2 = case
        return sorted((SIZE4, (val & M32) | 1, c & M32) for c in CASES)
    return sorted((SIZE4 | 1, c & M32, val & M32) for c in CASES)


@pytest.mark.parametrize("abi", ["freebsd", "linux", "netbsd", "openbsd"])
@pytest.mark.parametrize("val", [-2, 5, 1])
def test_switch_records(any_lib: tuple[str, Any], abi: str, val: int) -> None:
    cc, lib = any_lib
    entries = 512
    with kcov.open("hosted", abi=abi, entries=entries) as k:
        with k.trace(Mode.CMP):
            lib.sw(val)
        c = k.comparisons()
        got = sorted(zip(c.type.tolist(), c.arg1.tolist(), c.arg2.tolist()))
        assert got == expected(abi, val), cc
        assert len(set(c.pc.tolist())) == 1
        # No sign-extended 64-bit value reaches the buffer.
        assert all(v <= M32 for r in got for v in r)
        assert not k.overflowed


@pytest.mark.parametrize("abi,dropped", [("freebsd", 1), ("linux", 2)])
def test_switch_when_full(any_lib: tuple[str, Any], abi: str, dropped: int) -> None:
    """FreeBSD stops at the first dropped case; the others try every case."""
    _, lib = any_lib
    with kcov.open("hosted", abi=abi, entries=512) as k:
        w = k.mmap(k.mapping.length)  # a writable alias to prime word 0
        cap = (k.entries - 1) // 4
        with k.trace(Mode.CMP):
            w.set_count(cap - 2)
            lib.sw(5)
            assert k.count == cap
            assert k.overflowed
            assert k.info["dropped"] == dropped
