"""Helpers shared by the tests/pybind tests (a unique module name, so it
never collides with other test directories' modules)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import kcov

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[2]
FLAGS = ["-O1", "-fPIC", "-shared", "-fsanitize-coverage=trace-pc,trace-cmp"]


def build_instrumented(cc: str, src: Path, out: Path) -> Path:
    """Compile `src` into an instrumented shared library linked against the
    installed libkcovrt; skip if the compiler is missing."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    lib = kcov.get_lib_dir()
    cmd = [cc, *FLAGS, str(src), f"-L{lib}", "-lkcovrt", f"-Wl,-rpath,{lib}",
           "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return out
