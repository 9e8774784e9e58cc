"""Every invalid call in every state, per ABI, with the exact errno of the
reference kernel (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3), on
the hosted device.

The cases are tests/support/errno_cases.py's, run by kcov.ko's guest suite
too (tests/kmod/guest/test_kmod_errno.py), on the rows, mmap rules and
ioctl numbers of tests/support/abi_tables.py; conftest.py's `target` is
the hosted device.  This file also checks that kcov.abi and
runtime/kcov_abi.h carry the spec's encodings.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import kcov
from tests.support import abi_tables as T
from tests.support.errno_cases import *  # noqa: F401,F403 - the cases
from pybind_helpers import REPO

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
