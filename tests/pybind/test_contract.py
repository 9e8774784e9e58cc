"""The FreeBSD kcov contract matrix (spec bsd-kcov.md §1.11, the 13 cases
of tests/sys/kern/kcov.c) through the Python API on the hosted device.

"A syscall" in the original becomes a call into the instrumented library.
The abuse cases (close or exit while mapped or running) must not crash;
those that end the process run in a subprocess.
"""
from __future__ import annotations

import errno
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import kcov
from kcov import Mode, State


def fbsd(entries: int | None) -> kcov.Kcov:
    return kcov.open("hosted", abi="freebsd", entries=entries)


def common_head(page: int) -> kcov.Kcov:
    return fbsd(page // 8)


def run_py(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args],
                          capture_output=True, text=True, timeout=60)


def test_kcov_bufsize() -> None:
    with fbsd(None) as k:
        for n in (0, 1):
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k.ioctl(kcov.spec("freebsd").setbufsize, n)
            assert ei.value.errno == errno.EINVAL
        k.ioctl(kcov.spec("freebsd").setbufsize, 2)
        assert k.state == State.READY and k.entries == 2
        with pytest.raises(kcov.KcovBusyError) as ei:
            k.ioctl(kcov.spec("freebsd").setbufsize, 2)
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
        b.set_word(0, 0xFEDCBA9876543210)
        assert a.word(0) == 0xFEDCBA9876543210


def test_kcov_mmap_no_munmap(page: int) -> None:
    k = common_head(page)
    m = k.mapping
    k.close()
    # The mapping outlives the descriptor, as a kernel's does.
    m.set_word(1, 7)
    assert m.word(1) == 7


NO_CLOSE = """
import sys, ctypes, kcov
lib = ctypes.CDLL(sys.argv[1])
k = kcov.open("hosted", abi="freebsd", entries=512)
if sys.argv[2] == "enable":
    k.enable(kcov.Mode.PC)
    lib.work(5)
    assert k.count > 0
print("exiting", k.state.name, flush=True)
# Keep the descriptor (and the mapping) reachable: no close, no disable.
sys.modules["__main__"].keep = k
"""


@pytest.mark.parametrize("what", ["mmap", "enable"])
def test_kcov_no_close_subprocess(lib_path: Path, what: str) -> None:
    """kcov_mmap_no_munmap_no_close and kcov_enable_no_disable_no_close."""
    r = run_py(NO_CLOSE, str(lib_path), what)
    assert r.returncode == 0, r.stderr
    want = "RUNNING" if what == "enable" else "READY"
    assert r.stdout.strip() == f"exiting {want}"


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


def in_thread(fn: object) -> None:
    """Run `fn` in a fresh thread and re-raise what it raised: the abuse
    cases leave their thread bound to a dying descriptor until it exits."""
    err: list[BaseException] = []

    def body() -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    t = threading.Thread(target=body)
    t.start()
    t.join(30)
    assert not t.is_alive()
    if err:
        raise err[0]


def test_kcov_enable_no_disable(lib: object, page: int) -> None:
    def body() -> None:
        k = common_head(page)
        k.enable(Mode.PC)
        # Close from the owner thread without disabling, via the raw
        # provider, as a C client would: the descriptor goes DYING and
        # recording stops.
        m = k.mapping
        k.provider.close(k.fd)
        m.set_count(0)
        lib.work(5)  # type: ignore[attr-defined]
        assert m.count() == 0
        # The dying descriptor still binds this thread: enabling another
        # fd fails with EINVAL until the thread exits (bsd-kcov.md §1.9).
        with fbsd(page // 8) as k2:
            with pytest.raises(kcov.KcovInvalidError) as ei:
                k2.enable(Mode.PC)
            assert ei.value.errno == errno.EINVAL

    in_thread(body)
    # Once that thread is gone, enabling works again.
    in_thread(lambda: common_head(page).enable(Mode.PC))


def test_kcov_mmap_enable_thread_close(lib: object, page: int) -> None:
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def worker() -> None:
        k = common_head(page)
        k.enable(Mode.PC)
        box["k"] = k
        ready.set()
        go.wait(10)
        lib.work(50)  # type: ignore[attr-defined]
        try:
            with common_head(page) as k2:
                k2.enable(Mode.PC)
        except kcov.KcovInvalidError as e:
            box["second"] = e.errno
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(10)
    k = box["k"]
    assert isinstance(k, kcov.Kcov)
    assert k.state == State.RUNNING
    k.close()  # another thread's descriptor: closed while RUNNING
    m = k.mapping
    m.set_count(0)
    go.set()
    t.join(10)
    assert done.is_set() and not t.is_alive()
    assert box.get("second") == errno.EINVAL
    # FreeBSD stops recording at the close.
    assert m.count() == 0
    # And this thread can still trace on a fresh descriptor.
    with common_head(page) as k3, k3.trace(Mode.PC):
        pass


@pytest.mark.parametrize("mode", [Mode.PC, Mode.CMP])
def test_kcov_basic(lib: object, page: int, mode: Mode) -> None:
    with common_head(page) as k:
        k.enable(mode)
        k.reset()
        lib.cmp_const(3)  # type: ignore[attr-defined]
        assert k.count != 0
        k.disable()
        if mode == Mode.PC:
            assert len(k.pcs()) == k.count
        else:
            assert len(k.comparisons()) == k.count


@pytest.mark.parametrize("mode", [Mode.PC, Mode.CMP])
def test_kcov_thread(lib: object, page: int, mode: Mode) -> None:
    with common_head(page) as k:
        k.enable(mode)
        seen: list[int] = []

        def other() -> None:
            k.reset()
            lib.cmp_const(3)  # type: ignore[attr-defined]
            lib.work(10)  # type: ignore[attr-defined]
            seen.append(k.count)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen == [0], "records changed in a thread that did not enable"
        lib.cmp_const(3)  # type: ignore[attr-defined]
        assert k.count > 0
        k.disable()


def test_kcov_enable_multi_thread(lib: object, page: int) -> None:
    with common_head(page) as k:
        counts: list[int] = []

        def t1() -> None:
            k.enable(Mode.PC)
            k.reset()
            lib.work(3)  # type: ignore[attr-defined]
            counts.append(k.count)
            # exits without disabling

        def t2() -> None:
            k.enable(Mode.CMP)
            k.reset()
            lib.cmp_const(9)  # type: ignore[attr-defined]
            counts.append(k.count)
            recs = k.comparisons()
            counts.append(int(recs.arg2[0]))
            k.disable()

        for fn in (t1, t2):
            th = threading.Thread(target=fn)
            th.start()
            th.join()
        assert counts[0] > 0
        assert counts[1] == 1 and counts[2] == 9
        assert k.state == State.READY


def test_close_disables_owned(lib: object, page: int) -> None:
    k = common_head(page)
    k.enable(Mode.PC)
    m = k.mapping
    k.close()
    assert k.state == State.CLOSED
    m.set_count(0)
    lib.work(3)  # type: ignore[attr-defined]
    assert m.count() == 0
    # close() disabled first, so this thread is free to enable again.
    with common_head(page) as k2, k2.trace(Mode.PC):
        lib.work(3)  # type: ignore[attr-defined]
        assert k2.count > 0

