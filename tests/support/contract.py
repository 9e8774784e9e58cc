"""The FreeBSD kcov contract matrix (spec bsd-kcov.md §1.11, the 13 cases
of FreeBSD's tests/sys/kern/kcov.c), written once and run against each
provider through its `target` fixture:

* tests/pybind/test_contract.py: the hosted device, where "a syscall" is a
  call into an instrumented library;
* tests/kmod/guest/test_kmod_contract.py: kcov.ko's /dev/kcov in the VM,
  where "a syscall" is a write to the instrumented kcovtest.ko and "thread
  exit" is a real task exit, seen by the module's sched_process_exit probe.

A test module imports the cases (`from tests.support.contract import *`;
tests/support/errno_cases.py holds the errno and mmap tables' cases) and
its conftest defines `target`, an object of the `Target` protocol.  The abuse cases
(close or exit while mapped or running) must not crash; those that end the
process run in a subprocess (`Target.no_close`).
"""
from __future__ import annotations

import errno
import subprocess
import threading
from typing import Callable, Protocol

import pytest

import kcov
from kcov import Mode, State

from .threads import join_os, run_in_thread

__all__ = [
    "Target", "join_os", "run_in_thread",
    "test_kcov_bufsize", "test_kcov_mmap", "test_kcov_mmap_no_munmap", "test_kcov_no_close_subprocess",
    "test_kcov_enable", "test_kcov_enable_no_disable", "test_kcov_mmap_enable_thread_close",
    "test_kcov_basic", "test_kcov_thread", "test_kcov_enable_multi_thread", "test_close_disables_owned",
]


class Target(Protocol):
    """What the matrix needs from a provider."""

    #: Whether one `cmp(n)` records exactly one comparison (hosted), or
    #: at least one (a kernel write path compares more than once).
    exact_cmp: bool

    def open(self, entries: int | None, abi: str = "freebsd", exec_ok: bool = False) -> kcov.Kcov:
        """A descriptor of `abi`, sized to `entries` (and mapped) unless
        None; with `exec_ok`, on a node where PROT_EXEC mappings reach the
        driver (the VFS refuses them on a noexec /dev)."""

    def work(self, n: int) -> None:
        """One instrumented "syscall" that records PCs."""

    def cmp(self, n: int) -> None:
        """One instrumented "syscall" that compares against constant `n`."""

    def join(self, t: threading.Thread) -> None:
        """Wait until thread `t` is gone: for a kernel, until its task has
        exited, which is when kcov sees the exit."""

    def in_thread(self, fn: Callable[[], object]) -> None:
        """Run `fn` in a fresh thread, `join` it, re-raise what it raised."""

    def stats(self) -> dict[str, int] | None:
        """Live descriptors, tasks and buffers, where the provider counts them."""

    def no_close(self, what: str) -> subprocess.CompletedProcess[str]:
        """A process that opens a descriptor, maps it (`mmap`) or also
        enables it and traces (`enable`), prints `exiting STATE` and exits
        without closing anything."""


def head(target: Target, page: int) -> kcov.Kcov:
    """The original's common_head(): one page of entries, mapped."""
    return target.open(page // 8)


def test_kcov_bufsize(target: Target) -> None:
    s = kcov.spec("freebsd")
    with target.open(None) as k:
        for n in (0, 1):
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k.ioctl(s.setbufsize, n)
            assert ei.value.errno == errno.EINVAL
        k.ioctl(s.setbufsize, 2)
        assert k.state == State.READY and k.entries == 2
        with pytest.raises(kcov.KcovBusyError) as ei:
            k.ioctl(s.setbufsize, 2)
        assert ei.value.errno == errno.EBUSY


def test_kcov_mmap(target: Target, page: int) -> None:
    with target.open(None) as k:
        with pytest.raises(kcov.KcovInvalidError):
            k.mmap(page)
        k.ioctl(kcov.spec("freebsd").setbufsize, 2 * page // 8)
        for length in (page, 3 * page):
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k.mmap(length)
            assert ei.value.errno == errno.EINVAL
        a = k.mmap(2 * page)
        b = k.mmap(2 * page)
        assert a.address != b.address
        # Both mappings are the one buffer, first and last word alike.
        for word in (0, 2 * page // 8 - 1):
            a.set_word(word, 0x123456789ABCDEF)
            assert b.word(word) == 0x123456789ABCDEF
            b.set_word(word, 0xFEDCBA9876543210)
            assert a.word(word) == 0xFEDCBA9876543210


def test_kcov_mmap_no_munmap(target: Target, page: int) -> None:
    k = head(target, page)
    m = k.mapping
    before = target.stats()
    k.close()
    after = target.stats()
    if before is not None and after is not None:
        # The descriptor is gone at the close; the mapping keeps the buffer.
        assert after["descriptors"] == before["descriptors"] - 1
        assert after["buffers"] == before["buffers"]
    # The mapping outlives the descriptor, as a kernel's does.
    m.set_word(1, 7)
    assert m.word(1) == 7


@pytest.mark.parametrize("what", ["mmap", "enable"])
def test_kcov_no_close_subprocess(target: Target, what: str) -> None:
    """kcov_mmap_no_munmap_no_close and kcov_enable_no_disable_no_close;
    afterwards, the process exit has freed everything (the guest's
    no_leaks fixture checks kcov.ko's counters)."""
    r = target.no_close(what)
    assert r.returncode == 0, r.stderr
    want = "RUNNING" if what == "enable" else "READY"
    assert r.stdout.strip() == f"exiting {want}"


def test_kcov_enable(target: Target, page: int) -> None:
    s = kcov.spec("freebsd")
    with target.open(None) as k:
        with pytest.raises(kcov.KcovBusyError):
            k.enable(Mode.PC)
        k.init(page // 8)
        with pytest.raises(kcov.KcovInvalidError):
            k.disable()
        with pytest.raises(kcov.KcovInvalidError):
            k.ioctl(s.enable, -1 & 0xFFFFFFFF)
        k.enable(Mode.PC)
        with pytest.raises(kcov.KcovBusyError):
            k.enable(Mode.PC)
        with pytest.raises(kcov.KcovBusyError):
            k.enable(Mode.CMP)
        k.disable()
        with pytest.raises(kcov.KcovInvalidError):
            k.disable()
        k.enable(Mode.CMP)
        assert k.mode == Mode.CMP
        k.disable()


def test_kcov_enable_no_disable(target: Target, page: int) -> None:
    def body() -> None:
        k = head(target, page)
        k.enable(Mode.PC)
        # Close from the owner thread without disabling, via the raw
        # provider, as a C client would: the descriptor goes DYING and
        # FreeBSD stops recording at the close.
        m = k.mapping
        k.provider.close(k.fd)
        m.set_count(0)
        target.work(5)
        assert m.count() == 0
        # The dying descriptor still binds this thread: enabling another
        # fd fails with EINVAL until the thread exits (bsd-kcov.md §1.9).
        with head(target, page) as k2:
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k2.enable(Mode.PC)
            assert ei.value.errno == errno.EINVAL

    target.in_thread(body)
    # Once that thread is gone, enabling works again, and a thread that
    # exits while enabled leaves the descriptor READY for the next one.
    with head(target, page) as k:
        target.in_thread(lambda: k.enable(Mode.PC))
        with k.trace(Mode.PC):
            target.work(5)
            assert k.count > 0


def test_kcov_mmap_enable_thread_close(target: Target, page: int) -> None:
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def worker() -> None:
        k = head(target, page)
        k.enable(Mode.PC)
        box["k"] = k
        ready.set()
        go.wait(30)
        target.work(50)
        try:
            with head(target, page) as k2:
                k2.enable(Mode.PC)
        except kcov.KcovInvalidError as e:
            box["second"] = e.errno
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(30)
    k = box["k"]
    assert isinstance(k, kcov.Kcov) and k.state == State.RUNNING
    k.close()  # another thread's descriptor: closed while RUNNING
    m = k.mapping
    m.set_count(0)
    go.set()
    target.join(t)
    assert done.is_set()
    assert box.get("second") == errno.EINVAL
    # FreeBSD stops recording at the close.
    assert m.count() == 0
    # And this thread can still trace on a fresh descriptor.
    with head(target, page) as k3, k3.trace(Mode.PC):
        target.work(5)
        assert k3.count > 0


@pytest.mark.parametrize("mode", [Mode.PC, Mode.CMP])
def test_kcov_basic(target: Target, page: int, mode: Mode) -> None:
    with head(target, page) as k:
        k.enable(mode)
        k.reset()
        target.cmp(3)
        assert k.count != 0
        k.disable()
        if mode == Mode.PC:
            assert len(k.pcs()) == k.count
        else:
            assert len(k.comparisons()) == k.count


@pytest.mark.parametrize("mode", [Mode.PC, Mode.CMP])
def test_kcov_thread(target: Target, page: int, mode: Mode) -> None:
    with head(target, page) as k:
        k.enable(mode)
        seen: list[int] = []

        def other() -> None:
            k.reset()
            target.cmp(3)
            target.work(10)
            seen.append(k.count)

        target.in_thread(other)
        assert seen == [0], "records changed in a thread that did not enable"
        target.cmp(3)
        assert k.count > 0
        k.disable()


def test_kcov_enable_multi_thread(target: Target, page: int) -> None:
    with head(target, page) as k:
        counts: list[int] = []

        def t1() -> None:
            k.enable(Mode.PC)
            k.reset()
            target.work(3)
            counts.append(k.count)
            # exits without disabling

        def t2() -> None:
            k.enable(Mode.CMP)
            k.reset()
            target.cmp(9)
            recs = k.comparisons()
            counts.append(len(recs))
            counts.append(int((recs.arg2 == 9).sum()))
            k.disable()

        for fn in (t1, t2):
            target.in_thread(fn)
        assert counts[0] > 0
        if target.exact_cmp:
            assert counts[1:] == [1, 1]
        else:
            assert counts[1] > 0 and counts[2] >= 1
        # READY: this thread may enable it.
        assert k.state == State.READY
        with k.trace(Mode.PC):
            target.work(3)
            assert k.count > 0


def test_close_disables_owned(target: Target, page: int) -> None:
    k = head(target, page)
    k.enable(Mode.PC)
    m = k.mapping
    k.close()
    assert k.state == State.CLOSED
    m.set_count(0)
    target.work(3)
    assert m.count() == 0
    # close() disabled first, so this thread is free to enable again.
    with head(target, page) as k2, k2.trace(Mode.PC):
        target.work(3)
        assert k2.count > 0
