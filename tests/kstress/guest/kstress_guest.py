"""Helpers of the kernel stress suite's guest side (run inside the VM by
tests/kstress, with kcov.ko and the instrumented kcovtest.ko loaded).

The device helpers come from tests/support/kmod_guest.py.  What is added
here is what the abuse tests need to judge a result: the ioctl numbers of
the four ABIs and the errnos each ABI documents (from
tests/support/abi_tables.py), and the mmap rules, all written from the
specifications (shared/spec/bsd-kcov.md §1.6-§1.7, §2.2,
§3.2; shared/spec/linux-kcov.md §2.3-§2.4) and the compatibility notes
(docs/compatibility.md), not from runtime/engine.c.
"""
from __future__ import annotations

import errno as E
import mmap
import os
from pathlib import Path

from tests.support import abi_tables as T
from tests.support import kmod_guest as H  # noqa: F401  (re-exported for the tests)
from tests.support import model as MODEL

PAGE = H.PAGE

# The ABI names, command numbers, documented errnos and which ABI answers a
# command: tests/support/abi_tables.py, shared with the hosted suites.
ENOTSUPP = T.ENOTSUPP
FREEBSD, LINUX, NETBSD, OPENBSD = T.FREEBSD, T.LINUX, T.NETBSD, T.OPENBSD
ABIS = (LINUX, FREEBSD, NETBSD, OPENBSD)
F_SETBUFSIZE, F_ENABLE, F_DISABLE = T.SETBUFSIZE[FREEBSD], T.ENABLE[FREEBSD], T.DISABLE[FREEBSD]
L_INIT_TRACE, L_ENABLE, L_DISABLE = T.SETBUFSIZE[LINUX], T.ENABLE[LINUX], T.DISABLE[LINUX]
L_INIT_TRACE32, L_REMOTE_ENABLE = T.N["KCOV_LINUX_INIT_TRACE32"], T.N["KCOV_LINUX_REMOTE_ENABLE"]
K_SETBUFSIZE, K_ENABLE, K_DISABLE = T.SETBUFSIZE[NETBSD], T.ENABLE[NETBSD], T.DISABLE[NETBSD]
N_REMOTE_ATTACH = T.N["KCOV_NETBSD_IOC_REMOTE_ATTACH"]
N_REMOTE_DETACH = T.N["KCOV_NETBSD_IOC_REMOTE_DETACH"]
O_REMOTEATTACH = T.N["KCOV_OPENBSD_KIOREMOTEATTACH"]
# In this order: the seeded sequences of test_kstress_ioctl draw from it.
ALL_CMDS = (F_SETBUFSIZE, F_ENABLE, F_DISABLE, L_INIT_TRACE, L_INIT_TRACE32, L_ENABLE,
            L_DISABLE, L_REMOTE_ENABLE, K_SETBUFSIZE, K_ENABLE, K_DISABLE, N_REMOTE_ATTACH,
            N_REMOTE_DETACH, O_REMOTEATTACH)
DOCUMENTED = T.DOCUMENTED
cmd_abi = T.cmd_abi
expected_ioctl = T.expected_ioctl

# Commands the VFS answers itself before any driver sees them (fs/ioctl.c
# do_vfs_ioctl and file_ioctl, Linux 6.1): their errnos are the VFS's.
VFS_IOCTLS = frozenset({
    0x1, 0x2,  # FIBMAP, FIGETBSZ
    0x5421, 0x541B, 0x5450, 0x5451, 0x5452, 0x5460,  # FIONBIO FIONREAD FIONCLEX FIOCLEX FIOASYNC FIOQSIZE
    0xC0045877, 0xC0045878, 0xC020660B,  # FIFREEZE FITHAW FS_IOC_FIEMAP
    0x40049409, 0x4020940D, 0xC0189436,  # FICLONE FICLONERANGE FIDEDUPERANGE
    0x40305828, 0x40305829, 0x4030582A, 0x4030582B, 0x4030587F,  # FS_IOC_(UN)RESVSP(64), ZERO_RANGE
    0x80086601, 0x40086602, 0x801C581F, 0x401C5820,  # FS_IOC_GETFLAGS SETFLAGS FSGETXATTR FSSETXATTR
})


# --- mmap ---------------------------------------------------------------------------

PROTS = tuple(range(8))  # every combination of READ, WRITE, EXEC (and PROT_NONE)
# Shared, private, and neither (MAP_SHARED_VALIDATE behaves as MAP_SHARED
# for a driver without mmap_supported_flags).
FLAGS = (mmap.MAP_SHARED, mmap.MAP_PRIVATE, 0)
RW = mmap.PROT_READ | mmap.PROT_WRITE




def expected_mmap(abi: str, entries: int | None, length: int, prot: int, flags: int,
                  offset: int) -> int:
    """0 if mmap(length, prot, flags, offset) of a descriptor of `abi`
    sized to `entries` (None: not sized) must succeed, else its errno.

    First what the Linux VFS checks before any driver, in its order
    (arch/x86/kernel/sys_x86_64.c, mm/mmap.c do_mmap, 6.1): an offset that
    is not page-aligned or a zero length is EINVAL; a mapping that would end
    beyond the file's maximum size is EOVERFLOW; sharing flags that are
    neither shared nor private are EINVAL; a private writable mapping larger
    than RAM and swap is ENOMEM (overcommit accounting).  Then the ABI's driver: FreeBSD
    and Linux as in tests/support/model.py (bsd-kcov.md §1.7,
    linux-kcov.md §2.4), NetBSD §2.2 and OpenBSD §3.2 here.  The node must
    allow PROT_EXEC (an exec mount), or the VFS answers EPERM first.
    """
    if length == 0 or offset % PAGE:
        return E.EINVAL
    rlen = -(-length // PAGE) * PAGE
    # file_mmap_ok(): the last page must lie below the file's maximum size,
    # LLONG_MAX for a regular file (debugfs) and ULONG_MAX for a device.
    maxsize = 2**63 - 1 if abi == LINUX else 2**64 - 1
    if (offset % 2**64) // PAGE > (maxsize - rlen) // PAGE:
        return E.EOVERFLOW
    if flags & 0x03 == 0:
        return E.EINVAL
    shared = flags & 0x03 != mmap.MAP_PRIVATE
    # mmap_region(): a private writable mapping is charged to the commit
    # limit, which the heuristic overcommit mode refuses beyond RAM + swap.
    if not shared and prot & mmap.PROT_WRITE and rlen > commit_limit():
        return E.ENOMEM
    bufsize = -(-(entries or 0) * 8 // PAGE) * PAGE
    if abi in (FREEBSD, LINUX):
        code = MODEL.FREEBSD if abi == FREEBSD else MODEL.LINUX
        d = MODEL.MDesc(personality=code)
        if entries is not None:
            d.abi, d.entries, d.state = code, entries, MODEL.READY
        return int(MODEL.Model(PAGE).mmap(d, rlen, prot & 7,
                                          MODEL.MAP_SHARED if shared else MODEL.MAP_PRIVATE, offset))
    if abi == NETBSD:
        # kcov_fops_mmap: PROT_EXEC EACCES; off < 0 EINVAL; size or off
        # beyond 2 MiB EINVAL; size + off beyond the buffer ENOMEM (also
        # unsized, whose buffer is 0 bytes).  MAP_PRIVATE is allowed.
        if prot & mmap.PROT_EXEC:
            return E.EACCES
        if offset < 0:
            return E.EINVAL
        if rlen > (256 << 10) * 8 or offset > (256 << 10) * 8:
            return E.EINVAL
        if rlen + offset > bufsize:
            return E.ENOMEM
        return 0
    # OpenBSD: d_mmap is asked for each page; one below 0 or at or past
    # kd_nmemb = n - 1 words refuses the mapping (EINVAL), as does no buffer.
    if entries is None or offset < 0:
        return E.EINVAL
    if offset + rlen - PAGE >= (entries - 1) * 8:
        return E.EINVAL
    return 0


def commit_limit() -> int:
    """Bytes of RAM + swap: the most the heuristic overcommit mode (the
    default, vm.overcommit_memory = 0) lets one private writable mapping charge."""
    assert Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "0"
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(info[k].split()[0]) * 1024 for k in ("MemTotal", "SwapTotal"))


def kcov_maps() -> list[str]:
    """The calling process's mappings of kcov buffers (anon_inode:[kcov])."""
    return [line for line in Path("/proc/self/maps").read_text().splitlines() if "kcov" in line]


def env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (run by tests/kstress)")
    return Path(value)
