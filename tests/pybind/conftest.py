"""Fixtures for the Python API tests: instrumented libraries and the raw
ioctl numbers of runtime/kcov_abi.h."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest

import kcov
from tests.support.threads import join_os, run_in_thread

from pybind_helpers import DATA, REPO, build_instrumented


@pytest.fixture(scope="session")
def lib_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of data/instr.c built by each available compiler."""
    d = tmp_path_factory.mktemp("instr")
    out = {}
    for cc in ("clang-19", "gcc-12"):
        if shutil.which(cc) is not None:
            out[cc] = build_instrumented(cc, DATA / "instr.c", d / f"libinstr-{cc}.so")
    return out


def _load(lib_paths: dict[str, Path], cc: str) -> ctypes.CDLL:
    if cc not in lib_paths:
        pytest.skip(f"{cc} is not installed")
    lib = ctypes.CDLL(str(lib_paths[cc]))
    lib.cmp_vars.argtypes = [ctypes.c_int64, ctypes.c_int64]
    return lib


@pytest.fixture(scope="session")
def lib(lib_paths: dict[str, Path]) -> ctypes.CDLL:
    """data/instr.c built by clang-19."""
    return _load(lib_paths, "clang-19")


@pytest.fixture(scope="session", params=["clang-19", "gcc-12"])
def any_lib(request: pytest.FixtureRequest, lib_paths: dict[str, Path]) -> tuple[str, ctypes.CDLL]:
    """data/instr.c built by each compiler in turn."""
    return request.param, _load(lib_paths, request.param)


@pytest.fixture(scope="session")
def lib_path(lib_paths: dict[str, Path]) -> Path:
    if "clang-19" not in lib_paths:
        pytest.skip("clang-19 is not installed")
    return lib_paths["clang-19"]


@pytest.fixture(scope="session")
def abi_h() -> dict[str, int]:
    """Every numeric #define of runtime/kcov_abi.h."""
    text = (REPO / "runtime" / "kcov_abi.h").read_text()
    out = {}
    for m in re.finditer(r"^#define\s+(KCOV_\w+)\s+\(?(0x[0-9a-fA-F]+|\d+)(?:UL?)?\b(?:\s*<<\s*(\d+))?",
                         text, re.M):
        v = int(m.group(2), 0)
        if m.group(3):
            v <<= int(m.group(3))
        out[m.group(1)] = v
    return out


@pytest.fixture(scope="session")
def page() -> int:
    import mmap
    return mmap.PAGESIZE


# --- The hosted device as a target of tests/support/contract.py --------------------

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

    def open(self, entries: int | None, abi: str = "freebsd", exec_ok: bool = False) -> kcov.Kcov:
        return kcov.open("hosted", abi=abi, entries=entries)

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
    """The hosted device, for the cases of tests/support/contract.py and
    errno_cases.py."""
    return Hosted(lib, lib_path)
