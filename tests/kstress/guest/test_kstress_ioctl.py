"""Random ioctl numbers and arguments against kcov.ko, in every state.

For each ABI (Linux on /sys/kernel/debug/kcov; FreeBSD, NetBSD and OpenBSD
on /dev/kcov with that personality) and each state a descriptor can be put
in before the abuse starts (fresh, sized, sized and mapped, enabled), 10
batches of 25 calls: 4,000 calls in all, from a fixed seed.  Each batch runs
on a thread of its own that exits afterwards (so a random enable that
succeeds cannot bind the test's thread), and one call in ten is a traced
write to the instrumented module instead.

The commands are the ABI's own three, every ABI's numbers, their
neighbours, the same numbers with another size or direction field, and
random words (minus the few the
VFS answers itself, kstress_guest.VFS_IOCTLS).  The arguments are special
values, small and huge numbers, and pointers: NULL, a user buffer holding
such a value, an unmapped address, a kernel address, and an address 4
bytes before an unmapped page.  A result must be 0 or an errno the ABI that
handles the command documents; an unknown command gets exactly ENOTTY or
EINVAL (by the descriptor's ABI), and a command of another ABI than the
one that sized the descriptor exactly ENOTTY (kstress_guest.expected_ioctl).

Sizes stay below 8 MiB: a valid size beyond the VM's memory fails in
vmalloc with the kernel's own allocation-failure warning and backtrace (as
in-tree kcov's does), which is not what this test is about.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
import random
from collections import Counter
from typing import Any

import kcov
import pytest

import kstress_guest as G
from kstress_guest import H

pytestmark = pytest.mark.vm

SEED = 0x6B737472
BATCHES = 10
CALLS = 25
STATES = ("fresh", "sized", "mapped", "enabled")
ENTRIES = 512  # one page
SPECIAL = (0, 1, 2, 3, 4, 511, 512, 513, 1023, 1024, 4096, 65536, 1 << 20,
           (1 << 24) + 1,  # FreeBSD's max_entries + 1
           0x7FFFFFFF // 8 + 1,  # Linux's INT_MAX / 8 + 1
           (256 << 10) + 1, (512 << 10) + 1,  # NetBSD's and OpenBSD's maximum + 1
           2**31 - 1, 2**32 - 1, 2**32 + 512,  # FreeBSD reads a u_int: 512
           2**63, 2**64 - 1)
KERNEL_ADDR = 0xFFFF888000000000


def _edge() -> int:
    """An address 4 bytes before an unmapped page: 8 bytes read from it fault."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    base = libc.mmap(None, 2 * G.PAGE, G.RW, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert base not in (None, ctypes.c_void_p(-1).value)
    assert libc.munmap(base + G.PAGE, G.PAGE) == 0
    return int(base) + G.PAGE - 4


EDGE = _edge()


def draw_value(rng: random.Random) -> int:
    """A number that is never a valid size above 8 MiB in any ABI."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice((0, 1, 2, 512, 1024))  # modes and sizes that work
    if kind == 1:
        return rng.choice(SPECIAL)
    if kind == 2:
        return rng.randrange(1 << 16)
    if kind == 3:  # 64-bit, both halves >= 2^31 (FreeBSD's u_int included)
        return (rng.getrandbits(32) | 1 << 31) << 32 | rng.getrandbits(32) | 1 << 31
    return rng.getrandbits(32) | 1 << 31


def draw_arg(rng: random.Random, keep: list[Any], cmd: int) -> tuple[int, str]:
    """(the argument, how to print it); half the arguments of a command that
    copies a value in (IOC_IN) point to a buffer holding one."""
    kind = rng.randrange(8)
    if cmd & 0x80000000 and rng.random() < 0.5:
        kind = 4
    if kind < 4:
        v = draw_value(rng)
        return v, f"{v:#x}"
    if kind == 4:
        v = draw_value(rng)
        buf = ctypes.create_string_buffer(v.to_bytes(8, "little") + bytes(56), 64)
        keep.append(buf)
        return ctypes.addressof(buf), f"&{v:#x}"
    return {5: (0, "NULL"), 6: (0x10, "unmapped"),
            7: rng.choice([(KERNEL_ADDR, "kernel"), (EDGE, "page-edge")])}[kind]


def draw_cmd(rng: random.Random, abi: str) -> int:
    own = kcov.spec(abi)
    while True:
        kind = rng.randrange(12)
        base = rng.choice(G.ALL_CMDS)
        if kind < 2:
            cmd = rng.choice((own.setbufsize, own.enable, own.disable))
        elif kind < 6:
            cmd = base
        elif kind < 8:
            cmd = (base + rng.randint(-3, 3)) & 0xFFFFFFFF
        elif kind == 8:
            cmd = (base & ~(0x1FFF << 16)) | (rng.randrange(0x2000) << 16)
        elif kind == 9:
            cmd = base ^ (rng.randint(1, 3) << 30)
        else:
            cmd = rng.getrandbits(32)
        if cmd not in G.VFS_IOCTLS:
            return cmd


def size_arg(abi: str, keep: list[Any]) -> int:
    arg, box = kcov.spec(abi).encode(ENTRIES, ctypes.c_uint64)
    keep.append(box)
    return int(arg)


def one_batch(abi: str, state: str, rng: random.Random, results: Counter[str], log: list[str]) -> None:
    prov = H.provider(abi)
    spec = kcov.spec(abi)
    keep: list[Any] = []
    fd = prov.open()
    mapping = None
    try:
        sized: str | None = None
        if state != "fresh":
            assert prov.ioctl(fd, spec.setbufsize, size_arg(abi, keep)) == 0
            sized = abi
        if state in ("mapped", "enabled"):
            err, mapping = prov.mmap(fd, ENTRIES * 8, G.RW, mmap.MAP_SHARED, 0)
            assert err == 0, f"mmap: {E.errorcode.get(err, err)}"
        if state == "enabled":
            arg, box = spec.encode(spec.mode_value(kcov.Mode.PC), ctypes.c_int)
            keep.append(box)
            assert prov.ioctl(fd, spec.enable, int(arg)) == 0
        for i in range(CALLS):
            if rng.random() < 0.1:
                H.work(rng.choice([b"7", b"42", b"abc", b"0xC0FFEE"]))
                results["record"] += 1
                log.append(f"{i}: record")
                continue
            cmd = draw_cmd(rng, abi)
            arg, shown = draw_arg(rng, keep, cmd)
            err = prov.ioctl(fd, cmd, arg)
            handler, exact = G.expected_ioctl(cmd, sized, abi)
            log.append(f"{i}: ioctl({cmd:#010x}, {shown}) -> {E.errorcode.get(err, err)}"
                       f" [{handler or 'unknown'}, sized {sized}]")
            if exact is not None:
                ok = err in exact
            else:
                assert handler is not None
                ok = err == 0 or err in G.DOCUMENTED[handler]
            assert ok, "undocumented result:\n  " + "\n  ".join(log[-8:])
            results[f"{handler or 'unknown'}:{E.errorcode.get(err, err) if err else 'ok'}"] += 1
            sizing = {G.F_SETBUFSIZE: G.FREEBSD, G.L_INIT_TRACE: G.LINUX}.get(cmd)
            if cmd == G.K_SETBUFSIZE:
                sizing = handler
            if err == 0 and sizing is not None and sized is None:
                sized = sizing
    finally:
        del mapping
        prov.close(fd)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("abi", G.ABIS)
def test_random_ioctls(abi: str, state: str) -> None:
    results: Counter[str] = Counter()
    before = H.stats()
    for batch in range(BATCHES):
        rng = random.Random(f"{SEED}:{abi}:{state}:{batch}")
        log: list[str] = [f"seed {SEED:#x}, {abi}, {state}, batch {batch}"]
        H.in_thread(lambda rng=rng, log=log: one_batch(abi, state, rng, results, log))
        assert H.wait_until(lambda: H.stats() == before, 20), \
            f"batch {batch} left {H.stats()} (before {before}):\n  " + "\n  ".join(log)
    assert sum(results.values()) == BATCHES * CALLS
    # Not everything bounced off the ABI check: the descriptor's own driver
    # answered calls.
    assert any(k.startswith(f"{abi}:") and not k.endswith("ENOTTY") for k in results), dict(results)
    print(f"{abi} {state}: {dict(sorted(results.items()))}")
