"""Helpers of the kernel stress suite's guest side (run inside the VM by
tests/kstress, with kcov.ko and the instrumented kcovtest.ko loaded).

The device helpers come from tests/kmod/guest/kmod_guest.py.  What is added
here is what the abuse tests need to judge a result: the ioctl numbers of
the four ABIs, the errnos each ABI documents, and the mmap rules, all
written from the specifications (shared/spec/bsd-kcov.md §1.6-§1.7, §2.2,
§3.2; shared/spec/linux-kcov.md §2.3-§2.4) and the compatibility notes
(docs/compatibility.md), not from runtime/engine.c.
"""
from __future__ import annotations

import errno as E
import importlib.util
import mmap
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "kmod" / "guest"))

import kmod_guest as H  # noqa: E402,F401  (re-exported for the tests)

PAGE = H.PAGE
ENOTSUPP = 524  # Linux's kernel-internal ENOTSUPP leaks to user space as 524

FREEBSD, LINUX, NETBSD, OPENBSD = "freebsd", "linux", "netbsd", "openbsd"
ABIS = (LINUX, FREEBSD, NETBSD, OPENBSD)

# Command numbers (bsd-kcov.md §1.1, §2.1, §3.1; linux-kcov.md §1.2).
F_SETBUFSIZE, F_ENABLE, F_DISABLE = 0x20046304, 0x20046302, 0x20006303
L_INIT_TRACE, L_INIT_TRACE32, L_ENABLE, L_DISABLE, L_REMOTE_ENABLE = \
    0x80086301, 0x80046301, 0x6364, 0x6365, 0x40186366
K_SETBUFSIZE, K_ENABLE, K_DISABLE = 0x80084B01, 0x80044B02, 0x20004B03  # NetBSD and OpenBSD
N_REMOTE_ATTACH, N_REMOTE_DETACH = 0x80104B0A, 0x20004B0B
O_REMOTEATTACH = 0x80084B04
ALL_CMDS = (F_SETBUFSIZE, F_ENABLE, F_DISABLE, L_INIT_TRACE, L_INIT_TRACE32, L_ENABLE,
            L_DISABLE, L_REMOTE_ENABLE, K_SETBUFSIZE, K_ENABLE, K_DISABLE, N_REMOTE_ATTACH,
            N_REMOTE_DETACH, O_REMOTEATTACH)
SIZING = {F_SETBUFSIZE: FREEBSD, L_INIT_TRACE: LINUX}  # K_SETBUFSIZE: NetBSD or OpenBSD

# What each ABI's driver may answer to one of its commands, in some state
# (bsd-kcov.md §1.6, §2.2, §3.2; linux-kcov.md §2.3).  Also EFAULT where a
# BSD kernel copies a pointer argument in before its driver runs (IOC_IN).
DOCUMENTED = {
    FREEBSD: {E.EINVAL, E.EBUSY, E.ENOMEM},
    LINUX: {E.EINVAL, E.EBUSY, E.ENOMEM, E.EFAULT, E.EEXIST, ENOTSUPP},
    NETBSD: {E.EINVAL, E.EBUSY, E.EEXIST, E.ENOBUFS, E.ENOENT, E.EFAULT, E.ENOMEM},
    OPENBSD: {E.EINVAL, E.EBUSY, E.ENXIO, E.EPERM, E.EFAULT, E.ENOMEM, E.EOPNOTSUPP},
}

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


def cmd_abi(cmd: int, sized: str | None, personality: str) -> str | None:
    """The ABI whose driver handles `cmd` on a descriptor sized in `sized`
    (None: not sized) of a node with `personality` (docs/compatibility.md:
    /dev/kcov serves every command set; NetBSD and OpenBSD share
    three numbers, which belong to the descriptor's ABI, else to the
    personality, NetBSD's unless the personality is OpenBSD)."""
    if cmd in (F_SETBUFSIZE, F_ENABLE, F_DISABLE):
        return FREEBSD
    if cmd in (L_INIT_TRACE, L_ENABLE, L_DISABLE, L_REMOTE_ENABLE):
        return LINUX
    if cmd in (N_REMOTE_ATTACH, N_REMOTE_DETACH):
        return NETBSD
    if cmd == O_REMOTEATTACH:
        return OPENBSD
    if cmd in (K_SETBUFSIZE, K_ENABLE, K_DISABLE):
        if sized in (NETBSD, OPENBSD):
            return sized
        return OPENBSD if personality == OPENBSD else NETBSD
    return None


def expected_ioctl(cmd: int, sized: str | None, personality: str) -> tuple[str | None, set[int] | None]:
    """(the ABI that answers, the exact set of errnos allowed besides 0), or
    (abi, None) for "0 or any errno that ABI documents"."""
    abi = cmd_abi(cmd, sized, personality)
    if abi is None:
        # Unknown command: FreeBSD and NetBSD say EINVAL, Linux and OpenBSD
        # ENOTTY; the descriptor's ABI decides, else the node's.
        own = sized or personality
        return None, {E.ENOTTY if own in (LINUX, OPENBSD) else E.EINVAL}
    if sized is not None and sized != abi:
        # A descriptor speaks only the ABI that sized it.  A BSD kernel
        # copies an IOC_IN argument in before any driver runs, so a bad
        # pointer to a NetBSD or OpenBSD command is EFAULT first.
        copyin = abi in (NETBSD, OPENBSD) and cmd & 0x80000000 and (cmd >> 16) & 0x1FFF
        return abi, {E.ENOTTY, E.EFAULT} if copyin else {E.ENOTTY}
    return abi, None


# --- mmap ---------------------------------------------------------------------------

PROTS = tuple(range(8))  # every combination of READ, WRITE, EXEC (and PROT_NONE)
# Shared, private, and neither (MAP_SHARED_VALIDATE behaves as MAP_SHARED
# for a driver without mmap_supported_flags).
FLAGS = (mmap.MAP_SHARED, mmap.MAP_PRIVATE, 0)
RW = mmap.PROT_READ | mmap.PROT_WRITE


def _load_model() -> ModuleType:
    """tests/reliability/model.py: the FreeBSD and Linux contract models."""
    path = REPO / "tests" / "reliability" / "model.py"
    spec = importlib.util.spec_from_file_location("kstress_contract_model", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


MODEL = _load_model()


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
    and Linux as in tests/reliability/model.py (bsd-kcov.md §1.7,
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
