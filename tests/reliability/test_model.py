"""Model-based test of the hosted kcov device against the reference models
of model.py (issue 7, point 1).

A hypothesis RuleBasedStateMachine sends the same random sequences to the
hosted runtime (through ``kcov._core``'s raw hosted_* calls) and to the
model: open, dup, size, enable, disable, unknown commands, mmap, reset,
record, close, thread start and exit, and fork.  Up to four descriptors of
either personality and three worker threads take part; every call picks a
descriptor and the thread it runs on, and either the descriptor's own
command set or the other ABI's.  After every step the test compares the
call's errno, then every live descriptor's kcovrt_info (state, ABI, mode,
owner thread, entries, capacity, count, dropped records), and the record
count read through a mapping kept from before a close.

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

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,
                                 precondition, rule, run_state_machine_as_test)

from kcov import _core
from model import (ABI_NAMES, COMMANDS, DYING, RUNNING, FREEBSD, FREED, LINUX, LINUX_MAX_ENTRIES,
                   FREEBSD_MAX_ENTRIES, MAP_PRIVATE, MAP_SHARED, PROT_EXEC,
                   PROT_READ, PROT_WRITE, STATE_NAMES, UNKNOWN_CMD, MDesc, Model,
                   MThread)
from rel_workers import Worker

EXAMPLES = int(os.environ.get("KCOV_MODEL_EXAMPLES", "300"))
STEPS = 40
MAX_FDS = 4
MAX_THREADS = 3

# Weighted towards valid, mappable sizes (512 entries: 511 PCs, 127 compares).
SIZES = [512] * 6 + [1024, 2, 3, 0, 1, FREEBSD_MAX_ENTRIES + 1,
                     LINUX_MAX_ENTRIES + 1]
ENABLE_ARGS = [0, 1] * 3 + [2, 0xFFFFFFFF]
RECORDS = [1, 3, 200, 600]
RW = PROT_READ | PROT_WRITE
PROTS = [RW, PROT_READ, RW | PROT_EXEC, PROT_WRITE, 0]
LENGTHS = ["exact", "exact-8", "page", "exact+page", "zero"]
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
REQUIRED = [
    *(f"ioctl {abi} {kind} -> {err}" for abi in ("freebsd", "linux")
      for kind, errs in (("size", ("ok", "EINVAL", "EBUSY", "ENOTTY")),
                         ("enable", ("ok", "EINVAL", "EBUSY", "ENOTTY")),
                         ("disable", ("ok", "EINVAL", "ENOTTY")))
      for err in errs),
    "ioctl none unknown -> EINVAL", "ioctl none unknown -> ENOTTY",
    "mmap freebsd -> ok", "mmap freebsd -> EINVAL", "mmap linux -> ok",
    "mmap linux -> EINVAL", "mmap unsized -> EINVAL",
    "open freebsd", "open linux", "dup", "reset", "thread start", "thread exit", "fork",
    "state OPEN unsized", *(f"state {st_} {abi}" for st_ in ("READY", "RUNNING")
                            for abi in ("freebsd", "linux")),
    "record into RUNNING freebsd", "record into RUNNING linux", "record into DYING linux",
    "close while RUNNING freebsd", "close while RUNNING linux",
    "close -> DYING", "close -> FREED",
    "thread exit bound to RUNNING", "thread exit bound to DYING",
]

pick = st.integers(min_value=0, max_value=7)
# Mostly the descriptor's own command set, sometimes the other ABI's.
other_abi = st.sampled_from([False, False, False, True])


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

    def _cmd_abi(self, d: MDesc, other: bool) -> int:
        own = d.abi or d.personality
        return (LINUX if own == FREEBSD else FREEBSD) if other else own

    def _ioctl(self, i: int, w: int, other: bool, kind: str, arg: int) -> None:
        fd, d = self._fd(i)
        worker, t = self._thread(w, d)
        cmd = UNKNOWN_CMD if kind == "unknown" else \
            COMMANDS[self._cmd_abi(d, other)][kind]
        got = worker.call(lambda: _core.hosted_ioctl(fd, cmd, arg))
        want = self.model.ioctl(d, t, cmd, arg)
        abi = "none" if kind == "unknown" else ABI_NAMES[self._cmd_abi(d, other)]
        event(f"ioctl {abi} {kind} -> {errname(want)}")
        event(f"ioctl {abi} -> {errname(want)}")
        assert got == want, (f"ioctl {kind} {cmd:#x} arg={arg:#x} on fd {fd} "
                             f"from {t.key}: errno {got}, model {want}")

    # --- rules ------------------------------------------------------------------

    @initialize(first=st.sampled_from([FREEBSD, LINUX]),
                size=st.sampled_from([True, True, False]))
    def two_descriptors(self, first: int, size: bool) -> None:
        """Most sequences start from one sized descriptor per ABI."""
        for p in (first, LINUX if first == FREEBSD else FREEBSD):
            self.open_fd(p)
            if size:
                self.size(len(self.fds) - 1, 0, False, 512)

    @precondition(lambda self: len(self.fds) < MAX_FDS)
    @rule(personality=st.sampled_from([FREEBSD, LINUX]))
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
    def size(self, i: int, w: int, other: bool, n: int) -> None:
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
    def enable(self, i: int, w: int, other: bool, mode: int) -> None:
        self._ioctl(i, w, other, "enable", mode)

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick, other=other_abi, arg=st.sampled_from([0, 1]))
    def disable(self, i: int, w: int, other: bool, arg: int) -> None:
        self._ioctl(i, w, other, "disable", arg)

    @precondition(lambda self: self.fds)
    @rule(i=pick, w=pick)
    def unknown_command(self, i: int, w: int) -> None:
        self._ioctl(i, w, False, "unknown", 0)

    @precondition(lambda self: self.fds)
    @rule(i=pick, length=st.sampled_from(LENGTHS), prot=st.sampled_from(PROTS),
          shared=st.booleans(), offset=st.sampled_from(OFFSETS))
    def mmap(self, i: int, length: str, prot: int, shared: bool,
             offset: int) -> None:
        fd, d = self._fd(i)
        exact = d.entries * 8 if d.entries else self.page
        nbytes = {"exact": exact, "exact-8": max(exact - 8, 8),
                  "page": self.page, "exact+page": exact + self.page,
                  "zero": 0}[length]
        flags = MAP_SHARED if shared else MAP_PRIVATE
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
    @rule(i=pick, w=pick, mode=st.sampled_from([0, 1]))
    def enable_valid(self, i: int, w: int, mode: int) -> None:
        self._ioctl(i, w, False, "enable", mode)

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
    def fork(self, i: int, w: int, other: bool, n: int, disable: bool,
             close: bool) -> None:
        """A forked child (starting untraced) enables an inherited
        descriptor in PC mode, records n, maybe disables, maybe closes its
        copy of the fd, and _exit()s; the parent reaps it."""
        fd, d = self._fd(i)
        worker, _ = self._thread(w)
        cmds = COMMANDS[self._cmd_abi(d, other)]
        lib = self.lib

        def child() -> int:
            err = _core.hosted_ioctl(fd, cmds["enable"], 0)
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
        event("fork")
        kid = MThread("child")
        want = self.model.ioctl(d, kid, cmds["enable"], 0)
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
