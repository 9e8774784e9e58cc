"""Unloading kcov.ko while anything of it is in use is refused; once all of
it is gone, the unload succeeds.

Run last (the files run in name order): it removes the modules and leaves
kcov.ko and kcovtest.ko unloaded, so that the kernel can be checked for
leaks after.  Before that, on a kernel with lockdep, it saves the lock
classes lockdep has recorded for kcov.ko ($KSTRESS_OUT/lockdep-kcov.txt),
which the unload takes away.

Every attempt goes through delete_module(2) itself (what rmmod calls, with
O_NONBLOCK), whose refusal is EWOULDBLOCK (a module that is in use) or
EBUSY (one that is coming or going); rmmod's own message is checked too.
"""
from __future__ import annotations

import ctypes
import errno as E
import gc
import os
import subprocess
import threading
from pathlib import Path

import kcov
import pytest

import kstress_guest as G
from kstress_guest import H

pytestmark = pytest.mark.vm

SYS_DELETE_MODULE = 176  # x86_64
_libc = ctypes.CDLL(None, use_errno=True)
ZERO = {"descriptors": 0, "tasks": 0, "buffers": 0}


@pytest.fixture(autouse=True)
def no_leaks() -> None:  # noqa: PT004 - overrides conftest's check
    """Overrides the suite's check: the module goes away here."""


def delete_module(name: str) -> int:
    """0, or the errno of delete_module(name, O_NONBLOCK)."""
    r = _libc.syscall(SYS_DELETE_MODULE, name.encode(), os.O_NONBLOCK)
    return 0 if r == 0 else ctypes.get_errno()


def loaded(name: str) -> bool:
    return Path(f"/sys/module/{name}").is_dir()


def refused(why: str) -> None:
    err = delete_module("kcov")
    assert err in (E.EWOULDBLOCK, E.EBUSY), f"{why}: delete_module -> {E.errorcode.get(err, err)}"
    r = subprocess.run(["rmmod", "kcov"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "in use" in r.stderr, f"{why}: rmmod: {r.returncode} {r.stderr}"
    assert loaded("kcov") and os.path.exists("/dev/kcov"), f"{why}: the module went away"


def still_works() -> None:
    """A refused unload leaves a working device."""
    for abi in (G.LINUX, G.FREEBSD):
        with H.open_dev(abi, G.PAGE // 8) as k:
            k.enable(kcov.Mode.PC)
            k.disable()


def hold_running(abi: str) -> tuple[threading.Thread, threading.Event, dict[str, kcov.Kcov]]:
    """A thread that opens, sizes, maps and enables a descriptor, then waits."""
    ready, go = threading.Event(), threading.Event()
    box: dict[str, kcov.Kcov] = {}

    def owner() -> None:
        box["k"] = k = H.open_dev(abi, G.PAGE // 8)
        k.enable(kcov.Mode.PC)
        ready.set()
        go.wait(60)

    t = threading.Thread(target=owner)
    t.start()
    assert ready.wait(60)
    return t, go, box


def save_lockdep_classes() -> None:
    lockdep = Path("/proc/lockdep")
    if lockdep.is_file():
        lines = [line for line in lockdep.read_text().splitlines() if "kcov" in line or "kf->lock" in line]
        (G.env_path("KSTRESS_OUT") / "lockdep-kcov.txt").write_text("\n".join(lines) + "\n")


def test_unload_refused_while_in_use_then_succeeds() -> None:
    assert loaded("kcov") and loaded("kcovtest")
    save_lockdep_classes()
    assert H.wait_until(lambda: H.stats() == ZERO), H.stats()

    # A module built against kcov.ko's symbols pins it.
    refused("kcovtest.ko loaded")
    assert delete_module("kcovtest") == 0
    assert not loaded("kcovtest")
    base = H.refcnt()

    # An open descriptor, unsized, of either node.
    for path in ("/dev/kcov", "/sys/kernel/debug/kcov"):
        fd = os.open(path, os.O_RDWR)
        refused(f"{path} open")
        os.close(fd)
        assert H.refcnt() == base

    # A sized, mapped descriptor; then the mapping alone, after the close.
    for abi in (G.LINUX, G.FREEBSD, G.NETBSD, G.OPENBSD):
        k = H.open_dev(abi, G.PAGE // 8)
        refused(f"{abi} descriptor mapped")
        m = k.mapping
        k.close()
        refused(f"{abi} mapping without its descriptor")
        del m, k
        gc.collect()
        assert H.wait_until(lambda: H.refcnt() == base), H.refcnt()

    # A running descriptor; then one closed while running (DYING), whose
    # owner is still alive.
    for abi in (G.LINUX, G.FREEBSD):
        t, go, box = hold_running(abi)
        refused(f"{abi} descriptor running")
        box.pop("k").close()
        gc.collect()
        assert H.stats()["tasks"] == 1, H.stats()
        refused(f"{abi} descriptor closed while running, owner alive")
        go.set()
        H.join_os(t)
        assert H.wait_until(lambda: H.stats() == ZERO), H.stats()
        assert H.wait_until(lambda: H.refcnt() == base), H.refcnt()

    still_works()
    assert H.wait_until(lambda: H.stats() == ZERO and H.refcnt() == base)

    # Nothing left: the unload succeeds, and the devices are gone.
    assert delete_module("kcov") == 0
    assert not loaded("kcov")
    assert not os.path.exists("/dev/kcov") and not os.path.exists("/sys/kernel/debug/kcov")

    # It loads again, works, and unloads again.
    r = subprocess.run(["insmod", os.environ["KCOV_KO"]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    still_works()
    assert H.wait_until(lambda: H.stats() == ZERO)
    assert delete_module("kcov") == 0
    assert not loaded("kcov")
