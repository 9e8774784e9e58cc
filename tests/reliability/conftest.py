"""Fixtures for the reliability suite: the instrumented library the
model-based test records from, built once per session with kcov-build."""
from __future__ import annotations

import ctypes
import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzhelp import CC, DATA

from tests.support.prereq import need_tool

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def kcov_build() -> str:
    return need_tool("kcov-build")


@pytest.fixture(scope="session")
def rec_lib_path(kcov_build: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/rec.c as an instrumented shared library (kcov-build, clang-19)."""
    need_tool(CC)
    import kcov

    out = tmp_path_factory.mktemp("rec") / "librec.so"
    cmd = [kcov_build, "--", CC, "-O1", "-fPIC", "-shared",
           f"-I{kcov.get_include()}", str(DATA / "rec.c"), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return out


@pytest.fixture(scope="session")
def rec_lib(rec_lib_path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(rec_lib_path))
    lib.repeat.argtypes = [ctypes.c_int]
    lib.repeat.restype = ctypes.c_int
    return lib


@pytest.fixture(scope="session")
def page() -> int:
    return mmap.PAGESIZE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The executions of test_fuzz_readers.py per reader, when it ran."""
    fuzz = sys.modules.get("fuzzhelp")
    if fuzz is not None and fuzz.EXECUTIONS:
        terminalreporter.section("reader fuzzing: executions")
        for line in fuzz.summary_lines():
            terminalreporter.write_line(line)
