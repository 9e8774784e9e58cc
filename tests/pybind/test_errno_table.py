"""Every invalid call in every state, per ABI, with the exact errno of the
reference kernel (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3), on
the hosted device.

The rows, mmap rules and ioctl numbers are tests/support/abi_tables.py's,
shared with kcov.ko's guest suite (tests/kmod/guest/test_kmod_errno.py);
this file supplies the hosted provider, and checks that kcov.abi and
runtime/kcov_abi.h carry the spec's encodings.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

import kcov
from kcov import Mode
from tests.support import abi_tables as T
from tests.support.abi_tables import Caller, Elsewhere, Row
from pybind_helpers import REPO

ERROR_CLASS = {
    E.EBUSY: kcov.KcovBusyError, E.EEXIST: kcov.KcovBusyError,
    E.EINVAL: kcov.KcovInvalidError, E.ENOENT: kcov.KcovInvalidError,
    E.ENXIO: kcov.KcovInvalidError, E.EPERM: kcov.KcovInvalidError,
    E.ENOTTY: kcov.KcovUnsupportedError,
}


def open_hosted(abi: str) -> kcov.Kcov:
    return kcov.open("hosted", abi=abi, entries=None)


@pytest.fixture
def caller_for() -> Iterator[Any]:
    made: list[kcov.Kcov] = []
    extras: list[Elsewhere] = []

    def setup(abi: str, state: str) -> tuple[Caller, kcov.Kcov]:
        return T.open_in_state(open_hosted, abi, state, made, extras)

    yield setup
    for x in extras:
        x.go.set()
        x.t.join(30)
    for k in reversed(made):
        k.close()


@pytest.mark.parametrize("row", T.ERRNO_ROWS, ids=str)
def test_invalid_call(caller_for: Any, row: Row) -> None:
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
def test_valid_sequence(abi: str) -> None:
    c = Caller(abi)
    with kcov.open("hosted", abi=abi, entries=None) as k:
        c.call(k, "sb", 512)
        assert k.state == kcov.State.READY
        for _ in range(2):
            c.call(k, "en", c.pc)
            assert k.state == kcov.State.RUNNING
            c.call(k, "di", 0)
            assert k.state == kcov.State.READY


def test_openbsd_bufsize1_ok() -> None:
    c = Caller("openbsd")
    with kcov.open("hosted", abi="openbsd", entries=None) as k:
        c.call(k, "sb", 1)
        assert k.state == kcov.State.READY and k.entries == 1


def test_netbsd_mode_none_records_nothing(lib: Any) -> None:
    with kcov.open("hosted", abi="netbsd", entries=512) as k:
        with k.trace(Mode.NONE):
            lib.work(10)
            assert k.count == 0
        assert k.mode == Mode.NONE


def test_kcov_abi_is_the_spec() -> None:
    """kcov.abi's numbers and modes are the spec's encodings."""
    for abi in T.ABIS:
        s = kcov.spec(abi)
        assert (s.setbufsize, s.enable, s.disable) == \
            (T.SETBUFSIZE[abi], T.ENABLE[abi], T.DISABLE[abi]), abi
        assert s.by_pointer == T.BY_POINTER[abi]
        assert {m.name: v for m, v in s.modes.items()} == T.MODES[abi]
        assert set(s.names) <= set(T.NUMBERS.values()), abi
        assert {T.SETBUFSIZE[abi], T.ENABLE[abi], T.DISABLE[abi]} <= set(s.names)


HEADER_PROGRAM = """
#include <stdio.h>
#include "kcov_abi.h"
#define P(name) printf("%s %llu\\n", #name, (unsigned long long)(name));
int main(void) {
@BODY@
    return 0;
}
"""


def test_kcov_abi_h_is_the_spec(tmp_path: Path) -> None:
    """runtime/kcov_abi.h, compiled, has the spec's numbers, capacities and
    mode values: the header, kcov.abi and the tables cannot drift apart."""
    want = dict(T.NUMBERS)
    want.update({
        "KCOV_FREEBSD_MAXENTRIES": T.MAX_ENTRIES[T.FREEBSD],
        "KCOV_NETBSD_MAX_ENTRIES": T.MAX_ENTRIES[T.NETBSD],
        "KCOV_OPENBSD_BUF_MAX_NMEMB": T.MAX_ENTRIES[T.OPENBSD],
        "KCOV_FREEBSD_MODE_TRACE_PC": T.MODES[T.FREEBSD]["PC"],
        "KCOV_FREEBSD_MODE_TRACE_CMP": T.MODES[T.FREEBSD]["CMP"],
        "KCOV_LINUX_TRACE_PC": T.MODES[T.LINUX]["PC"],
        "KCOV_LINUX_TRACE_CMP": T.MODES[T.LINUX]["CMP"],
        "KCOV_LINUX_ENOTSUPP": T.ENOTSUPP,
        "KCOV_BSD_MODE_NONE": T.MODES[T.NETBSD]["NONE"],
        "KCOV_BSD_MODE_TRACE_PC": T.MODES[T.NETBSD]["PC"],
        "KCOV_BSD_MODE_TRACE_CMP": T.MODES[T.NETBSD]["CMP"],
    })
    src = tmp_path / "abi.c"
    src.write_text(HEADER_PROGRAM.replace("@BODY@", "\n".join(f"    P({n})" for n in want)))
    exe = tmp_path / "abi"
    subprocess.run(["cc", "-I", str(REPO / "runtime"), str(src), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = {n: int(v) for n, v in (line.split() for line in out.splitlines())}
    assert got == want


def test_header_defines_are_all_checked(abi_h: dict[str, int]) -> None:
    """Every command number kcov_abi.h defines is one the tables know."""
    cmds = {n: v for n, v in abi_h.items()
            if n.startswith(("KCOV_FREEBSD_KIO", "KCOV_LINUX_", "KCOV_NETBSD_IOC_",
                             "KCOV_OPENBSD_KIO")) and v > 0xFFF}
    assert cmds == {n: T.NUMBERS[n] for n in cmds}
    assert set(cmds) == set(T.NUMBERS)


# --- mmap rules (tests/support/abi_tables.py) -----------------------------------

@pytest.mark.parametrize("abi,pages,length,prot,flags,off,err", T.MMAP_ROWS)
def test_mmap_rules(page: int, abi: str, pages: int | None, length: int,
                    prot: int, flags: int, off: int, err: int) -> None:
    with open_hosted(abi) as k:
        if pages is not None:
            arg, keep = kcov.spec(abi).encode(pages * page // 8, ctypes.c_uint64)
            k.ioctl(kcov.spec(abi).setbufsize, arg)
            del keep
        if err == 0:
            m = k.mmap(length * page, prot, flags, off * page)
            assert m.length == length * page
            assert m.writable == bool(prot & mmap.PROT_WRITE)
        else:
            with pytest.raises(kcov.KcovError) as ei:
                k.mmap(length * page, prot, flags, off * page)
            assert ei.value.errno == err
