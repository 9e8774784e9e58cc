"""Every invalid call in every state, per ABI, with the exact errno of the
reference kernel (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3).

Calls go through Kcov.ioctl with the raw numbers of runtime/kcov_abi.h;
NetBSD and OpenBSD take pointers, so their arguments are the addresses of
ctypes integers.  Each row: ABI, starting state, command, argument, errno.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

import kcov
from kcov import Mode

NULL = object()  # a NULL pointer argument
UNKNOWN = 0x2000637F  # _IO('c', 0x7f): no ABI's command

# Per ABI: (setbufsize, enable, disable) names in kcov_abi.h, the argument
# types of the pointer ABIs, and the PC mode number.
ABIS: dict[str, dict[str, Any]] = {
    "freebsd": dict(sb="KCOV_FREEBSD_KIOSETBUFSIZE", en="KCOV_FREEBSD_KIOENABLE",
                    di="KCOV_FREEBSD_KIODISABLE", ptr=False, pc=0),
    "linux": dict(sb="KCOV_LINUX_INIT_TRACE", en="KCOV_LINUX_ENABLE",
                  di="KCOV_LINUX_DISABLE", ptr=False, pc=0),
    "netbsd": dict(sb="KCOV_NETBSD_IOC_SETBUFSIZE", en="KCOV_NETBSD_IOC_ENABLE",
                   di="KCOV_NETBSD_IOC_DISABLE", ptr=True, pc=1),
    "openbsd": dict(sb="KCOV_OPENBSD_KIOSETBUFSIZE", en="KCOV_OPENBSD_KIOENABLE",
                    di="KCOV_OPENBSD_KIODISABLE", ptr=True, pc=1),
}


@dataclass(frozen=True)
class Row:
    abi: str
    state: str  # open | ready | running | second_fd | running_elsewhere
    cmd: str  # "sb", "en", "di", "unknown", or a kcov_abi.h name
    arg: Any
    err: int
    why: str

    def __str__(self) -> str:
        return f"{self.abi}-{self.state}-{self.why}"


R = Row
TABLE = [
    # FreeBSD, bsd-kcov.md §1.6
    R("freebsd", "open", "sb", 0, E.EINVAL, "bufsize0"),
    R("freebsd", "open", "sb", 1, E.EINVAL, "bufsize1"),
    R("freebsd", "open", "sb", (1 << 24) + 1, E.EINVAL, "bufsize_over_max"),
    R("freebsd", "open", "en", 0, E.EBUSY, "enable_before_size"),
    R("freebsd", "open", "di", 0, E.EINVAL, "disable_unsized"),
    R("freebsd", "open", "unknown", 0, E.EINVAL, "unknown"),
    R("freebsd", "ready", "sb", 512, E.EBUSY, "bufsize_twice"),
    R("freebsd", "ready", "en", 2, E.EINVAL, "bad_mode"),
    R("freebsd", "ready", "en", 0xFFFFFFFF, E.EINVAL, "mode_minus1"),
    R("freebsd", "ready", "di", 0, E.EINVAL, "disable_not_running"),
    R("freebsd", "ready", "unknown", 0, E.EINVAL, "unknown_ready"),
    R("freebsd", "running", "en", 0, E.EBUSY, "enable_twice"),
    R("freebsd", "running", "en", 1, E.EBUSY, "enable_cmp_while_running"),
    R("freebsd", "running", "sb", 512, E.EBUSY, "bufsize_running"),
    R("freebsd", "running", "KCOV_LINUX_ENABLE", 0, E.ENOTTY, "other_abi"),
    R("freebsd", "second_fd", "en", 0, E.EINVAL, "second_fd_same_thread"),
    R("freebsd", "running_elsewhere", "di", 0, E.EINVAL, "disable_not_owner"),
    R("freebsd", "running_elsewhere", "en", 0, E.EBUSY, "enable_owned_elsewhere"),
    # Linux, linux-kcov.md §2.3
    R("linux", "open", "sb", 0, E.EINVAL, "init0"),
    R("linux", "open", "sb", 1, E.EINVAL, "init1"),
    R("linux", "open", "sb", (0x7FFFFFFF // 8) + 1, E.EINVAL, "init_over_max"),
    R("linux", "open", "en", 0, E.EINVAL, "enable_before_init"),
    R("linux", "open", "di", 0, E.EINVAL, "disable_uninit"),
    R("linux", "open", "KCOV_LINUX_INIT_TRACE32", 512, E.ENOTTY, "init_trace32"),
    R("linux", "open", "unknown", 0, E.ENOTTY, "unknown"),
    R("linux", "ready", "sb", 512, E.EBUSY, "init_twice"),
    R("linux", "ready", "sb", 1, E.EINVAL, "init1_after_init"),
    R("linux", "ready", "en", 2, E.EINVAL, "mode2"),
    R("linux", "ready", "di", 0, E.EINVAL, "disable_not_enabled"),
    R("linux", "running", "en", 0, E.EINVAL, "enable_twice"),
    R("linux", "running", "di", 1, E.EINVAL, "disable_arg_nonzero"),
    R("linux", "running", "unknown", 0, E.ENOTTY, "unknown_running"),
    R("linux", "second_fd", "en", 0, E.EBUSY, "second_fd_same_thread"),
    R("linux", "running_elsewhere", "en", 0, E.EINVAL, "enable_owned_elsewhere"),
    R("linux", "running_elsewhere", "di", 0, E.EINVAL, "disable_not_owner"),
    # NetBSD, bsd-kcov.md §2.2 (pointer arguments)
    R("netbsd", "open", "sb", 1, E.EINVAL, "bufsize1"),
    R("netbsd", "open", "sb", (256 << 10) + 1, E.EINVAL, "bufsize_over_max"),
    R("netbsd", "open", "sb", NULL, E.EFAULT, "bufsize_null"),
    R("netbsd", "open", "en", 0, E.ENOBUFS, "enable_none_before_size"),
    R("netbsd", "open", "en", 1, E.ENOBUFS, "enable_pc_before_size"),
    R("netbsd", "open", "en", 3, E.EINVAL, "mode3"),
    R("netbsd", "open", "en", NULL, E.EFAULT, "enable_null"),
    R("netbsd", "open", "di", 0, E.ENOENT, "disable_unsized"),
    R("netbsd", "open", "unknown", 0, E.EINVAL, "unknown"),
    R("netbsd", "ready", "sb", 512, E.EEXIST, "bufsize_twice"),
    R("netbsd", "ready", "sb", 1, E.EINVAL, "bufsize1_after_size"),
    R("netbsd", "ready", "di", 0, E.ENOENT, "disable_not_enabled"),
    R("netbsd", "ready", "KCOV_NETBSD_IOC_REMOTE_ATTACH", bytes(16), E.ENOENT,
      "remote_attach_unregistered"),
    R("netbsd", "running", "en", 1, E.EBUSY, "enable_twice"),
    R("netbsd", "running", "sb", 512, E.EBUSY, "bufsize_running"),
    R("netbsd", "second_fd", "en", 1, E.EBUSY, "second_fd_same_thread"),
    R("netbsd", "running_elsewhere", "di", 0, E.ENOENT, "disable_not_owner"),
    R("netbsd", "running_elsewhere", "en", 1, E.EBUSY, "enable_owned_elsewhere"),
    # OpenBSD, bsd-kcov.md §3.2 (pointer arguments)
    R("openbsd", "open", "sb", 0, E.EINVAL, "bufsize0"),
    R("openbsd", "open", "sb", (512 << 10) + 1, E.EINVAL, "bufsize_over_max"),
    R("openbsd", "open", "sb", NULL, E.EFAULT, "bufsize_null"),
    R("openbsd", "open", "en", 1, E.ENXIO, "enable_before_size"),
    R("openbsd", "open", "di", 0, E.EPERM, "disable_unsized"),
    R("openbsd", "open", "unknown", 0, E.ENOTTY, "unknown"),
    R("openbsd", "ready", "sb", 512, E.EBUSY, "bufsize_twice"),
    R("openbsd", "ready", "en", 0, E.EINVAL, "mode_none"),
    R("openbsd", "ready", "en", 3, E.EINVAL, "mode3"),
    R("openbsd", "ready", "di", 0, E.EPERM, "disable_not_owner"),
    R("openbsd", "running", "en", 1, E.EBUSY, "enable_twice"),
    R("openbsd", "running", "sb", 512, E.EBUSY, "bufsize_running"),
    R("openbsd", "second_fd", "en", 1, E.EBUSY, "second_fd_same_thread"),
    R("openbsd", "running_elsewhere", "en", 1, E.ENXIO, "enable_owned_elsewhere"),
    R("openbsd", "running_elsewhere", "di", 0, E.EPERM, "disable_not_owner"),
]

ERROR_CLASS = {
    E.EBUSY: kcov.KcovBusyError, E.EEXIST: kcov.KcovBusyError,
    E.EINVAL: kcov.KcovInvalidError, E.ENOENT: kcov.KcovInvalidError,
    E.ENXIO: kcov.KcovInvalidError, E.EPERM: kcov.KcovInvalidError,
    E.ENOTTY: kcov.KcovUnsupportedError,
}


class Caller:
    """Raw ioctls of one ABI, with pointer arguments where the ABI wants them."""

    def __init__(self, abi: str, nums: dict[str, int]) -> None:
        self.abi = abi
        self.d = ABIS[abi]
        self.nums = nums
        self.keep: list[Any] = []

    def cmd(self, name: str) -> int:
        if name == "unknown":
            return UNKNOWN
        return self.nums[self.d[name]] if name in ("sb", "en", "di") else self.nums[name]

    def arg(self, name: str, value: Any) -> int:
        if value is NULL:
            return 0
        if not self.d["ptr"] or name == "di":
            return int(value)
        if isinstance(value, bytes):
            box: Any = ctypes.create_string_buffer(value, len(value))
        elif name == "en":
            box = ctypes.c_int(value)
        else:
            box = ctypes.c_uint64(value)
        self.keep.append(box)
        return ctypes.addressof(box)

    def call(self, k: kcov.Kcov, name: str, value: Any) -> None:
        k.ioctl(self.cmd(name), self.arg(name, value))


class Elsewhere:
    """A thread that enables a descriptor and holds it until released."""

    def __init__(self, c: Caller, k: kcov.Kcov) -> None:
        self.go = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

        def body() -> None:
            try:
                c.call(k, "en", c.d["pc"])
            except BaseException as e:  # noqa: BLE001 - reported below
                self.error = e
            self.ready.set()
            self.go.wait(30)

        self.t = threading.Thread(target=body)
        self.t.start()
        assert self.ready.wait(30)
        assert self.error is None, self.error

    def release(self) -> None:
        self.go.set()
        self.t.join(30)


@pytest.fixture
def caller_for(abi_h: dict[str, int]) -> Iterator[Any]:
    made: list[kcov.Kcov] = []
    extras: list[Elsewhere] = []

    def setup(abi: str, state: str) -> tuple[Caller, kcov.Kcov]:
        c = Caller(abi, abi_h)
        k = kcov.open("hosted", abi=abi, entries=None)
        made.append(k)
        if state != "open":
            c.call(k, "sb", 512)
        if state == "running":
            c.call(k, "en", c.d["pc"])
        elif state == "second_fd":
            other = kcov.open("hosted", abi=abi, entries=None)
            made.append(other)
            c.call(other, "sb", 512)
            c.call(other, "en", c.d["pc"])
        elif state == "running_elsewhere":
            extras.append(Elsewhere(c, k))
        return c, k

    yield setup
    for x in extras:
        x.release()
    for k in reversed(made):
        k.close()


@pytest.mark.parametrize("row", TABLE, ids=str)
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


@pytest.mark.parametrize("abi", list(ABIS))
def test_valid_sequence(abi_h: dict[str, int], abi: str) -> None:
    c = Caller(abi, abi_h)
    with kcov.open("hosted", abi=abi, entries=None) as k:
        c.call(k, "sb", 512)
        assert k.state == kcov.State.READY
        for _ in range(2):
            c.call(k, "en", c.d["pc"])
            assert k.state == kcov.State.RUNNING
            c.call(k, "di", 0)
            assert k.state == kcov.State.READY


def test_openbsd_bufsize1_ok(abi_h: dict[str, int]) -> None:
    c = Caller("openbsd", abi_h)
    with kcov.open("hosted", abi="openbsd", entries=None) as k:
        c.call(k, "sb", 1)
        assert k.state == kcov.State.READY and k.entries == 1


def test_netbsd_mode_none_records_nothing(lib: Any) -> None:
    with kcov.open("hosted", abi="netbsd", entries=512) as k:
        with k.trace(Mode.NONE):
            lib.work(10)
            assert k.count == 0
        assert k.mode == Mode.NONE


def test_abi_numbers_match_header(abi_h: dict[str, int]) -> None:
    for abi, d in ABIS.items():
        s = kcov.spec(abi)
        assert (s.setbufsize, s.enable, s.disable) == \
            (abi_h[d["sb"]], abi_h[d["en"]], abi_h[d["di"]])
        assert s.mode_value(Mode.PC) == d["pc"]


# --- mmap rules ---------------------------------------------------------------

RW = mmap.PROT_READ | mmap.PROT_WRITE
RO = mmap.PROT_READ
RWX = RW | mmap.PROT_EXEC
SH, PRIV = mmap.MAP_SHARED, mmap.MAP_PRIVATE

# (abi, entries in pages or None for unsized, length in pages, prot, flags,
#  offset in pages, errno or 0)
MMAP = [
    ("freebsd", None, 1, RW, SH, 0, E.EINVAL),
    ("freebsd", 1, 1, RW, SH, 0, 0),
    ("freebsd", 1, 1, RW, SH, 1, 0),  # the offset is ignored
    ("freebsd", 1, 1, RW, PRIV, 0, E.EINVAL),
    ("freebsd", 1, 1, RO, SH, 0, E.EINVAL),
    ("freebsd", 1, 1, RWX, SH, 0, E.EINVAL),
    ("freebsd", 2, 1, RW, SH, 0, E.EINVAL),
    ("freebsd", 2, 3, RW, SH, 0, E.EINVAL),
    ("linux", None, 1, RW, SH, 0, E.EINVAL),
    ("linux", 1, 1, RW, SH, 0, 0),
    ("linux", 1, 1, RO, SH, 0, 0),
    ("linux", 2, 2, RW, SH, 1, E.EINVAL),
    ("linux", 2, 1, RW, SH, 0, E.EINVAL),
    ("netbsd", None, 1, RW, SH, 0, E.ENOMEM),
    ("openbsd", None, 1, RW, SH, 0, E.EINVAL),
    ("netbsd", 1, 1, RW, SH, 0, 0),
    ("netbsd", 1, 1, RW, PRIV, 0, 0),
    ("netbsd", 1, 1, RO | mmap.PROT_EXEC, SH, 0, E.EACCES),
    ("netbsd", 1, 2, RW, SH, 0, E.ENOMEM),
    ("netbsd", 2, 1, RW, SH, 1, 0),
    ("netbsd", 2, 2, RW, SH, 1, E.ENOMEM),
    ("openbsd", 2, 2, RW, SH, 0, 0),
    ("openbsd", 2, 3, RW, SH, 0, E.EINVAL),
]


@pytest.mark.parametrize("abi,pages,length,prot,flags,off,err", MMAP)
def test_mmap_rules(page: int, abi: str, pages: int | None, length: int,
                    prot: int, flags: int, off: int, err: int) -> None:
    with kcov.open("hosted", abi=abi, entries=None) as k:
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
