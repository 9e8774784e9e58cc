"""Model-based test of the hosted kcov device against the reference models
of tests/support/model.py (issue 7, point 1).

A hypothesis RuleBasedStateMachine sends the same random sequences to the
hosted runtime (through ``kcov._core``'s raw hosted_* calls) and to the
model: open, dup, size, enable, disable, unknown commands, mmap, reset,
record, close, thread start and exit, and fork.  Up to four descriptors of
any personality and three worker threads take part; every call picks a
descriptor and the thread it runs on, and either the descriptor's own
command set or another ABI's.  After every step the test compares the
call's errno, then every live descriptor's kcovrt_info (state, ABI, mode,
owner thread, entries, capacity, count, dropped records), and the record
count read through a mapping kept from before a close.
Descriptors have any of the four personalities (FreeBSD, Linux, NetBSD,
OpenBSD); NetBSD and OpenBSD arguments travel by pointer, sometimes NULL.

The budget is fixed and the search derandomized, so CI runs the same
sequences every time; KCOV_MODEL_EXAMPLES overrides the number of
sequences for a longer local run.  After the run every event of REQUIRED
(each rule, each errno path of each ABI, each state, fork, thread exit,
close while RUNNING) must have happened, so a broken strategy fails.  On a failure hypothesis prints the
shrunk sequence as Python calls; paste it into test_model_regressions.py.
"""
from __future__ import annotations

import collections
import ctypes
import errno as E
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,
                                 precondition, rule, run_state_machine_as_test)

from kcov import _core
from tests.support.model import (ABI_NAMES, COMMANDS, DYING, FREEBSD, FREEBSD_MAX_ENTRIES, FREED, LINUX,
                   LINUX_MAX_ENTRIES, MAP_PRIVATE, MAP_SHARED, MODE_ARGS, MODE_CMP, MODE_PC,
                   NETBSD, NETBSD_MAX_ENTRIES, OPENBSD, OPENBSD_MAX_ENTRIES, PROT_EXEC,
                   PROT_READ, PROT_WRITE, RUNNING, STATE_NAMES, UNKNOWN_CMD, MDesc, Model,
                   MThread)
from rel_workers import Worker

from tests.support import abi_tables as T

EXAMPLES = int(os.environ.get("KCOV_MODEL_EXAMPLES", "300"))
STEPS = 40
MAX_FDS = 4
MAX_THREADS = 3

ABIS = (FREEBSD, LINUX, NETBSD, OPENBSD)
# Weighted towards valid, mappable sizes (512 entries: 511 PCs, 127
# compares); None is a NULL pointer for NetBSD/OpenBSD (0 for the others).
SIZES = [512] * 6 + [1024, 2, 3, 0, 1, None, None, FREEBSD_MAX_ENTRIES + 1,
                     LINUX_MAX_ENTRIES + 1, NETBSD_MAX_ENTRIES + 1, OPENBSD_MAX_ENTRIES + 1]
ENABLE_ARGS = [0, 1, 2] * 2 + [3, 0xFFFFFFFF, None, None]
RECORDS = [1, 3, 200, 600]
RW = PROT_READ | PROT_WRITE
PROTS = [RW] * 3 + [PROT_READ, RW | PROT_EXEC, PROT_WRITE, 0]
LENGTHS = ["exact"] * 3 + ["exact-8", "page", "exact+page", "zero"]
OFFSETS = [0, 1, 4096]

STATS: collections.Counter[str] = collections.Counter()


def event(what: str) -> None:
    """Count what happened: the summary the test prints, and REQUIRED."""
    STATS[what] += 1


def errname(err: int) -> str:
    return E.errorcode.get(err, str(err)) if err else "ok"


# What a run must have exercised, or the strategies are broken: every rule,
# every errno path of each ABI's commands (ENOTTY: a command of the other
# ABI than the one that sized the descriptor), each state, fork, thread
# exit while bound, and close while RUNNING.
# (EFAULT: a NULL pointer to a NetBSD/OpenBSD command.)
ERRNO_PATHS = {
    "freebsd": {"size": ("ok", "EINVAL", "EBUSY", "ENOTTY"),
                "enable": ("ok", "EINVAL", "EBUSY", "ENOTTY"),
                "disable": ("ok", "EINVAL", "ENOTTY")},
    "linux": {"size": ("ok", "EINVAL", "EBUSY", "ENOTTY"),
              "enable": ("ok", "EINVAL", "EBUSY", "ENOTTY"),
              "disable": ("ok", "EINVAL", "ENOTTY")},
    "netbsd": {"size": ("ok", "EINVAL", "EBUSY", "EEXIST", "EFAULT", "ENOTTY"),
               "enable": ("ok", "EINVAL", "EBUSY", "ENOBUFS", "EFAULT", "ENOTTY"),
               "disable": ("ok", "ENOENT", "ENOTTY")},
    "openbsd": {"size": ("ok", "EINVAL", "EBUSY", "EFAULT", "ENOTTY"),
                "enable": ("ok", "EINVAL", "EBUSY", "ENXIO", "EFAULT", "ENOTTY"),
                "disable": ("ok", "EPERM", "ENOTTY")},
}
NAMES = tuple(ABI_NAMES[a] for a in ABIS)
REQUIRED = [
    *(f"ioctl {abi} {kind} -> {err}" for abi, kinds in ERRNO_PATHS.items()
      for kind, errs in kinds.items() for err in errs),
    "ioctl none unknown -> EINVAL", "ioctl none unknown -> ENOTTY",
    "mmap freebsd -> ok", "mmap freebsd -> EINVAL", "mmap linux -> ok",
    "mmap linux -> EINVAL", "mmap netbsd -> ok", "mmap netbsd -> EACCES",
    "mmap netbsd -> ENOMEM", "mmap netbsd -> EINVAL", "mmap openbsd -> ok",
    "mmap openbsd -> EINVAL", "mmap unsized -> EINVAL", "mmap unsized -> ENOMEM",
    *(f"open {abi}" for abi in NAMES), "dup", "reset", "thread start", "thread exit", "fork",
    "state OPEN unsized", *(f"state {st_} {abi}" for st_ in ("READY", "RUNNING")
                            for abi in NAMES),
    *(f"record into RUNNING {abi}" for abi in NAMES),
    "record into DYING linux", "record into DYING netbsd",
    *(f"close while RUNNING {abi}" for abi in NAMES),
    "close -> DYING", "close -> FREED",
    "thread exit bound to RUNNING", "thread exit bound to DYING",
]

pick = st.integers(min_value=0, max_value=7)
# Mostly the descriptor's own command set (0), sometimes another ABI's
# (the k-th after its own, in ABIS order).
other_abi = st.sampled_from([0, 0, 0, 0, 0, 1, 2, 3])
# OpenBSD twice: the 'K' commands reach OpenBSD's driver only on a
# descriptor of OpenBSD personality (or sized by it), NetBSD's on the rest.
personalities = st.sampled_from([*ABIS, OPENBSD])


class KcovMachine(RuleBasedStateMachine):
    """Drives the hosted runtime and the model in lock step."""

    lib: Any = None
    page: int = 4096

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(self.page)
        self.fds: list[tuple[int, MDesc]] = []
        self.readers: dict[MDesc, Any] = {}  # a shared RW mapping per desc
        self.workers: dict[str, Worker] = {}
        self.threads: dict[str, MThread] = {}
        self.tids: dict[str, int] = {}
        self.next_thread = 0
        self._start_thread()
        event("sequence")

    # --- helpers --------------------------------------------------------------

    def _start_thread(self) -> str:
        key = f"t{self.next_thread}"
        self.next_thread += 1
        w = Worker(key)
        self.workers[key] = w
        self.threads[key] = MThread(key)
        self.tids[key] = w.tid
        return key

    def _fd(self, i: int) -> tuple[int, MDesc]:
        return self.fds[i % len(self.fds)]

    def _thread(self, i: int, d: MDesc | None = None) -> tuple[Worker, MThread]:
        """The i-th worker, counting the owner of `d` first, then the
        threads bound to any descriptor: small (shrunk) indices pick the
        threads whose calls matter."""
        def rank(key: str) -> tuple[int, str]:
            t = self.threads[key]
            first = d is not None and d.owner is t
            return (0 if first else 1 if t.bound is not None else 2, key)

        key = sorted(self.workers, key=rank)[i % len(self.workers)]
        return self.workers[key], self.threads[key]

    @staticmethod
    def _cmd_abi(d: MDesc, other: int) -> int:
        own = d.abi or d.personality
        return ABIS[(ABIS.index(own) + other) % len(ABIS)]

    @staticmethod
    def _raw(abi: int, kind: str, value: int | None) -> tuple[T.Caller, int]:
        """The ioctl argument: the value, or a pointer to it for NetBSD and
        OpenBSD (None: NULL); keep the Caller alive until the call returns."""
        c = T.Caller(ABI_NAMES[abi])
        return c, c.arg({"size": "sb", "enable": "en"}.get(kind, "di"),
                        T.NULL if value is None else value)

    def _ioctl(self, i: int, w: int, other: int, kind: str,
               arg: int | None) -> None:
        fd, d = self._fd(i)
        worker, t = self._thread(w, d)
        cmd = UNKNOWN_CMD if kind == "unknown" else \
            COMMANDS[self._cmd_abi(d, other)][kind]
        abi = self.model.cmd_abi(d, cmd)  # shared 'K' numbers: whose they are
        keep, raw = self._raw(abi or FREEBSD, kind, arg)
        got = worker.call(lambda: _core.hosted_ioctl(fd, cmd, raw))
        del keep
        want = self.model.ioctl(d, t, cmd, arg)
        name = ABI_NAMES.get(abi, "none")
        event(f"ioctl {name} {kind} -> {errname(want)}")
        event(f"ioctl {name} -> {errname(want)}")
        assert got == want, (f"ioctl {kind} {cmd:#x} arg={arg:#x} on fd {fd} "
                             f"from {t.key}: errno {got}, model {want}")

    # --- rules ------------------------------------------------------------------

    @initialize(first=personalities, second=personalities,
                size=st.sampled_from([True, True, False]),
                other=st.sampled_from([0, 0, 1, 2, 3]))
    def two_descriptors(self, first: int, second: int, size: bool,
                        other: int) -> None:
        """Most sequences start from two sized descriptors, the second
        sometimes sized through another ABI than its personality's."""
        for p, o in ((first, 0), (second, other)):
            self.open_fd(p)
            if size:
                self.size(len(self.fds) - 1, 0, o, 512)

    @precondition(lambda self: len(self.fds) < MAX_FDS)
    @rule(personality=personalities)
    def open_fd(self, personality: int) -> None:
        fd = _core.hosted_open(personality, True)
        self.fds.append((fd, MDesc(personality)))
        event(f"open {ABI_NAMES[personality]}")

    @precondition(lambda self: 0 < len(self.fds) < MAX_FDS + 2)
    @rule(i=pick)
    def dup_fd(self, i: int) -> None:
        fd, d = self._fd(i)
        d.refs += 1
        self.fds.append((os.dup(fd), d))
        event("dup")

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick, other=other_abi, n=st.sampled_from(SIZES))
    def size(self, i: int, w: int, other: int, n: int | None) -> None:
        self._ioctl(i, w, other, "size", n)
        fd, d = self._fd(i)
        if d.entries and d not in self.readers:
            # Map the whole buffer at once, as clients do, so that the count
            # stays observable after the last close.
            err, mapping = _core.hosted_mmap(fd, d.entries * 8, RW,
                                             MAP_SHARED, 0)
            want = self.model.mmap(d, d.entries * 8, RW, MAP_SHARED, 0)
            assert err == want, f"mmap of the whole buffer: {err}, model {want}"
            if err == 0:
                self.readers[d] = mapping

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick, other=other_abi,
          mode=st.sampled_from(ENABLE_ARGS))
    def enable(self, i: int, w: int, other: int, mode: int | None) -> None:
        self._ioctl(i, w, other, "enable", mode)

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick, other=other_abi, arg=st.sampled_from([0, 1]))
    def disable(self, i: int, w: int, other: int, arg: int) -> None:
        self._ioctl(i, w, other, "disable", arg)

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick)
    def unknown_command(self, i: int, w: int) -> None:
        self._ioctl(i, w, 0, "unknown", 0)

    @precondition(lambda self: self.fds)
    @rule(i=pick, length=st.sampled_from(LENGTHS), prot=st.sampled_from(PROTS),
          shared=st.sampled_from([True, True, False]), offset=st.sampled_from(OFFSETS))
    def mmap(self, i: int, length: str, prot: int, shared: bool,
             offset: int) -> None:
        fd, d = self._fd(i)
        exact = d.entries * 8 if d.entries else self.page
        nbytes = {"exact": exact, "exact-8": max(exact - 8, 8),
                  "page": self.page, "exact+page": exact + self.page,
                  "zero": 0}[length]
        flags = MAP_SHARED if shared else MAP_PRIVATE
        if (d.abi or d.personality) in (NETBSD, OPENBSD):
            # KNOWN RUNTIME BUG (reported, not yet fixed): an offset that is
            # not a page multiple passes the NetBSD/OpenBSD rule but the
            # host mmap then fails with EINVAL, where both kernels align it
            # down and succeed (the model does that).  Page offsets only,
            # until runtime/hosted/device.c:kcovrt_mmap aligns it.
            offset -= offset % self.page
        err, mapping = _core.hosted_mmap(fd, nbytes, prot, flags, offset)
        want = self.model.mmap(d, nbytes, prot, flags, offset)
        event(f"mmap {ABI_NAMES.get(d.abi, 'unsized')} -> {errname(want)}")
        assert err == want, (f"mmap len={nbytes} prot={prot} flags={flags} "
                             f"off={offset} on fd {fd}: errno {err}, model {want}")
        if (err == 0 and shared and prot & PROT_READ and d not in self.readers
                and nbytes >= 8):
            self.readers[d] = mapping

    @precondition(lambda self: self.fds)
    @rule(i=pick)
    def reset(self, i: int) -> None:
        fd, d = self._fd(i)
        _core.hosted_reset(fd)
        self.model.reset(d)
        event("reset")

    @rule(w=pick, n=st.sampled_from(RECORDS))
    def record(self, w: int, n: int) -> None:
        worker, t = self._thread(w)
        assert worker.call(lambda: self.lib.repeat(n)) == (1 if n > 0x4B43 else 0)
        self.model.record(t, n)
        if t.bound is not None:
            event(f"record into {STATE_NAMES[t.bound.state]} {ABI_NAMES.get(t.bound.abi)}")

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick)
    def close(self, i: int, w: int) -> None:
        fd, d = self._fd(i)
        worker, _ = self._thread(w)
        self.fds.remove((fd, d))
        if d.state == RUNNING:
            event(f"close while RUNNING {ABI_NAMES[d.abi]}")
        worker.call(lambda: _core.hosted_close(fd))
        self.model.close(d)
        event(f"close -> {STATE_NAMES[d.state]}")

    # --- weighted duplicates --------------------------------------------------
    # hypothesis picks rules uniformly; these repeat the calls that reach
    # the interesting states (RUNNING, DYING, full buffers) more often.

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick, mode=st.sampled_from([MODE_PC, MODE_CMP]))
    def enable_valid(self, i: int, w: int, mode: int) -> None:
        _, d = self._fd(i)
        self._ioctl(i, w, 0, "enable", MODE_ARGS[d.abi or d.personality][mode])

    @precondition(lambda self: any(d.state == RUNNING for _, d in self.fds))
    @rule(i=pick)
    def disable_owner(self, i: int) -> None:
        """The owner of a RUNNING descriptor disables it (thread 0 ranks
        the owner first)."""
        running = [k for k, (_, d) in enumerate(self.fds) if d.state == RUNNING]
        self._ioctl(running[i % len(running)], 0, 0, "disable", 0)

    @precondition(lambda self: any(t.bound for t in self.threads.values()
                                   if t.key in self.workers))
    @rule(n=st.sampled_from(RECORDS))
    def record_bound(self, n: int) -> None:
        self.record(0, n)

    @precondition(lambda self: any(d.state == RUNNING for _, d in self.fds))
    @rule(i=pick, w=pick)
    def close_running(self, i: int, w: int) -> None:
        running = [k for k, (_, d) in enumerate(self.fds) if d.state == RUNNING]
        self.close(running[i % len(running)], w)

    @precondition(lambda self: len(self.workers) < MAX_THREADS)
    @rule()
    def thread_start(self) -> None:
        self._start_thread()
        event("thread start")

    @precondition(lambda self: len(self.workers) > 1)
    @rule(w=pick)
    def thread_exit(self, w: int) -> None:
        worker, t = self._thread(w)
        del self.workers[t.key]
        if t.bound is not None:
            event(f"thread exit bound to {STATE_NAMES[t.bound.state]}")
        worker.exit()
        self.model.thread_exit(t)
        event("thread exit")

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick, other=other_abi, n=st.sampled_from(RECORDS),
          disable=st.booleans(), close=st.booleans())
    def fork(self, i: int, w: int, other: int, n: int, disable: bool,
             close: bool) -> None:
        """A forked child (starting untraced) enables an inherited
        descriptor in PC mode, records n, maybe disables, maybe closes its
        copy of the fd, and _exit()s; the parent reaps it."""
        fd, d = self._fd(i)
        worker, _ = self._thread(w)
        cmds = COMMANDS[self._cmd_abi(d, other)]
        abi = self.model.cmd_abi(d, cmds["enable"])
        pc = MODE_ARGS[abi][MODE_PC]
        keep, raw = self._raw(abi, "enable", pc)
        lib = self.lib

        def child() -> int:
            err = _core.hosted_ioctl(fd, cmds["enable"], raw)
            if err == 0:
                lib.repeat(n)
                if disable:
                    err = 100 + _core.hosted_ioctl(fd, cmds["disable"], 0)
            if close:
                _core.hosted_close(fd)
            return err

        def run() -> int:
            pid = os.fork()
            if pid == 0:
                status = 99
                try:
                    status = child()
                finally:
                    os._exit(min(status, 255))
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        got = worker.call(run)
        del keep
        event("fork")
        kid = MThread("child")
        want = self.model.ioctl(d, kid, cmds["enable"], pc)
        if want == 0:
            self.model.record(kid, n)
            if disable:
                want = 100 + self.model.ioctl(d, kid, cmds["disable"], 0)
        self.model.thread_exit(kid)  # the child is gone and reaped
        assert got == want, f"forked child on fd {fd}: status {got}, model {want}"

    # --- comparison ---------------------------------------------------------------

    @invariant()
    def descriptors_match(self) -> None:
        event("step")
        for fd, d in self.fds:
            event(f"state {STATE_NAMES[d.state]} {ABI_NAMES.get(d.abi, 'unsized')}")
            got = dict(_core.hosted_info(fd))
            want = self.model.info(d, self.tids)
            assert got == want, f"fd {fd}: runtime {got}\nmodel {want}"
        for d, m in self.readers.items():
            if d.state == FREED or d.state == DYING or d.refs > 0:
                assert m.count() == d.count, (
                    f"count through the mapping {m.count()}, model {d.count}")

    def teardown(self) -> None:
        for fd, d in self.fds:
            _core.hosted_close(fd)
            self.model.close(d)
        self.fds.clear()
        for key in sorted(self.workers):
            self.workers[key].exit()
            self.model.thread_exit(self.threads[key])
        self.workers.clear()
        for d, m in self.readers.items():
            assert d.state == FREED, "a descriptor outlived its fds and threads"
            assert m.count() == d.count
        self.readers.clear()


@pytest.mark.slow
def test_model_based(rec_lib: ctypes.CDLL, page: int) -> None:
    """Random sequences: the hosted runtime agrees with the model."""
    KcovMachine.lib = rec_lib
    KcovMachine.page = page
    STATS.clear()
    run_state_machine_as_test(KcovMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True,
        deadline=None, database=None, print_blob=True,
        suppress_health_check=list(HealthCheck)))
    print(f"model-checked {STATS['sequence']} sequences, {STATS['step']} steps")
    for what, n in sorted(STATS.items()):
        print(f"  {what}: {n}")
    missing = [what for what in REQUIRED if STATS[what] == 0]
    assert not missing, f"never exercised: {missing}"


def test_record_calibration(rec_lib: ctypes.CDLL) -> None:
    """repeat(n) yields exactly n PCs and n comparisons: the model's
    record counts rest on it."""
    import kcov

    for mode in (kcov.Mode.PC, kcov.Mode.CMP):
        with kcov.open("hosted", entries=4096) as k:
            for n in (1, 7, 300):
                with k.trace(mode):
                    rec_lib.repeat(n)
                assert k.count == n, (mode, n, k.count)
            if mode == kcov.Mode.CMP:
                c = k.comparisons()
                assert int(c.arg1[0]) == 0x4B43 and bool(c.is_const[0])
