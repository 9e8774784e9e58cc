"""Every invalid call in every state, per ABI, against kcov.ko: the rows of
tests/support/abi_tables.py that the hosted device answers to in
tests/pybind/test_errno_table.py, plus the valid sequences.

FreeBSD, NetBSD and OpenBSD go to /dev/kcov with the module's personality
set to that ABI; Linux goes to /sys/kernel/debug/kcov.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
from typing import Any, Iterator

import pytest

import kcov
from tests.support import kmod_guest as H
from kcov import Mode
from tests.support import abi_tables as T

pytestmark = pytest.mark.vm


def open_dev(abi: str) -> kcov.Kcov:
    return H.open_dev(abi, None)


@pytest.fixture
def caller_for() -> Iterator[Any]:
    made: list[kcov.Kcov] = []
    extras: list[T.Elsewhere] = []

    def setup(abi: str, state: str) -> tuple[T.Caller, kcov.Kcov]:
        return T.open_in_state(open_dev, abi, state, made, extras)

    yield setup
    for x in extras:
        x.go.set()
        H.join_os(x.t)
    for k in reversed(made):
        k.close()


@pytest.mark.parametrize("row", T.ERRNO_ROWS, ids=str)
def test_invalid_call(caller_for: Any, row: Any) -> None:
    c, k = caller_for(row.abi, row.state)
    with pytest.raises(kcov.KcovError) as ei:
        c.call(k, row.cmd, row.arg)
    assert ei.value.errno == row.err, f"{row}: got {E.errorcode.get(ei.value.errno)}"


@pytest.mark.parametrize("abi", T.ABIS)
def test_valid_sequence(abi: str) -> None:
    c = T.Caller(abi)
    with H.open_dev(abi, None) as k:
        c.call(k, "sb", 512)
        m = k.mmap(H.PAGE)
        for _ in range(2):
            c.call(k, "en", c.pc)
            m.set_count(0)
            H.work(b"42")
            assert m.count() > 0, f"{abi}: nothing recorded"
            c.call(k, "di", 0)
            m.set_count(0)
            H.work(b"42")
            assert m.count() == 0, f"{abi}: recorded after disable"


def test_linux_remote_enable_unsupported() -> None:
    # struct kcov_remote_arg {trace_mode, area_size, num_handles, pad, common_handle}
    arg = ctypes.create_string_buffer(24)
    with H.open_dev("linux", 512) as k:
        with pytest.raises(kcov.KcovError) as ei:
            k.ioctl(T.NUMBERS["KCOV_LINUX_REMOTE_ENABLE"], ctypes.addressof(arg))
        assert ei.value.errno == T.ENOTSUPP
        with pytest.raises(kcov.KcovError) as ei:
            k.ioctl(T.NUMBERS["KCOV_LINUX_REMOTE_ENABLE"], 0)
        assert ei.value.errno == E.EFAULT


def test_openbsd_bufsize1_ok() -> None:
    c = T.Caller("openbsd")
    with H.open_dev("openbsd", None) as k:
        c.call(k, "sb", 1)


def test_netbsd_mode_none_records_nothing() -> None:
    with H.open_dev("netbsd", 512) as k:
        with k.trace(Mode.NONE):
            H.work(b"42")
            assert k.count == 0
        with k.trace(Mode.PC):
            H.work(b"42")
            assert k.count > 0


@pytest.mark.parametrize("abi,pages,length,prot,flags,off,err", T.MMAP_ROWS)
def test_mmap_rules(page: int, abi: str, pages: int | None, length: int,
                    prot: int, flags: int, off: int, err: int) -> None:
    with H.open_dev(abi, None, exec_ok=bool(prot & mmap.PROT_EXEC)) as k:
        if pages is not None:
            arg, keep = kcov.spec(abi).encode(pages * page // 8, ctypes.c_uint64)
            k.ioctl(kcov.spec(abi).setbufsize, arg)
            del keep
        if err == 0:
            m = k.mmap(length * page, prot, flags, off * page)
            assert m.length == length * page
            assert m.writable == bool(prot & mmap.PROT_WRITE)
            m.word(length * page // 8 - 1)  # every mapped page is readable
        else:
            with pytest.raises(kcov.KcovError) as ei:
                k.mmap(length * page, prot, flags, off * page)
            assert ei.value.errno == err
