"""The FreeBSD kcov contract matrix (bsd-kcov.md §1.11) against kcov.ko's
/dev/kcov: the cases of tests/support/contract.py, the same ones the hosted
device runs (tests/pybind/test_contract.py).

"A syscall" is a write to the instrumented kcovtest.ko; "thread exit" is a
real task exit, seen by the module's sched_process_exit probe.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from typing import Callable

import pytest

import kcov
from tests.support import kmod_guest as H
from tests.support.contract import *  # noqa: F401,F403 - the cases

pytestmark = pytest.mark.vm

NO_CLOSE = """
import sys, kcov
from tests.support import kmod_guest as H
k = H.open_dev("freebsd", 512)
if sys.argv[1] == "enable":
    k.enable(kcov.Mode.PC)
    H.work(b"5")
    assert k.count > 0
print("exiting", k.state.name, flush=True)
sys.modules["__main__"].keep = k
"""


class KernelModule:
    exact_cmp = False

    def open(self, entries: int | None) -> kcov.Kcov:
        return H.open_dev("freebsd", entries)

    def work(self, n: int) -> None:
        H.work(str(n).encode())

    cmp = work  # kcovtest's write handler compares the number it is given

    def join(self, t: threading.Thread) -> None:
        H.join_os(t)

    def in_thread(self, fn: Callable[[], object]) -> None:
        H.in_thread(fn)

    def stats(self) -> dict[str, int]:
        return H.stats()

    def no_close(self, what: str) -> subprocess.CompletedProcess[str]:
        # The guest's PYTHONPATH (tests/support/vm.py) has the repository.
        return subprocess.run([sys.executable, "-c", NO_CLOSE, what], capture_output=True, text=True,
                              timeout=120)


@pytest.fixture
def target() -> KernelModule:
    return KernelModule()
