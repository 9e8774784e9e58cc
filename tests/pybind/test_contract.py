"""The FreeBSD kcov contract matrix (spec bsd-kcov.md §1.11) through the
Python API on the hosted device: the cases of tests/support/contract.py,
the same ones kcov.ko runs in the VM (tests/kmod/guest/test_kmod_contract.py).

"A syscall" in the original becomes a call into the instrumented library
(data/instr.c built by clang-19).
"""
from __future__ import annotations

import ctypes
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest

import kcov
from tests.support.contract import *  # noqa: F401,F403 - the cases
from tests.support.contract import join_os, run_in_thread

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


class Hosted:
    exact_cmp = True  # instr.c's cmp_const compares once

    def __init__(self, lib: ctypes.CDLL, lib_path: Path) -> None:
        self.lib, self.lib_path = lib, lib_path

    def open(self, entries: int | None) -> kcov.Kcov:
        return kcov.open("hosted", abi="freebsd", entries=entries)

    def work(self, n: int) -> None:
        self.lib.work(n)

    def cmp(self, n: int) -> None:
        self.lib.cmp_const(n)

    def join(self, t: threading.Thread) -> None:
        join_os(t)

    def in_thread(self, fn: Callable[[], object]) -> None:
        run_in_thread(fn)

    def stats(self) -> None:
        return None

    def no_close(self, what: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", NO_CLOSE, str(self.lib_path), what],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture
def target(lib: ctypes.CDLL, lib_path: Path) -> Hosted:
    return Hosted(lib, lib_path)
