"""Reference models of the kcov descriptor contract, in plain Python.

The model-based test (test_model.py) drives the hosted runtime and these
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

What the hosted device adds on top, from docs/compatibility.md: one
device serves both command sets, a descriptor speaks the ABI that sized it
(a command of the other ABI then fails with ENOTTY), an unknown command
gets the errno of the ABI that sized the descriptor or else of the device's
personality, and Linux checks EBUSY before ENOMEM (allocation never fails
here, so the two orders agree).  Records beyond the capacity are dropped
and counted in a private counter.
"""
from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

FREEBSD, LINUX = 1, 2
ABI_NAMES = {FREEBSD: "freebsd", LINUX: "linux"}

# Engine states (KCOVRT_STATE_*); FREED is model-only: no descriptor left.
OPEN, READY, RUNNING, DYING, FREED = 1, 2, 3, 4, 5
STATE_NAMES = {OPEN: "OPEN", READY: "READY", RUNNING: "RUNNING",
               DYING: "DYING", FREED: "FREED"}

# Trace modes as the runtime reports them (KCOVRT_MODE_*).
MODE_NONE, MODE_PC, MODE_CMP = 0, 1, 2

# Command numbers (runtime/kcov_abi.h; bsd-kcov.md §1.1, linux-kcov.md §1.2).
KIOSETBUFSIZE, KIOENABLE, KIODISABLE = 0x20046304, 0x20046302, 0x20006303
KCOV_INIT_TRACE, KCOV_ENABLE, KCOV_DISABLE = 0x80086301, 0x6364, 0x6365
UNKNOWN_CMD = 0x2000637F  # _IO('c', 0x7f): no ABI's command

FREEBSD_MAX_ENTRIES = 1 << 24  # kern.kcov.max_entries
LINUX_MAX_ENTRIES = 0x7FFFFFFF // 8  # INT_MAX / sizeof(unsigned long)

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE = 1, 2

COMMANDS = {
    FREEBSD: {"size": KIOSETBUFSIZE, "enable": KIOENABLE,
              "disable": KIODISABLE},
    LINUX: {"size": KCOV_INIT_TRACE, "enable": KCOV_ENABLE,
            "disable": KCOV_DISABLE},
}


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

    def ioctl(self, d: MDesc, t: MThread, cmd: int, arg: int) -> int:
        """An ioctl on a live descriptor from thread `t`."""
        abi = {KIOSETBUFSIZE: FREEBSD, KIOENABLE: FREEBSD,
               KIODISABLE: FREEBSD, KCOV_INIT_TRACE: LINUX,
               KCOV_ENABLE: LINUX, KCOV_DISABLE: LINUX}.get(cmd)
        if abi is None:
            # FreeBSD: "any other command -> EINVAL"; Linux: ENOTTY.
            return E.ENOTTY if (d.abi or d.personality) == LINUX else E.EINVAL
        if d.abi and d.abi != abi:
            return E.ENOTTY  # a descriptor speaks the ABI that sized it
        if abi == FREEBSD:
            return self._freebsd(d, t, cmd, arg)
        return self._linux(d, t, cmd, arg)

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

    # --- mmap ---------------------------------------------------------------

    def mmap(self, d: MDesc, length: int, prot: int, flags: int,
             offset: int) -> int:
        """0 if the mapping is allowed, else the errno."""
        abi = d.abi or d.personality
        rlen = -(-length // self.page) * self.page
        if length == 0:
            return E.EINVAL
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
        if d is None or not d.active or d.owner is not t:
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
            # FreeBSD stops recording at the close; Linux keeps recording
            # until the owner disables (impossible now) or exits.
            d.orphaned = d.abi == LINUX
            d.state = DYING
        else:
            d.state = FREED

    def thread_exit(self, t: MThread) -> None:
        """FreeBSD's thread_dtor / Linux's kcov_task_exit."""
        d = t.bound
        t.bound = None
        if d is None:
            return
        if d.state == DYING:
            d.state, d.owner, d.orphaned = FREED, None, False
        elif d.state == RUNNING:
            self._stop(d)

    # --- what the runtime reports -------------------------------------------

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
            "bufsize": -(-d.entries * 8 // self.page) * self.page,
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
