"""Build and run the C kcov clients of tests/runtime/data under kcov-run.

Each client is built like a kernel test would be on its own OS: the driver
(``<name>.c``) plain, against the compat ``<sys/kcov.h>`` or
``<linux/kcov.h>`` of the installed package, and the "kernel" it traces
(``kern_target.c``) with ``-fsanitize-coverage=trace-pc,trace-cmp``, linked
with the hosted runtime.  Binaries are built once per session under pytest's
temporary directory.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.support.prereq import need_tool, own

from runtime_clients import Toolchain

DATA = Path(__file__).parent / "data"
CC = "clang-19"
COVERAGE = ["-fsanitize-coverage=trace-pc,trace-cmp"]
CFLAGS = ["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"build failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")


def coverage_cc(tc: Toolchain, args: list[str]) -> list[str]:
    """The command that compiles instrumented ("kernel") code: kcov-build
    when it is installed and answers, else the same flags by hand."""
    if tc.kcov_build is not None:
        return [str(tc.kcov_build), "--mode", "pc,cmp", "--", CC, *args]
    return [CC, *COVERAGE, *args]


def _find_kcov_build(kcov_run: Path) -> Path | None:
    exe = kcov_run.with_name("kcov-build")
    if not exe.is_file():
        return None
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return exe if proc.returncode == 0 else None


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    need_tool(CC)
    import kcov  # ours: an import error is a failure

    kcov_run = Path(sys.executable).parent / "kcov-run"
    if not kcov_run.is_file():
        found = shutil.which("kcov-run")
        own(found, "kcov-run is not installed")
        kcov_run = Path(str(found))
    tc = Toolchain(Path(kcov.get_include()), Path(kcov.get_lib_dir()), kcov_run,
                   _find_kcov_build(kcov_run))
    own((tc.lib_dir / "libkcovrt.so").is_file(), f"libkcovrt.so not found in {tc.lib_dir}")
    return tc


@pytest.fixture(scope="session")
def build_client(
    toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], Path]:
    """Return build(name, os_name) -> path of the linked client binary."""
    out = tmp_path_factory.mktemp("clients")
    built: dict[tuple[str, str], Path] = {}
    kern_obj = out / "kern_target.o"

    def build(name: str, os_name: str) -> Path:
        key = (name, os_name)
        if key in built:
            return built[key]
        if not kern_obj.exists():
            _run(coverage_cc(toolchain, [*CFLAGS, "-c", str(DATA / "kern_target.c"),
                                         "-o", str(kern_obj)]))
        obj = out / f"{name}.{os_name}.o"
        exe = out / f"{name}.{os_name}"
        _run([CC, *CFLAGS, f"-I{toolchain.compat(os_name)}", f"-I{DATA}", "-c",
              str(DATA / f"{name}.c"), "-o", str(obj)])
        lib = str(toolchain.lib_dir)
        _run([CC, "-pthread", str(obj), str(kern_obj), f"-L{lib}",
              "-Wl,--no-as-needed", "-lkcovrt", f"-Wl,-rpath,{lib}", "-o", str(exe)])
        built[key] = exe
        return exe

    return build
