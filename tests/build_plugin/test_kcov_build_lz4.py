"""Real third-party C: the LZ4 sources bundled in the lz4 4.3.3 sdist.

They are built into an instrumented shared library with
`kcov-build -- clang-19 -O2 -fPIC -shared ...`, loaded with ctypes into this
process (which already holds the runtime through kcov._core, so the DSO binds
to the same instance), and traced through the hosted FreeBSD device.  Two
inputs that take different paths through the compressor must give different
PC sets, each of a plausible size, and the round trip must be exact.
"""
from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import pytest

from buildhelp import kcov_build

from tests.support import abi_tables as T
from tests.support.lz4 import lz4libs
from tests.support.prereq import need_tool

ENTRIES = 1 << 18


@pytest.fixture(scope="module")
def liblz4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tool("clang-19")
    out = tmp_path_factory.mktemp("lz4")
    src = lz4libs(out)
    sources = sorted(src.glob("*.c"))
    assert {s.name for s in sources} >= {"lz4.c", "lz4hc.c", "lz4frame.c", "xxhash.c"}
    lib = out / "liblz4-kcov.so"
    kcov_build("--", "clang-19", "-O2", "-fPIC", "-shared", *sources, "-o", lib)
    return lib


class Lz4:
    def __init__(self, path: Path) -> None:
        import kcov._core  # noqa: F401  (loads the runtime instance first)

        self.dll = ctypes.CDLL(str(path))
        self.dll.LZ4_compressBound.argtypes = [ctypes.c_int]
        self.dll.LZ4_compressBound.restype = ctypes.c_int
        for name in ("LZ4_compress_default", "LZ4_decompress_safe"):
            fn = getattr(self.dll, name)
            fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
            fn.restype = ctypes.c_int

    def compress(self, data: bytes) -> bytes:
        cap = self.dll.LZ4_compressBound(len(data))
        dst = ctypes.create_string_buffer(cap)
        n = self.dll.LZ4_compress_default(data, dst, len(data), cap)
        assert n > 0
        return dst.raw[:n]

    def decompress(self, data: bytes, size: int) -> bytes:
        dst = ctypes.create_string_buffer(size)
        n = self.dll.LZ4_decompress_safe(data, dst, len(data), size)
        assert n == size, n
        return dst.raw[:n]


class Tracer:
    """A hosted FreeBSD kcov descriptor in PC mode, through kcov._core."""

    def __init__(self) -> None:
        from kcov import _core

        self.core = _core
        self.fd = _core.hosted_open(_core.ABI_FREEBSD)
        assert _core.hosted_ioctl(self.fd, T.SETBUFSIZE[T.FREEBSD], ENTRIES) == 0
        err, self.mapping = _core.hosted_mmap(
            self.fd, ENTRIES * 8, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0
        )
        assert err == 0 and self.mapping is not None, os.strerror(err)

    def trace(self, fn, *args):  # type: ignore[no-untyped-def]
        self.mapping.set_count(0)
        assert self.core.hosted_ioctl(self.fd, T.ENABLE[T.FREEBSD], T.MODES[T.FREEBSD]["PC"]) == 0
        try:
            result = fn(*args)
        finally:
            assert self.core.hosted_ioctl(self.fd, T.DISABLE[T.FREEBSD], 0) == 0
        n = self.mapping.count()
        assert n < ENTRIES - 1, "buffer full: raise ENTRIES"
        pcs = self.core.view_words(self.mapping, 1, n).copy()
        return result, pcs

    def close(self) -> None:
        del self.mapping
        self.core.hosted_close(self.fd)


def test_lz4_coverage_depends_on_input(liblz4: Path) -> None:
    lz4 = Lz4(liblz4)
    compressible = b"kcov " * 8192  # 40 KiB of one repeated phrase
    noise = os.urandom(40960)
    t = Tracer()
    try:
        packed_a, pcs_a = t.trace(lz4.compress, compressible)
        packed_b, pcs_b = t.trace(lz4.compress, noise)
        unpacked_a, pcs_da = t.trace(lz4.decompress, packed_a, len(compressible))
        # Nothing is recorded outside enable/disable.
        idle_before = t.mapping.count()
        lz4.compress(noise)
        assert t.mapping.count() == idle_before
    finally:
        t.close()

    assert unpacked_a == compressible
    assert lz4.decompress(packed_b, len(noise)) == noise
    assert len(packed_a) < len(compressible) // 20
    assert len(packed_b) >= len(noise)  # random bytes do not compress

    lib_pcs = [set(pcs_a.tolist()), set(pcs_b.tolist()), set(pcs_da.tolist())]
    # Every PC lies inside the instrumented library's mapping.
    lo, hi = mapped_range(liblz4)
    for s in lib_pcs:
        assert all(lo <= pc < hi for pc in s)
    a, b, d = lib_pcs
    # Plausible sizes: a handful to a few dozen distinct blocks for one
    # entry point (clang prunes dominated blocks), not one and not the
    # whole library; the events repeat as the loops run over 40 KiB.
    for s in (a, b, d):
        assert 5 <= len(s) <= 2000, [len(x) for x in lib_pcs]
    for pcs in (pcs_a, pcs_b, pcs_da):
        assert 100 <= len(pcs), (len(pcs_a), len(pcs_b), len(pcs_da))
    # The compressor walks different paths for the two inputs: only the
    # compressible one finds matches ...
    assert a != b
    assert len(a - b) > 0 and len(a) > len(b)
    # ... and the decompressor is different code again.
    assert d - (a | b)


def mapped_range(lib: Path) -> tuple[int, int]:
    """[lowest, highest) address of the mappings of lib in this process."""
    lo, hi = None, None
    real = os.path.realpath(lib)
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real:
                a, b = (int(x, 16) for x in parts[0].split("-"))
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
    assert lo is not None and hi is not None, f"{lib} is not mapped"
    return lo, hi
