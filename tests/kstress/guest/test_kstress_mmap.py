"""mmap of kcov.ko's descriptors with every wrong (and right) length,
offset, protection and sharing flag, in each ABI, before sizing, after
sizing and while enabled.

9 lengths x 7 offsets x 8 protections x 3 flag sets = 1,512 calls per ABI
and state, 18,144 in all.  The expected result of each is computed from the
specifications (kstress_guest.expected_mmap: the VFS's own checks, then the
ABI's rules), and must match exactly.  A mapping that succeeds must show
the descriptor's own buffer at the right place (each word of the buffer
holds its index, written through a reference mapping); one that fails must
leave no mapping behind (/proc/self/maps is checked after each length).

The nodes are on an exec mount (kmod_guest.exec_node), so that the ABIs'
own answers to PROT_EXEC are seen rather than the VFS's EPERM for noexec.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
from collections import Counter

import kcov
import pytest

import kstress_guest as G
from kstress_guest import H

pytestmark = pytest.mark.vm

ENTRIES = 1024  # two pages
P = G.PAGE
LENGTHS = (0, 1, P - 1, P, P + 1, 2 * P, 2 * P + 1, 3 * P, 1 << 30)
OFFSETS = (0, 1, P, 2 * P, 3 * P, 1 << 40, -P)
STATES = ("unsized", "sized", "enabled")
TAG = 0x6B73_0000_0000_0000


def matrix(abi: str, state: str, results: Counter[str]) -> None:
    prov = H.provider(abi, exec_ok=True)
    spec = kcov.spec(abi)
    fd = prov.open()
    ref = None
    keep = []
    try:
        entries = None
        if state != "unsized":
            arg, box = spec.encode(ENTRIES, ctypes.c_uint64)
            keep.append(box)
            assert prov.ioctl(fd, spec.setbufsize, int(arg)) == 0
            entries = ENTRIES
            err, ref = prov.mmap(fd, ENTRIES * 8, G.RW, mmap.MAP_SHARED, 0)
            assert err == 0, f"{abi}: reference mapping: {E.errorcode.get(err, err)}"
            for i in range(1, ENTRIES):
                ref.set_word(i, TAG | i)
            ref.set_word(0, 0)
        if state == "enabled":
            arg, box = spec.encode(spec.mode_value(kcov.Mode.PC), ctypes.c_int)
            keep.append(box)
            assert prov.ioctl(fd, spec.enable, int(arg)) == 0
        baseline = len(G.kcov_maps())
        for length in LENGTHS:
            for offset in OFFSETS:
                for prot in G.PROTS:
                    for flags in G.FLAGS:
                        want = G.expected_mmap(abi, entries, length, prot, flags, offset)
                        err, m = prov.mmap(fd, length, prot, flags, offset)
                        call = (f"{abi} {state}: mmap(len {length:#x}, prot {prot}, flags {flags:#x}, "
                                f"off {offset:#x})")
                        assert err == want, (f"{call} -> {E.errorcode.get(err, err)}, "
                                             f"expected {E.errorcode.get(want, want)}")
                        results["ok" if err == 0 else E.errorcode.get(err, str(err))] += 1
                        if m is None:
                            assert err != 0, f"{call}: no mapping and no errno"
                            continue
                        assert m.length == length, call
                        if prot & mmap.PROT_READ:
                            # The buffer's own words, from the right place:
                            # FreeBSD ignores the offset, Linux requires 0,
                            # NetBSD and OpenBSD map from it.
                            first = offset // 8 if abi in (G.NETBSD, G.OPENBSD) else 0
                            nwords = length // 8  # the Mapping's words
                            for j in sorted({min(1, nwords - 1), nwords - 1} - {-1}):
                                want_word = TAG | (first + j) if first + j else 0
                                assert m.word(j) == want_word, f"{call}: word {j} is {m.word(j):#x}"
                        del m
                maps = G.kcov_maps()
                assert len(maps) == baseline, f"{abi} {state} length {length:#x}: mappings left: {maps}"
        if state == "enabled":
            assert prov.ioctl(fd, spec.disable, 0) == 0
    finally:
        del ref
        prov.close(fd)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("abi", G.ABIS)
def test_mmap_matrix(abi: str, state: str) -> None:
    results: Counter[str] = Counter()
    H.in_thread(lambda: matrix(abi, state, results))
    total = len(LENGTHS) * len(OFFSETS) * len(G.PROTS) * len(G.FLAGS)
    assert sum(results.values()) == total
    if state != "unsized":
        assert results["ok"] > 0, dict(results)  # the right calls do map
    assert len(results) > 1, dict(results)
    print(f"{abi} {state}: {dict(sorted(results.items()))}")
