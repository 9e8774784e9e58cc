"""Zero-copy views, overflow, snapshots and exceptions of the Python API."""
from __future__ import annotations

import errno
import gc
from typing import Any

import numpy as np
import pytest

import kcov
from kcov import Mode, State


@pytest.fixture
def k() -> Any:
    with kcov.open("hosted", entries=512) as k:
        yield k


def test_pcs_zero_copy(k: kcov.Kcov, lib: Any) -> None:
    with k.trace(Mode.PC):
        lib.work(20)
    a, b = k.pcs(), k.pcs()
    assert a.dtype == np.uint64 and len(a) == k.count > 0
    assert np.shares_memory(a, b)
    assert a.base is k.mapping
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1
    # Word 1 of the mapping is the first PC.
    assert int(a[0]) == k.mapping.word(1)


def test_views_survive_close_and_del(lib: Any) -> None:
    k = kcov.open("hosted", entries=512)
    with k.trace(Mode.PC):
        lib.work(20)
    pcs = k.pcs()
    first = pcs.copy()
    cmp_k = kcov.open("hosted", entries=512)
    with cmp_k.trace(Mode.CMP):
        lib.cmp_const(42)
    recs = cmp_k.comparisons()
    k.close()
    cmp_k.close()
    assert k.state == State.CLOSED
    del k, cmp_k
    gc.collect()
    np.testing.assert_array_equal(pcs, first)
    assert int(recs.arg2[0]) == 42 and int(recs.arg1[0]) == 0x1234ABCD


def test_comparisons_decoded(k: kcov.Kcov, lib: Any) -> None:
    with k.trace(Mode.CMP):
        lib.cmp_const(7)
        lib.cmp_vars(-1, 3)
    c = k.comparisons()
    assert len(c) == k.count == 2
    assert c.records.dtype == kcov.CMP_DTYPE
    assert np.shares_memory(c.records, k.comparisons().records)
    assert not c.records.flags.writeable
    assert c.size.tolist() == [4, 8]
    assert c.is_const.tolist() == [True, False]
    assert c.type.tolist() == [(2 << 1) | 1, 3 << 1]
    assert c.arg1.tolist() == [0x1234ABCD, 0xFFFFFFFFFFFFFFFF]
    assert c.arg2.tolist() == [7, 3]
    assert c.pc[0] != c.pc[1]


def test_pc_differs_with_input(k: kcov.Kcov, lib: Any) -> None:
    with k.trace(Mode.PC):
        lib.work(1)
    short = k.snapshot()
    with k.trace(Mode.PC):
        lib.work(30)
    long = k.snapshot()
    assert len(long) > len(short) > 0
    assert set(short.unique().tolist()) <= set(long.unique().tolist())
    assert not short.pcs.flags.writeable
    assert not np.shares_memory(short.pcs, k.pcs())


@pytest.mark.parametrize("abi", ["freebsd", "linux", "netbsd", "openbsd"])
def test_overflow(lib: Any, abi: str) -> None:
    # NetBSD and OpenBSD can map a buffer smaller than a page.
    entries = 8 if abi in ("netbsd", "openbsd") else 512
    with kcov.open("hosted", abi=abi, entries=entries) as k:
        with k.trace(Mode.PC):
            lib.work(2000)
            assert k.count == k.capacity == entries - 1
            assert k.overflowed
            assert len(k.pcs()) == k.capacity
            assert k.info["dropped"] > 0
            k.reset()
            assert k.count == 0 and not k.overflowed
            lib.work(0)
            assert 0 < k.count < k.capacity and not k.overflowed


def test_count_clamped_when_word0_is_corrupt(k: kcov.Kcov, lib: Any) -> None:
    w = k.mmap(k.mapping.length)  # a second, writable alias
    w.set_count(1 << 40)
    assert k.count == k.capacity
    assert len(k.pcs()) == k.capacity
    assert len(k.comparisons()) == (k.entries - 1) // 4
    # The runtime does not trust word 0 either.
    with k.trace(Mode.PC):
        w.set_count(1 << 40)
        lib.work(3)
    assert w.count() == 1 << 40


def test_exception_carries_errno_and_state(k: kcov.Kcov) -> None:
    k.enable(Mode.PC)
    with pytest.raises(kcov.KcovBusyError) as ei:
        k.enable(Mode.PC)
    e = ei.value
    assert isinstance(e, OSError) and isinstance(e, kcov.KcovError)
    assert e.errno == errno.EBUSY
    assert e.state == "RUNNING" and e.operation == "KIOENABLE"
    assert "(state: RUNNING)" in str(e) and "EBUSY" in str(e)
    k.disable()
    with pytest.raises(kcov.KcovInvalidError) as ei2:
        k.disable()
    assert ei2.value.errno == errno.EINVAL and "(state: READY)" in str(ei2.value)
    k.close()
    with pytest.raises(kcov.KcovError) as ei3:
        k.enable(Mode.PC)
    assert ei3.value.errno == errno.EBADF and ei3.value.state == "CLOSED"


def test_linux_enotsupp_class() -> None:
    e = kcov.errors.error_for(kcov.ENOTSUPP, "KCOV_ENABLE", "READY")
    assert isinstance(e, kcov.KcovUnsupportedError) and e.errno == 524
    assert type(kcov.errors.error_for(errno.ENOBUFS, "x", "OPEN")) is kcov.KcovError


def test_mode_not_in_abi() -> None:
    with kcov.open("hosted", abi="linux", entries=512) as k:
        with pytest.raises(ValueError, match="NONE"):
            k.enable(Mode.NONE)


def test_trace_disables_on_exception(k: kcov.Kcov) -> None:
    with pytest.raises(RuntimeError):
        with k.trace(Mode.PC):
            raise RuntimeError("boom")
    assert k.state == State.READY


def test_open_arguments() -> None:
    with pytest.raises(ValueError, match="provider"):
        kcov.open("nope")
    with pytest.raises(ValueError, match="ABI"):
        kcov.open("hosted", abi="plan9")
    with pytest.raises(ValueError, match="linux"):
        kcov.open("linux", abi="freebsd")
    with kcov.open("hosted", abi="openbsd", entries=None) as k:
        assert k.state == State.OPEN and k.capacity == 0 and k.count == 0
        with pytest.raises(kcov.KcovInvalidError, match="not mapped"):
            k.pcs()


def test_auto_falls_back_to_hosted() -> None:
    if kcov.LinuxDeviceProvider().available():
        pytest.skip("a real Linux kcov device is present")
    with kcov.open("auto", entries=512) as k:
        assert k.provider.name == "hosted" and k.abi == kcov.Abi.FREEBSD
        assert k.info["provider"] == "hosted"
