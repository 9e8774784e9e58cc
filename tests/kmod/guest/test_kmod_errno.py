"""Every invalid call in every state, per ABI, against kcov.ko: the rows of
the hosted errno and mmap tables (tests/pybind/test_errno_table.py, loaded
from there so both devices answer to one table), plus the valid sequences.

FreeBSD, NetBSD and OpenBSD go to /dev/kcov with the module's personality
set to that ABI; Linux goes to /sys/kernel/debug/kcov.
"""
from __future__ import annotations

import ctypes
import errno as E
import importlib.util
import mmap
import re
import sys
from types import ModuleType
from typing import Any, Iterator

import pytest

import kcov
import kmod_guest as H
from kcov import Mode

pytestmark = pytest.mark.vm


def _load_hosted_table() -> ModuleType:
    path = H.REPO / "tests" / "pybind" / "test_errno_table.py"
    spec = importlib.util.spec_from_file_location("kmod_hosted_errno_table", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


T = _load_hosted_table()


def _abi_numbers() -> dict[str, int]:
    """Every numeric #define of runtime/kcov_abi.h."""
    text = (H.REPO / "runtime" / "kcov_abi.h").read_text()
    out = {}
    for m in re.finditer(r"^#define\s+(KCOV_\w+)\s+\(?(0x[0-9a-fA-F]+|\d+)(?:UL?)?\b(?:\s*<<\s*(\d+))?",
                         text, re.M):
        v = int(m.group(2), 0)
        if m.group(3):
            v <<= int(m.group(3))
        out[m.group(1)] = v
    return out


NUMS = _abi_numbers()


@pytest.fixture
def caller_for() -> Iterator[Any]:
    made: list[kcov.Kcov] = []
    extras: list[Any] = []

    def setup(abi: str, state: str) -> tuple[Any, kcov.Kcov]:
        c = T.Caller(abi, NUMS)
        k = H.open_dev(abi, None)
        made.append(k)
        if state != "open":
            c.call(k, "sb", 512)
        if state == "running":
            c.call(k, "en", c.d["pc"])
        elif state == "second_fd":
            other = H.open_dev(abi, None)
            made.append(other)
            c.call(other, "sb", 512)
            c.call(other, "en", c.d["pc"])
        elif state == "running_elsewhere":
            extras.append(T.Elsewhere(c, k))
        return c, k

    yield setup
    for x in extras:
        x.go.set()
        H.join_os(x.t)
    for k in reversed(made):
        k.close()


@pytest.mark.parametrize("row", T.TABLE, ids=str)
def test_invalid_call(caller_for: Any, row: Any) -> None:
    c, k = caller_for(row.abi, row.state)
    with pytest.raises(kcov.KcovError) as ei:
        c.call(k, row.cmd, row.arg)
    assert ei.value.errno == row.err, f"{row}: got {E.errorcode.get(ei.value.errno)}"


@pytest.mark.parametrize("abi", list(T.ABIS))
def test_valid_sequence(abi: str) -> None:
    c = T.Caller(abi, NUMS)
    with H.open_dev(abi, None) as k:
        c.call(k, "sb", 512)
        m = k.mmap(H.PAGE)
        for _ in range(2):
            c.call(k, "en", c.d["pc"])
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
            k.ioctl(NUMS["KCOV_LINUX_REMOTE_ENABLE"], ctypes.addressof(arg))
        assert ei.value.errno == NUMS["KCOV_LINUX_ENOTSUPP"]
        with pytest.raises(kcov.KcovError) as ei:
            k.ioctl(NUMS["KCOV_LINUX_REMOTE_ENABLE"], 0)
        assert ei.value.errno == E.EFAULT


def test_openbsd_bufsize1_ok() -> None:
    c = T.Caller("openbsd", NUMS)
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


@pytest.mark.parametrize("abi,pages,length,prot,flags,off,err", T.MMAP)
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
