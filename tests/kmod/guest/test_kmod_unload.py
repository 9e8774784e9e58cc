"""kcov.ko cannot be unloaded while any descriptor, bound task or mapping
exists.  Run on its own (tests/kmod runs it in a fresh guest process after
the rest): it unloads and reloads both modules."""
from __future__ import annotations

import gc
import os
import subprocess
import threading
from typing import Iterator

import pytest

from tests.support import kmod_guest as H
from kcov import Mode

pytestmark = pytest.mark.vm


def rmmod(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rmmod", name], capture_output=True, text=True, timeout=60)


def insmod(path: str) -> None:
    r = subprocess.run(["insmod", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def kcov_alone() -> Iterator[None]:
    """kcov.ko without its dependent kcovtest.ko, both reloaded after."""
    r = rmmod("kcovtest")
    assert r.returncode == 0, r.stderr
    yield
    gc.collect()
    if not os.path.exists("/sys/module/kcov"):
        insmod(os.environ["KCOV_KO"])
    insmod(os.environ["KCOVTEST_KO"])


@pytest.fixture(autouse=True)
def no_leaks() -> None:  # noqa: PT004 - overrides conftest's check
    """Overrides the suite's check: modules come and go here."""


@pytest.mark.usefixtures("kcov_alone")
def test_unload_blocked_while_in_use() -> None:
    base = H.refcnt()
    # An open descriptor pins the module.
    fd = os.open("/dev/kcov", os.O_RDWR)
    assert H.refcnt() == base + 1
    r = rmmod("kcov")
    assert r.returncode != 0 and "in use" in r.stderr, r.stderr
    os.close(fd)

    # A mapping that outlives its descriptor pins it (it owns the buffer).
    k = H.open_dev("freebsd", H.PAGE // 8)
    m = k.mapping
    k.close()
    r = rmmod("kcov")
    assert r.returncode != 0, "unloaded under a live mapping"
    del m, k
    gc.collect()
    assert H.wait_until(lambda: H.refcnt() == base)

    # A DYING descriptor (closed while RUNNING) pins it until the owner exits.
    ready, go = threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def owner() -> None:
        box["k"] = kk = H.open_dev("freebsd", H.PAGE // 8)
        kk.enable(Mode.PC)
        ready.set()
        go.wait(30)

    t = threading.Thread(target=owner)
    t.start()
    assert ready.wait(30)
    kk = box.pop("k")
    kk.close()
    del kk
    gc.collect()
    assert H.stats()["tasks"] == 1
    r = rmmod("kcov")
    assert r.returncode != 0, "unloaded while a task still owns a descriptor"
    go.set()
    H.join_os(t)
    assert H.wait_until(lambda: H.stats() == {"descriptors": 0, "tasks": 0, "buffers": 0}), H.stats()
    assert H.wait_until(lambda: H.refcnt() == base)
    r = rmmod("kcov")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists("/dev/kcov")
    # And it loads again, cleanly.
    insmod(os.environ["KCOV_KO"])
    assert os.path.exists("/dev/kcov")
