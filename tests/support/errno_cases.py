"""Every invalid call in every state, per ABI, with the exact errno of the
reference kernel (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3), the
valid sequences, and the mmap rules: the rows of tests/support/abi_tables.py
run against a provider, written once.

Run against the hosted device (tests/pybind/test_errno_table.py) and
kcov.ko in the VM (tests/kmod/guest/test_kmod_errno.py), each through its
conftest's `target` (tests/support/contract.py's `Target`).  On kcov.ko,
FreeBSD, NetBSD and OpenBSD go to /dev/kcov with the module's personality
set to that ABI; Linux goes to /sys/kernel/debug/kcov.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
from typing import Callable, Iterator

import pytest

import kcov
from kcov import Mode

from . import abi_tables as T
from .contract import Target

__all__ = ["caller_for", "test_invalid_call", "test_valid_sequence", "test_openbsd_bufsize1_ok",
           "test_netbsd_mode_none_records_nothing", "test_mmap_rules"]

ERROR_CLASS = {
    E.EBUSY: kcov.KcovBusyError, E.EEXIST: kcov.KcovBusyError,
    E.EINVAL: kcov.KcovInvalidError, E.ENOENT: kcov.KcovInvalidError,
    E.ENXIO: kcov.KcovInvalidError, E.EPERM: kcov.KcovInvalidError,
    E.ENOTTY: kcov.KcovUnsupportedError,
}

Setup = Callable[[str, str], "tuple[T.Caller, kcov.Kcov]"]


@pytest.fixture
def caller_for(target: Target) -> Iterator[Setup]:
    """setup(abi, state): a descriptor brought to an ERRNO_ROWS state."""
    made: list[kcov.Kcov] = []
    extras: list[T.Elsewhere] = []

    def setup(abi: str, state: str) -> tuple[T.Caller, kcov.Kcov]:
        return T.open_in_state(lambda a: target.open(None, a), abi, state, made, extras)

    yield setup
    for x in extras:
        x.go.set()
        target.join(x.t)
    for k in reversed(made):
        k.close()


@pytest.mark.parametrize("row", T.ERRNO_ROWS, ids=str)
def test_invalid_call(caller_for: Setup, row: T.Row) -> None:
    c, k = caller_for(row.abi, row.state)
    state_before = k.state.name
    with pytest.raises(kcov.KcovError) as ei:
        c.call(k, row.cmd, row.arg)
    e = ei.value
    assert e.errno == row.err, f"{row}: got {E.errorcode.get(e.errno)}"
    assert type(e) is ERROR_CLASS.get(row.err, kcov.KcovError)
    assert e.state == state_before
    assert f"(state: {state_before})" in str(e)
    # A refused call changes nothing.
    assert k.state.name == state_before


@pytest.mark.parametrize("abi", T.ABIS)
def test_valid_sequence(target: Target, abi: str, page: int) -> None:
    c = T.Caller(abi)
    with target.open(None, abi) as k:
        c.call(k, "sb", 512)
        assert k.state == kcov.State.READY
        m = k.mmap(page)
        for _ in range(2):
            c.call(k, "en", c.pc)
            assert k.state == kcov.State.RUNNING
            m.set_count(0)
            target.work(42)
            assert m.count() > 0, f"{abi}: nothing recorded"
            c.call(k, "di", 0)
            assert k.state == kcov.State.READY
            m.set_count(0)
            target.work(42)
            assert m.count() == 0, f"{abi}: recorded after disable"


def test_openbsd_bufsize1_ok(target: Target) -> None:
    c = T.Caller("openbsd")
    with target.open(None, "openbsd") as k:
        c.call(k, "sb", 1)
        assert k.state == kcov.State.READY and k.entries == 1


def test_netbsd_mode_none_records_nothing(target: Target) -> None:
    with target.open(512, "netbsd") as k:
        with k.trace(Mode.NONE):
            target.work(42)
            assert k.count == 0
        assert k.mode == Mode.NONE
        with k.trace(Mode.PC):
            target.work(42)
            assert k.count > 0


@pytest.mark.parametrize("abi,pages,length,prot,flags,off,err", T.MMAP_ROWS)
def test_mmap_rules(target: Target, page: int, abi: str, pages: int | None, length: int,
                    prot: int, flags: int, off: int, err: int) -> None:
    with target.open(None, abi, exec_ok=bool(prot & mmap.PROT_EXEC)) as k:
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


