"""Reference models of the kcov descriptor contract, in plain Python.

The model-based test (tests/reliability/test_model.py) drives the hosted runtime and these
models with the same random call sequences and compares every result, so
the models are written from the specifications, not from runtime/engine.c:

* FreeBSD: shared/spec/bsd-kcov.md §1.5-§1.9 and the §5 checklist
  (states OPEN/READY/RUNNING/DYING, the errno order of KIOSETBUFSIZE,
  KIOENABLE and KIODISABLE, the mmap rules, record capacities, owner-only
  recording, thread exit -> READY, close while RUNNING -> DYING with the
  free deferred to the owner's exit and recording stopped at once).
* Linux: shared/spec/linux-kcov.md §2.2-§2.6 and the §7 checklist
  (KCOV_INIT_TRACE/ENABLE/DISABLE, the errno order, mmap at offset 0 of
  exactly the buffer, any protection; close does not stop an enabled
  thread).
* NetBSD: shared/spec/bsd-kcov.md §2.2 (KCOV_IOC_SETBUFSIZE/ENABLE/DISABLE
  with pointer arguments, EBUSY/EINVAL/EEXIST, EINVAL/EBUSY/ENOBUFS, ENOENT;
  mode NONE accepted and records nothing; mmap EACCES/EINVAL/ENOMEM against
  the buffer size, any sharing, page offsets allowed; close while enabled
  keeps recording until the LWP exits, which frees it).
* OpenBSD: shared/spec/bsd-kcov.md §3.2 (KIOSETBUFSIZE/KIOENABLE/KIODISABLE
  with pointer arguments, EBUSY/EINVAL (a size of 1 is accepted),
  EBUSY/ENXIO/EINVAL, EPERM; any other command ENOTTY; d_mmap per page below
  nmemb words; close while tracing -> DYING, recording stopped, freed at
  kcov_exit, and kcov_exit of a live one -> READY).

What the hosted device adds on top, from docs/compatibility.md: one
device serves every command set, a descriptor speaks the ABI that sized it
(a command of another ABI then fails with ENOTTY, or with EFAULT first
when a NetBSD/OpenBSD command's pointer is bad: the BSDs copy the argument
in before dispatching), the 'K' numbers NetBSD and OpenBSD share belong to
the ABI that sized the descriptor, else to the personality, an unknown command
gets the errno of the ABI that sized the descriptor or else of the device's
personality, and Linux checks EBUSY before ENOMEM (allocation never fails
here, so the two orders agree).  Records beyond the capacity are dropped
and counted in a private counter.
"""
from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

from tests.support import abi_tables as T

FREEBSD, LINUX, NETBSD, OPENBSD = 1, 2, 3, 4  # KCOVRT_ABI_*
ABI_NAMES = {FREEBSD: T.FREEBSD, LINUX: T.LINUX, NETBSD: T.NETBSD,
             OPENBSD: T.OPENBSD}
ABI_IDS = {name: abi for abi, name in ABI_NAMES.items()}

# Engine states (KCOVRT_STATE_*); FREED is model-only: no descriptor left.
OPEN, READY, RUNNING, DYING, FREED = 1, 2, 3, 4, 5
STATE_NAMES = {OPEN: "OPEN", READY: "READY", RUNNING: "RUNNING",
               DYING: "DYING", FREED: "FREED"}

# Trace modes as the runtime reports them (KCOVRT_MODE_*).
MODE_NONE, MODE_PC, MODE_CMP = 0, 1, 2

# Command numbers and capacities (tests/support/abi_tables.py: bsd-kcov.md
# §1.1, §1.6; linux-kcov.md §1.2, §2.3).
KIOSETBUFSIZE, KIOENABLE, KIODISABLE = (T.SETBUFSIZE[T.FREEBSD], T.ENABLE[T.FREEBSD],
                                        T.DISABLE[T.FREEBSD])
KCOV_INIT_TRACE, KCOV_ENABLE, KCOV_DISABLE = (T.SETBUFSIZE[T.LINUX], T.ENABLE[T.LINUX],
                                              T.DISABLE[T.LINUX])
UNKNOWN_CMD = T.UNKNOWN  # _IO('c', 0x7f): no ABI's command

FREEBSD_MAX_ENTRIES = T.MAX_ENTRIES[T.FREEBSD]  # kern.kcov.max_entries
LINUX_MAX_ENTRIES = T.MAX_ENTRIES[T.LINUX]  # INT_MAX / sizeof(unsigned long)
NETBSD_MAX_ENTRIES = T.MAX_ENTRIES[T.NETBSD]  # KCOV_BUF_MAX_ENTRIES
OPENBSD_MAX_ENTRIES = T.MAX_ENTRIES[T.OPENBSD]  # KCOV_BUF_MAX_NMEMB

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE = 1, 2

COMMANDS = {abi: {"size": T.SETBUFSIZE[name], "enable": T.ENABLE[name],
                  "disable": T.DISABLE[name]}
            for abi, name in ABI_NAMES.items()}
# The mode arguments of enable, per ABI (bsd-kcov.md §1.1, §2.1, §3.1).
MODE_ARGS = {abi: {MODE_PC: T.MODES[name]["PC"], MODE_CMP: T.MODES[name]["CMP"]}
             for abi, name in ABI_NAMES.items()}


@dataclass
class MThread:
    """A thread as the model sees it: which descriptor it is bound to."""

    key: str
    bound: MDesc | None = None


@dataclass(eq=False)
class MDesc:
    """One open file of the device (what dup() and fork() share)."""

    personality: int
    state: int = OPEN
    abi: int = 0  # the ABI that sized it; 0 before sizing
    entries: int = 0
    mode: int = MODE_NONE  # mode of the last enable (kept after disable)
    owner: MThread | None = None
    orphaned: bool = False  # closed while RUNNING, still recording (Linux)
    count: int = 0  # word 0 of the buffer
    dropped: int = 0  # records that did not fit since the last reset
    refs: int = 1  # file descriptors referring to this open file

    @property
    def cap_pc(self) -> int:
        return self.entries - 1 if self.entries else 0

    @property
    def cap_cmp(self) -> int:
        return (self.entries - 1) // 4 if self.entries else 0

    @property
    def active(self) -> bool:
        """Whether the owner's callbacks record into the buffer."""
        return self.state == RUNNING or (self.state == DYING and self.orphaned)


class Model:
    """The device: descriptors and threads, and the calls on them.

    Every call returns 0 or the errno the contract prescribes and applies
    its effect; invalid calls change nothing.
    """

    def __init__(self, page_size: int) -> None:
        self.page = page_size

    # --- ioctl --------------------------------------------------------------

    @staticmethod
    def cmd_abi(d: MDesc, cmd: int) -> int:
        """The ABI whose driver `cmd` reaches on `d` (0: no ABI's)."""
        name = T.cmd_abi(cmd, ABI_NAMES.get(d.abi), ABI_NAMES[d.personality])
        return ABI_IDS[name] if name is not None else 0

    def ioctl(self, d: MDesc, t: MThread, cmd: int, arg: int | None) -> int:
        """An ioctl on a live descriptor from thread `t`.  For NetBSD and
        OpenBSD `arg` is the value the pointer argument points to, None for
        a NULL pointer; for FreeBSD and Linux None stands for 0."""
        abi = self.cmd_abi(d, cmd)
        if abi == 0:
            # FreeBSD and NetBSD: "unknown command -> EINVAL"; Linux and
            # OpenBSD: ENOTTY.
            return T.UNKNOWN_ERRNO[ABI_NAMES[d.abi or d.personality]]
        if arg is None and T.copies_in(ABI_NAMES[abi], cmd):
            return E.EFAULT  # copyin of the IOC_IN argument, before any driver
        if d.abi and d.abi != abi:
            return E.ENOTTY  # a descriptor speaks the ABI that sized it
        if abi == NETBSD:
            return self._netbsd(d, t, cmd, arg or 0)
        if abi == OPENBSD:
            return self._openbsd(d, t, cmd, arg or 0)
        if abi == FREEBSD:
            return self._freebsd(d, t, cmd, arg or 0)
        return self._linux(d, t, cmd, arg or 0)

    def _size(self, d: MDesc, n: int, abi: int) -> int:
        d.state, d.entries, d.abi, d.mode = READY, n, abi, MODE_NONE
        return 0

    def _start(self, d: MDesc, t: MThread, mode: int) -> int:
        d.state, d.owner, d.mode, d.orphaned = RUNNING, t, mode, False
        t.bound = d
        return 0

    @staticmethod
    def _stop(d: MDesc) -> None:
        if d.owner is not None and d.owner.bound is d:
            d.owner.bound = None
        d.state, d.owner, d.orphaned = READY, None, False

    @staticmethod
    def _is_owner(d: MDesc, t: MThread) -> bool:
        return d.state == RUNNING and t.bound is d and d.owner is t

    def _freebsd(self, d: MDesc, t: MThread, cmd: int, arg: int) -> int:
        # bsd-kcov.md §1.6, in its order of checks.
        if cmd == KIOSETBUFSIZE:
            n = arg & 0xFFFFFFFF  # read as u_int
            if d.state != OPEN:
                return E.EBUSY
            if n < 2 or n > FREEBSD_MAX_ENTRIES:
                return E.EINVAL
            return self._size(d, n, FREEBSD)
        if cmd == KIOENABLE:
            mode = arg & 0xFFFFFFFF
            if d.state != READY:
                return E.EBUSY
            if t.bound is not None:
                return E.EINVAL
            if mode not in (0, 1):
                return E.EINVAL
            return self._start(d, t, MODE_PC if mode == 0 else MODE_CMP)
        # KIODISABLE
        if not self._is_owner(d, t):
            return E.EINVAL
        self._stop(d)
        return 0

    def _linux(self, d: MDesc, t: MThread, cmd: int, arg: int) -> int:
        # linux-kcov.md §2.3.
        if cmd == KCOV_INIT_TRACE:
            if arg < 2 or arg > LINUX_MAX_ENTRIES:
                return E.EINVAL
            if d.state != OPEN:
                return E.EBUSY
            return self._size(d, arg, LINUX)
        if cmd == KCOV_ENABLE:
            if d.state != READY:
                return E.EINVAL
            if d.owner is not None or t.bound is not None:
                return E.EBUSY
            if arg not in (0, 1):
                return E.EINVAL
            return self._start(d, t, MODE_PC if arg == 0 else MODE_CMP)
        # KCOV_DISABLE
        if arg != 0 or t.bound is not d or not self._is_owner(d, t):
            return E.EINVAL
        self._stop(d)
        return 0

    def _netbsd(self, d: MDesc, t: MThread, cmd: int, arg: int) -> int:
        # bsd-kcov.md §2.2, no remote attached (none can be registered).
        if cmd == COMMANDS[NETBSD]["size"]:
            if d.state == RUNNING:
                return E.EBUSY
            if arg < 2 or arg > NETBSD_MAX_ENTRIES:
                return E.EINVAL
            if d.state != OPEN:
                return E.EEXIST
            return self._size(d, arg, NETBSD)
        if cmd == COMMANDS[NETBSD]["enable"]:
            mode = arg & 0xFFFFFFFF  # an int
            if mode not in (0, 1, 2):
                return E.EINVAL
            if d.state == RUNNING or t.bound is not None:
                return E.EBUSY
            if d.state != READY:
                return E.ENOBUFS
            return self._start(d, t, (MODE_NONE, MODE_PC, MODE_CMP)[mode])
        # KCOV_IOC_DISABLE: not enabled, or not the owner LWP.
        if not self._is_owner(d, t):
            return E.ENOENT
        self._stop(d)
        return 0

    def _openbsd(self, d: MDesc, t: MThread, cmd: int, arg: int) -> int:
        # bsd-kcov.md §3.2.
        if cmd == COMMANDS[OPENBSD]["size"]:
            if d.state != OPEN:
                return E.EBUSY
            if arg == 0 or arg > OPENBSD_MAX_ENTRIES:
                return E.EINVAL
            return self._size(d, arg, OPENBSD)
        if cmd == COMMANDS[OPENBSD]["enable"]:
            mode = arg & 0xFFFFFFFF
            if t.bound is not None:
                return E.EBUSY
            if d.state != READY:
                return E.ENXIO
            if mode not in (1, 2):
                return E.EINVAL
            return self._start(d, t, MODE_PC if mode == 1 else MODE_CMP)
        # KIODISABLE: the caller must be the owner (p_kd == kd), which is
        # then tracing, so "state != TRACE -> ENXIO" cannot be reached here.
        if t.bound is not d:
            return E.EPERM
        if d.state != RUNNING:
            return E.ENXIO
        self._stop(d)
        return 0

    # --- mmap ---------------------------------------------------------------

    def mmap(self, d: MDesc, length: int, prot: int, flags: int,
             offset: int) -> int:
        """0 if the mapping is allowed, else the errno."""
        abi = d.abi or d.personality
        rlen = -(-length // self.page) * self.page
        if length == 0:
            return E.EINVAL
        if abi in (NETBSD, OPENBSD):
            # Their sys_mmap aligns the offset down to a page and grows the
            # length by the same amount before the device sees the request.
            pageoff = offset % self.page
            offset -= pageoff
            length = rlen = -(-(length + pageoff) // self.page) * self.page
        if abi == NETBSD:
            # kcov_fops_mmap (bsd-kcov.md §2.2): any sharing, page offsets
            # allowed; an unsized descriptor has a buffer size of 0.
            if prot & PROT_EXEC:
                return E.EACCES
            top = NETBSD_MAX_ENTRIES * 8
            if offset < 0 or length > top or offset > top:
                return E.EINVAL
            if length + offset > self.bufsize(d):
                return E.ENOMEM
            return 0
        if abi == OPENBSD:
            # d_mmap is asked for each page, whose offset must be below
            # kd_nmemb (entries - 1) words (bsd-kcov.md §3.2).
            last = offset + rlen - self.page
            if not d.abi or offset < 0 or last >= (d.entries - 1) * 8:
                return E.EINVAL
            return 0
        if abi == LINUX:
            # An area, page offset 0 and exactly size * 8 bytes; prot and
            # sharing are not checked (linux-kcov.md §2.4).
            if not d.abi or offset != 0 or rlen != d.entries * 8:
                return E.EINVAL
            return 0
        # FreeBSD (bsd-kcov.md §1.7): MAP_SHARED, exactly READ|WRITE, a
        # buffer, and the page-rounded length equal to entries * 8; the
        # offset is ignored.
        if flags != MAP_SHARED or prot != PROT_READ | PROT_WRITE:
            return E.EINVAL
        if not d.abi or rlen // 8 != d.entries:
            return E.EINVAL
        return 0

    # --- recording, reset, close, exit -----------------------------------

    def record(self, t: MThread, n: int) -> None:
        """Thread `t` runs n calls that each yield one PC and one compare."""
        d = t.bound
        if d is None or not d.active or d.owner is not t or d.mode == MODE_NONE:
            return
        cap = d.cap_pc if d.mode == MODE_PC else d.cap_cmp
        fit = max(0, min(n, cap - d.count))
        d.count += fit
        d.dropped += n - fit

    @staticmethod
    def reset(d: MDesc) -> None:
        d.count = 0
        d.dropped = 0

    def close(self, d: MDesc) -> None:
        """Close one file descriptor of `d`; the last one ends the file."""
        d.refs -= 1
        if d.refs > 0:
            return
        if d.state == RUNNING:
            # FreeBSD and OpenBSD stop recording at the close; Linux and
            # NetBSD keep recording until the owner disables (impossible
            # now) or exits.
            d.orphaned = d.abi in (LINUX, NETBSD)
            d.state = DYING
        else:
            d.state = FREED

    def thread_exit(self, t: MThread) -> None:
        """FreeBSD's thread_dtor, Linux's kcov_task_exit, NetBSD's
        kcov_lwp_free, OpenBSD's kcov_exit: free a DYING descriptor, stop a
        RUNNING one (READY, enable-able again)."""
        d = t.bound
        t.bound = None
        if d is None:
            return
        if d.state == DYING:
            d.state, d.owner, d.orphaned = FREED, None, False
        elif d.state == RUNNING:
            self._stop(d)

    # --- what the runtime reports -------------------------------------------

    def bufsize(self, d: MDesc) -> int:
        """Bytes allocated: entries words rounded up to a page."""
        return -(-d.entries * 8 // self.page) * self.page

    def info(self, d: MDesc, tids: dict[str, int]) -> dict[str, object]:
        """The fields of kcovrt_info the model predicts for a live fd."""
        return {
            "state": d.state,
            "abi": d.abi,
            "personality": d.personality,
            "mode": d.mode,
            "running": d.state == RUNNING,
            "orphaned": False,
            "entries": d.entries,
            "bufsize": self.bufsize(d),
            "count": d.count,
            "capacity": d.cap_cmp if d.mode == MODE_CMP else d.cap_pc,
            "dropped": d.dropped,
            "owner_tid": tids[d.owner.key] if d.owner is not None else 0,
        }


@dataclass
class Step:
    """One step of a sequence, for readable failure reports."""

    what: str
    args: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        a = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.what}({a})"
