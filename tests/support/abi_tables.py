"""The kcov ABI tables every provider's tests share: ioctl numbers, the
errnos each ABI documents, which ABI answers a command, the invalid-call
errno rows and the mmap rows.

Written once, from the spec (/work/shared/spec, mirrored in the section
numbers cited per table), and run against the hosted device
(tests/pybind, tests/reliability) and kcov.ko in the VM (tests/kmod/guest,
tests/kstress/guest).  Each suite supplies only a fixture that opens its
provider.  kcov.abi and runtime/kcov_abi.h are checked against these
encodings by tests/pybind/test_errno_table.py, so neither can drift.
"""
from __future__ import annotations

import ctypes
import errno as E
import mmap
import threading
from dataclasses import dataclass
from typing import Any

FREEBSD, LINUX, NETBSD, OPENBSD = "freebsd", "linux", "netbsd", "openbsd"
ABIS = (FREEBSD, LINUX, NETBSD, OPENBSD)
ENOTSUPP = 524  # Linux's kernel-internal ENOTSUPP leaks to user space as 524


# --- ioctl encodings ------------------------------------------------------------
# BSD sys/ioccom.h (bsd-kcov.md, quick comparison table: "All ioctl numbers
# were computed from each OS's sys/ioccom.h"): IOC_VOID, IOC_IN, length in bits 16..28.

BSD_IOC_VOID, BSD_IOC_OUT, BSD_IOC_IN = 0x20000000, 0x40000000, 0x80000000
BSD_IOCPARM_MASK = 0x1FFF


def bsd_ioc(inout: int, group: str, num: int, length: int) -> int:
    return inout | ((length & BSD_IOCPARM_MASK) << 16) | (ord(group) << 8) | num


def bsd_io(group: str, num: int) -> int:
    return bsd_ioc(BSD_IOC_VOID, group, num, 0)


def bsd_iow(group: str, num: int, size: int) -> int:
    return bsd_ioc(BSD_IOC_IN, group, num, size)


def bsd_iowint(group: str, num: int) -> int:
    """FreeBSD's _IOWINT: IOC_VOID with sizeof(int) (bsd-kcov.md §1.1)."""
    return bsd_ioc(BSD_IOC_VOID, group, num, 4)


# Linux include/uapi/asm-generic/ioctl.h (linux-kcov.md §1.2).
def linux_ioc(direction: int, group: str, num: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord(group) << 8) | num


def linux_io(group: str, num: int) -> int:
    return linux_ioc(0, group, num, 0)


def linux_iow(group: str, num: int, size: int) -> int:
    return linux_ioc(1, group, num, size)


def linux_ior(group: str, num: int, size: int) -> int:
    return linux_ioc(2, group, num, size)


# Command numbers on LP64, named as in runtime/kcov_abi.h
# (bsd-kcov.md §1.1, §2.1, §3.1 and the quick comparison table; linux-kcov.md §1.2).
NUMBERS: dict[str, int] = {
    "KCOV_FREEBSD_KIOENABLE": bsd_iowint("c", 2),
    "KCOV_FREEBSD_KIODISABLE": bsd_io("c", 3),
    "KCOV_FREEBSD_KIOSETBUFSIZE": bsd_iowint("c", 4),
    "KCOV_LINUX_INIT_TRACE": linux_ior("c", 1, 8),  # unsigned long
    "KCOV_LINUX_INIT_TRACE32": linux_ior("c", 1, 4),  # the ILP32 number
    "KCOV_LINUX_ENABLE": linux_io("c", 100),
    "KCOV_LINUX_DISABLE": linux_io("c", 101),
    "KCOV_LINUX_REMOTE_ENABLE": linux_iow("c", 102, 24),  # struct kcov_remote_arg
    "KCOV_NETBSD_IOC_SETBUFSIZE": bsd_iow("K", 1, 8),  # uint64_t
    "KCOV_NETBSD_IOC_ENABLE": bsd_iow("K", 2, 4),  # int
    "KCOV_NETBSD_IOC_DISABLE": bsd_io("K", 3),
    "KCOV_NETBSD_IOC_REMOTE_ATTACH": bsd_iow("K", 10, 16),  # {u64 subsystem; u64 id}
    "KCOV_NETBSD_IOC_REMOTE_DETACH": bsd_io("K", 11),
    "KCOV_OPENBSD_KIOSETBUFSIZE": bsd_iow("K", 1, 8),  # unsigned long
    "KCOV_OPENBSD_KIOENABLE": bsd_iow("K", 2, 4),  # int
    "KCOV_OPENBSD_KIODISABLE": bsd_io("K", 3),
    "KCOV_OPENBSD_KIOREMOTEATTACH": bsd_iow("K", 4, 8),  # sizeof a pointer
}
N = NUMBERS
UNKNOWN = bsd_io("c", 0x7F)  # no ABI's command

# Per ABI: the set-size, enable and disable commands, whether integer
# arguments travel through a pointer, and the mode numbers
# (bsd-kcov.md §1.1, §2.1, §3.1; linux-kcov.md §1.2, §1.3).
SETBUFSIZE = {FREEBSD: N["KCOV_FREEBSD_KIOSETBUFSIZE"], LINUX: N["KCOV_LINUX_INIT_TRACE"],
              NETBSD: N["KCOV_NETBSD_IOC_SETBUFSIZE"], OPENBSD: N["KCOV_OPENBSD_KIOSETBUFSIZE"]}
ENABLE = {FREEBSD: N["KCOV_FREEBSD_KIOENABLE"], LINUX: N["KCOV_LINUX_ENABLE"],
          NETBSD: N["KCOV_NETBSD_IOC_ENABLE"], OPENBSD: N["KCOV_OPENBSD_KIOENABLE"]}
DISABLE = {FREEBSD: N["KCOV_FREEBSD_KIODISABLE"], LINUX: N["KCOV_LINUX_DISABLE"],
           NETBSD: N["KCOV_NETBSD_IOC_DISABLE"], OPENBSD: N["KCOV_OPENBSD_KIODISABLE"]}
BY_POINTER = {FREEBSD: False, LINUX: False, NETBSD: True, OPENBSD: True}
MODES: dict[str, dict[str, int]] = {
    FREEBSD: {"PC": 0, "CMP": 1}, LINUX: {"PC": 0, "CMP": 1},
    NETBSD: {"NONE": 0, "PC": 1, "CMP": 2}, OPENBSD: {"PC": 1, "CMP": 2},
}
# The other commands each ABI defines on LP64.  KCOV_INIT_TRACE32 is the
# ILP32 number: on LP64 it is an unknown command (linux-kcov.md §1.2, §2.3).
EXTRA = {FREEBSD: (), LINUX: (N["KCOV_LINUX_REMOTE_ENABLE"],),
         NETBSD: (N["KCOV_NETBSD_IOC_REMOTE_ATTACH"], N["KCOV_NETBSD_IOC_REMOTE_DETACH"]),
         OPENBSD: (N["KCOV_OPENBSD_KIOREMOTEATTACH"],)}
ALL_CMDS = tuple(sorted(set(NUMBERS.values())))
# The 'K' group numbers NetBSD and OpenBSD share.
SHARED_K = frozenset({SETBUFSIZE[NETBSD], ENABLE[NETBSD], DISABLE[NETBSD]})
# Capacities in entries (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3).
MAX_ENTRIES = {FREEBSD: 1 << 24, LINUX: 0x7FFFFFFF // 8, NETBSD: 256 << 10, OPENBSD: 512 << 10}


# --- which ABI answers, and with what --------------------------------------------
# What each ABI's driver may answer to one of its commands, in some state
# (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3, §2.9: EEXIST for a
# remote handle registered twice).  EFAULT also where a BSD kernel copies a
# pointer argument in before its driver runs (IOC_IN).
DOCUMENTED = {
    FREEBSD: frozenset({E.EINVAL, E.EBUSY, E.ENOMEM}),
    LINUX: frozenset({E.EINVAL, E.EBUSY, E.ENOMEM, E.EFAULT, E.EEXIST, ENOTSUPP}),
    NETBSD: frozenset({E.EINVAL, E.EBUSY, E.EEXIST, E.ENOBUFS, E.ENOENT, E.EFAULT, E.ENOMEM}),
    OPENBSD: frozenset({E.EINVAL, E.EBUSY, E.ENXIO, E.EPERM, E.EFAULT, E.ENOMEM, E.EOPNOTSUPP}),
}
# What an unknown command gets (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3).
UNKNOWN_ERRNO = {FREEBSD: E.EINVAL, LINUX: E.ENOTTY, NETBSD: E.EINVAL, OPENBSD: E.ENOTTY}
MMAP_ERRNOS = frozenset({E.EINVAL, E.EACCES, E.ENOMEM})


def cmd_abi(cmd: int, sized: str | None, personality: str) -> str | None:
    """The ABI whose driver handles `cmd` on a descriptor sized in `sized`
    (None: not sized) of a node with `personality` (docs/compatibility.md:
    the device serves every command set; NetBSD and OpenBSD share three
    numbers, which belong to the descriptor's ABI, else to the personality,
    NetBSD's unless the personality is OpenBSD)."""
    if cmd in SHARED_K:
        if sized in (NETBSD, OPENBSD):
            return sized
        return OPENBSD if personality == OPENBSD else NETBSD
    for abi in ABIS:
        if cmd in (SETBUFSIZE[abi], ENABLE[abi], DISABLE[abi], *EXTRA[abi]):
            return abi
    return None


def copies_in(abi: str, cmd: int) -> bool:
    """A BSD kernel copies an IOC_IN argument in before any driver runs."""
    return abi in (NETBSD, OPENBSD) and bool(cmd & BSD_IOC_IN) and bool((cmd >> 16) & BSD_IOCPARM_MASK)


def expected_ioctl(cmd: int, sized: str | None, personality: str) -> tuple[str | None, set[int] | None]:
    """(the ABI that answers, the exact set of errnos allowed besides 0), or
    (abi, None) for "0 or any errno that ABI documents"."""
    abi = cmd_abi(cmd, sized, personality)
    if abi is None:
        # Unknown command: the descriptor's ABI decides, else the node's.
        return None, {UNKNOWN_ERRNO[sized or personality]}
    if sized is not None and sized != abi:
        # A descriptor speaks only the ABI that sized it: exactly ENOTTY,
        # after EFAULT for a bad NetBSD/OpenBSD pointer (docs/compatibility.md).
        return abi, {E.ENOTTY, E.EFAULT} if copies_in(abi, cmd) else {E.ENOTTY}
    return abi, None


# --- invalid calls: every state, exact errno ---------------------------------------
NULL = object()  # a NULL pointer argument


@dataclass(frozen=True)
class Row:
    abi: str
    state: str  # open | ready | running | second_fd | running_elsewhere
    cmd: str  # "sb", "en", "di", "unknown", or a NUMBERS name
    arg: Any
    err: int
    why: str

    def __str__(self) -> str:
        return f"{self.abi}-{self.state}-{self.why}"


R = Row
# bsd-kcov.md §1.6 (FreeBSD), §2.2 (NetBSD), §3.2 (OpenBSD); linux-kcov.md §2.3.
ERRNO_ROWS = [
    R(FREEBSD, "open", "sb", 0, E.EINVAL, "bufsize0"),
    R(FREEBSD, "open", "sb", 1, E.EINVAL, "bufsize1"),
    R(FREEBSD, "open", "sb", MAX_ENTRIES[FREEBSD] + 1, E.EINVAL, "bufsize_over_max"),
    R(FREEBSD, "open", "en", 0, E.EBUSY, "enable_before_size"),
    R(FREEBSD, "open", "di", 0, E.EINVAL, "disable_unsized"),
    R(FREEBSD, "open", "unknown", 0, E.EINVAL, "unknown"),
    R(FREEBSD, "ready", "sb", 512, E.EBUSY, "bufsize_twice"),
    R(FREEBSD, "ready", "en", 2, E.EINVAL, "bad_mode"),
    R(FREEBSD, "ready", "en", 0xFFFFFFFF, E.EINVAL, "mode_minus1"),
    R(FREEBSD, "ready", "di", 0, E.EINVAL, "disable_not_running"),
    R(FREEBSD, "ready", "unknown", 0, E.EINVAL, "unknown_ready"),
    R(FREEBSD, "running", "en", 0, E.EBUSY, "enable_twice"),
    R(FREEBSD, "running", "en", 1, E.EBUSY, "enable_cmp_while_running"),
    R(FREEBSD, "running", "sb", 512, E.EBUSY, "bufsize_running"),
    R(FREEBSD, "running", "KCOV_LINUX_ENABLE", 0, E.ENOTTY, "other_abi"),
    R(FREEBSD, "second_fd", "en", 0, E.EINVAL, "second_fd_same_thread"),
    R(FREEBSD, "running_elsewhere", "di", 0, E.EINVAL, "disable_not_owner"),
    R(FREEBSD, "running_elsewhere", "en", 0, E.EBUSY, "enable_owned_elsewhere"),
    R(LINUX, "open", "sb", 0, E.EINVAL, "init0"),
    R(LINUX, "open", "sb", 1, E.EINVAL, "init1"),
    R(LINUX, "open", "sb", MAX_ENTRIES[LINUX] + 1, E.EINVAL, "init_over_max"),
    R(LINUX, "open", "en", 0, E.EINVAL, "enable_before_init"),
    R(LINUX, "open", "di", 0, E.EINVAL, "disable_uninit"),
    R(LINUX, "open", "KCOV_LINUX_INIT_TRACE32", 512, E.ENOTTY, "init_trace32"),
    R(LINUX, "open", "unknown", 0, E.ENOTTY, "unknown"),
    R(LINUX, "ready", "sb", 512, E.EBUSY, "init_twice"),
    R(LINUX, "ready", "sb", 1, E.EINVAL, "init1_after_init"),
    R(LINUX, "ready", "en", 2, E.EINVAL, "mode2"),
    R(LINUX, "ready", "di", 0, E.EINVAL, "disable_not_enabled"),
    R(LINUX, "running", "en", 0, E.EINVAL, "enable_twice"),
    R(LINUX, "running", "di", 1, E.EINVAL, "disable_arg_nonzero"),
    R(LINUX, "running", "unknown", 0, E.ENOTTY, "unknown_running"),
    R(LINUX, "second_fd", "en", 0, E.EBUSY, "second_fd_same_thread"),
    R(LINUX, "running_elsewhere", "en", 0, E.EINVAL, "enable_owned_elsewhere"),
    R(LINUX, "running_elsewhere", "di", 0, E.EINVAL, "disable_not_owner"),
    R(NETBSD, "open", "sb", 1, E.EINVAL, "bufsize1"),
    R(NETBSD, "open", "sb", MAX_ENTRIES[NETBSD] + 1, E.EINVAL, "bufsize_over_max"),
    R(NETBSD, "open", "sb", NULL, E.EFAULT, "bufsize_null"),
    R(NETBSD, "open", "en", 0, E.ENOBUFS, "enable_none_before_size"),
    R(NETBSD, "open", "en", 1, E.ENOBUFS, "enable_pc_before_size"),
    R(NETBSD, "open", "en", 3, E.EINVAL, "mode3"),
    R(NETBSD, "open", "en", NULL, E.EFAULT, "enable_null"),
    R(NETBSD, "open", "di", 0, E.ENOENT, "disable_unsized"),
    R(NETBSD, "open", "unknown", 0, E.EINVAL, "unknown"),
    R(NETBSD, "ready", "sb", 512, E.EEXIST, "bufsize_twice"),
    R(NETBSD, "ready", "sb", 1, E.EINVAL, "bufsize1_after_size"),
    R(NETBSD, "ready", "di", 0, E.ENOENT, "disable_not_enabled"),
    R(NETBSD, "ready", "KCOV_NETBSD_IOC_REMOTE_ATTACH", bytes(16), E.ENOENT,
      "remote_attach_unregistered"),
    R(NETBSD, "running", "en", 1, E.EBUSY, "enable_twice"),
    R(NETBSD, "running", "sb", 512, E.EBUSY, "bufsize_running"),
    R(NETBSD, "second_fd", "en", 1, E.EBUSY, "second_fd_same_thread"),
    R(NETBSD, "running_elsewhere", "di", 0, E.ENOENT, "disable_not_owner"),
    R(NETBSD, "running_elsewhere", "en", 1, E.EBUSY, "enable_owned_elsewhere"),
    R(OPENBSD, "open", "sb", 0, E.EINVAL, "bufsize0"),
    R(OPENBSD, "open", "sb", MAX_ENTRIES[OPENBSD] + 1, E.EINVAL, "bufsize_over_max"),
    R(OPENBSD, "open", "sb", NULL, E.EFAULT, "bufsize_null"),
    R(OPENBSD, "open", "en", 1, E.ENXIO, "enable_before_size"),
    R(OPENBSD, "open", "di", 0, E.EPERM, "disable_unsized"),
    R(OPENBSD, "open", "unknown", 0, E.ENOTTY, "unknown"),
    R(OPENBSD, "ready", "sb", 512, E.EBUSY, "bufsize_twice"),
    R(OPENBSD, "ready", "en", 0, E.EINVAL, "mode_none"),
    R(OPENBSD, "ready", "en", 3, E.EINVAL, "mode3"),
    R(OPENBSD, "ready", "di", 0, E.EPERM, "disable_not_owner"),
    R(OPENBSD, "running", "en", 1, E.EBUSY, "enable_twice"),
    R(OPENBSD, "running", "sb", 512, E.EBUSY, "bufsize_running"),
    R(OPENBSD, "second_fd", "en", 1, E.EBUSY, "second_fd_same_thread"),
    R(OPENBSD, "running_elsewhere", "en", 1, E.ENXIO, "enable_owned_elsewhere"),
    R(OPENBSD, "running_elsewhere", "di", 0, E.EPERM, "disable_not_owner"),
]


# --- mmap rules ----------------------------------------------------------------
# bsd-kcov.md §1.7, §2.2, §3.2; linux-kcov.md §2.4.
RW = mmap.PROT_READ | mmap.PROT_WRITE
RO = mmap.PROT_READ
RWX = RW | mmap.PROT_EXEC
SH, PRIV = mmap.MAP_SHARED, mmap.MAP_PRIVATE

# (abi, entries in pages or None for unsized, length in pages, prot, flags,
#  offset in pages, errno or 0)
MMAP_ROWS = [
    (FREEBSD, None, 1, RW, SH, 0, E.EINVAL),
    (FREEBSD, 1, 1, RW, SH, 0, 0),
    (FREEBSD, 1, 1, RW, SH, 1, 0),  # the offset is ignored
    (FREEBSD, 1, 1, RW, PRIV, 0, E.EINVAL),
    (FREEBSD, 1, 1, RO, SH, 0, E.EINVAL),
    (FREEBSD, 1, 1, RWX, SH, 0, E.EINVAL),
    (FREEBSD, 2, 1, RW, SH, 0, E.EINVAL),
    (FREEBSD, 2, 3, RW, SH, 0, E.EINVAL),
    (LINUX, None, 1, RW, SH, 0, E.EINVAL),
    (LINUX, 1, 1, RW, SH, 0, 0),
    (LINUX, 1, 1, RO, SH, 0, 0),
    (LINUX, 2, 2, RW, SH, 1, E.EINVAL),
    (LINUX, 2, 1, RW, SH, 0, E.EINVAL),
    (NETBSD, None, 1, RW, SH, 0, E.ENOMEM),
    (OPENBSD, None, 1, RW, SH, 0, E.EINVAL),
    (NETBSD, 1, 1, RW, SH, 0, 0),
    (NETBSD, 1, 1, RW, PRIV, 0, 0),
    (NETBSD, 1, 1, RO | mmap.PROT_EXEC, SH, 0, E.EACCES),
    (NETBSD, 1, 2, RW, SH, 0, E.ENOMEM),
    (NETBSD, 2, 1, RW, SH, 1, 0),
    (NETBSD, 2, 2, RW, SH, 1, E.ENOMEM),
    (OPENBSD, 2, 2, RW, SH, 0, 0),
    (OPENBSD, 2, 3, RW, SH, 0, E.EINVAL),
]


# --- calling a provider ----------------------------------------------------------

class Caller:
    """Raw ioctls of one ABI through Kcov.ioctl, with pointer arguments
    where the ABI wants them."""

    def __init__(self, abi: str) -> None:
        self.abi = abi
        self.pc = MODES[abi]["PC"]
        self.keep: list[Any] = []

    def cmd(self, name: str) -> int:
        fixed = {"sb": SETBUFSIZE, "en": ENABLE, "di": DISABLE}
        if name == "unknown":
            return UNKNOWN
        return fixed[name][self.abi] if name in fixed else NUMBERS[name]

    def arg(self, name: str, value: Any) -> int:
        if value is NULL:
            return 0
        if not BY_POINTER[self.abi] or name == "di":
            return int(value)
        if isinstance(value, bytes):
            box: Any = ctypes.create_string_buffer(value, len(value))
        elif name == "en":
            box = ctypes.c_int(value)
        else:
            box = ctypes.c_uint64(value)
        self.keep.append(box)
        return ctypes.addressof(box)

    def call(self, k: Any, name: str, value: Any) -> None:
        k.ioctl(self.cmd(name), self.arg(name, value))


class Elsewhere:
    """A thread that enables a descriptor and holds it until released."""

    def __init__(self, c: Caller, k: Any) -> None:
        self.go = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

        def body() -> None:
            try:
                c.call(k, "en", c.pc)
            except BaseException as e:  # noqa: BLE001 - reported below
                self.error = e
            self.ready.set()
            self.go.wait(30)

        self.t = threading.Thread(target=body)
        self.t.start()
        assert self.ready.wait(30)
        assert self.error is None, self.error


def open_in_state(open_fd: Any, abi: str, state: str, made: list[Any],
                  extras: list[Elsewhere]) -> tuple[Caller, Any]:
    """A descriptor of `abi` from `open_fd(abi)` brought to an ERRNO_ROWS
    state; what it opened goes to `made`, holder threads to `extras`."""
    c = Caller(abi)
    k = open_fd(abi)
    made.append(k)
    if state != "open":
        c.call(k, "sb", 512)
    if state == "running":
        c.call(k, "en", c.pc)
    elif state == "second_fd":
        other = open_fd(abi)
        made.append(other)
        c.call(other, "sb", 512)
        c.call(other, "en", c.pc)
    elif state == "running_elsewhere":
        extras.append(Elsewhere(c, k))
    return c, k
