"""The FreeBSD kcov contract matrix (bsd-kcov.md §1.11, the 13 cases of
tests/sys/kern/kcov.c) against kcov.ko's /dev/kcov, following the hosted
version in tests/pybind/test_contract.py case by case.

"A syscall" is a write to the instrumented kcovtest.ko; "thread exit" is a
real task exit, seen by the module's sched_process_exit probe.
"""
from __future__ import annotations

import errno
import subprocess
import sys
import threading

import pytest

import kcov
import kmod_guest as H
from kcov import Mode

pytestmark = pytest.mark.vm


def fbsd(entries: int | None) -> kcov.Kcov:
    return H.open_dev("freebsd", entries)


def common_head(page: int) -> kcov.Kcov:
    return fbsd(page // 8)


def test_kcov_bufsize() -> None:
    s = kcov.spec("freebsd")
    with fbsd(None) as k:
        for n in (0, 1):
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k.ioctl(s.setbufsize, n)
            assert ei.value.errno == errno.EINVAL
        k.ioctl(s.setbufsize, 2)
        assert k.state == kcov.State.READY and k.entries == 2
        with pytest.raises(kcov.KcovBusyError) as ei:
            k.ioctl(s.setbufsize, 2)
        assert ei.value.errno == errno.EBUSY


def test_kcov_mmap(page: int) -> None:
    with fbsd(None) as k:
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
        a.set_word(0, 0x123456789ABCDEF)
        assert b.word(0) == 0x123456789ABCDEF
        b.set_word(511, 0xFEDCBA9876543210)
        assert a.word(511) == 0xFEDCBA9876543210


def test_kcov_mmap_no_munmap(page: int) -> None:
    k = common_head(page)
    m = k.mapping
    before = H.stats()
    k.close()
    # The descriptor is gone at the close; the mapping keeps the buffer.
    assert H.stats()["descriptors"] == before["descriptors"] - 1
    assert H.stats()["buffers"] == before["buffers"]
    m.set_word(1, 7)
    assert m.word(1) == 7


NO_CLOSE = """
import sys, kcov
sys.path.insert(0, sys.argv[1])
import kmod_guest as H
k = H.open_dev("freebsd", 512)
if sys.argv[2] == "enable":
    k.enable(kcov.Mode.PC)
    H.work(b"5")
    assert k.count > 0
print("exiting", k.state.name, flush=True)
sys.modules["__main__"].keep = k
"""


@pytest.mark.parametrize("what", ["mmap", "enable"])
def test_kcov_no_close_subprocess(what: str) -> None:
    """kcov_mmap_no_munmap_no_close and kcov_enable_no_disable_no_close."""
    r = subprocess.run([sys.executable, "-c", NO_CLOSE, str(H.Path(__file__).parent), what],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    want = "RUNNING" if what == "enable" else "READY"
    assert r.stdout.strip() == f"exiting {want}"
    # no_leaks: the process exit freed the descriptor, task and buffer.


def test_kcov_enable(page: int) -> None:
    s = kcov.spec("freebsd")
    with fbsd(None) as k:
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


def test_kcov_enable_no_disable(page: int) -> None:
    def body() -> None:
        k = common_head(page)
        k.enable(Mode.PC)
        m = k.mapping
        # Close from the owner thread without disabling: DYING, and
        # FreeBSD stops recording at the close.
        k.provider.close(k.fd)
        m.set_count(0)
        H.work(b"5")
        assert m.count() == 0
        # The dying descriptor still binds this thread (bsd-kcov.md §1.9).
        with fbsd(page // 8) as k2:
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k2.enable(Mode.PC)
            assert ei.value.errno == errno.EINVAL

    H.in_thread(body)
    # Once that thread is gone, enabling works again, and exiting while
    # enabled leaves the descriptor READY for the next thread.
    with common_head(page) as k:
        H.in_thread(lambda: k.enable(Mode.PC))
        with k.trace(Mode.PC):
            H.work(b"5")
            assert k.count > 0


def test_kcov_mmap_enable_thread_close(page: int) -> None:
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def worker() -> None:
        k = common_head(page)
        k.enable(Mode.PC)
        box["k"] = k
        ready.set()
        go.wait(30)
        H.work(b"50")
        try:
            with common_head(page) as k2:
                k2.enable(Mode.PC)
        except kcov.KcovInvalidError as e:
            box["second"] = e.errno
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(30)
    k = box["k"]
    assert isinstance(k, kcov.Kcov)
    k.close()  # another thread's descriptor: closed while RUNNING
    m = k.mapping
    m.set_count(0)
    go.set()
    H.join_os(t)
    assert done.is_set()
    assert box.get("second") == errno.EINVAL
    assert m.count() == 0
    with common_head(page) as k3, k3.trace(Mode.PC):
        H.work(b"5")
        assert k3.count > 0


@pytest.mark.parametrize("mode", [Mode.PC, Mode.CMP])
def test_kcov_basic(page: int, mode: Mode) -> None:
    with common_head(page) as k:
        k.enable(mode)
        k.reset()
        H.work(b"3")
        assert k.count != 0
        k.disable()
        if mode == Mode.PC:
            assert len(k.pcs()) == k.count
        else:
            assert len(k.comparisons()) == k.count


@pytest.mark.parametrize("mode", [Mode.PC, Mode.CMP])
def test_kcov_thread(page: int, mode: Mode) -> None:
    with common_head(page) as k:
        k.enable(mode)
        seen: list[int] = []

        def other() -> None:
            k.reset()
            H.work(b"3")
            H.work(b"abc")
            seen.append(k.count)

        H.in_thread(other)
        assert seen == [0], "records changed in a thread that did not enable"
        H.work(b"3")
        assert k.count > 0
        k.disable()


def test_kcov_enable_multi_thread(page: int) -> None:
    with common_head(page) as k:
        counts: list[int] = []

        def t1() -> None:
            k.enable(Mode.PC)
            k.reset()
            H.work(b"3")
            counts.append(k.count)
            # exits without disabling

        def t2() -> None:
            k.enable(Mode.CMP)
            k.reset()
            H.work(b"9")
            recs = k.comparisons()
            counts.append(len(recs))
            counts.append(int((recs.arg2 == 9).sum()))
            k.disable()

        for fn in (t1, t2):
            H.in_thread(fn)
        assert counts[0] > 0
        assert counts[1] > 0 and counts[2] >= 1
        # READY in the kernel: this thread may enable it.
        with k.trace(Mode.PC):
            H.work(b"3")


def test_close_disables_owned(page: int) -> None:
    k = common_head(page)
    k.enable(Mode.PC)
    m = k.mapping
    k.close()
    m.set_count(0)
    H.work(b"3")
    assert m.count() == 0
    with common_head(page) as k2, k2.trace(Mode.PC):
        H.work(b"3")
        assert k2.count > 0
