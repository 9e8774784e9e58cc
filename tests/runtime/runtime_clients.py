"""Helpers for the tests that build and run the C kcov clients of data/.

Kept out of conftest.py so the test modules can import them by a name no
other test directory uses.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

RUN_TIMEOUT = 120


@dataclass(frozen=True)
class Toolchain:
    include: Path
    lib_dir: Path
    kcov_run: Path
    kcov_build: Path | None = None

    def compat(self, os_name: str) -> Path:
        return self.include / "kcov" / "compat" / os_name


def run_client(
    tc: Toolchain, exe: Path, args: list[str], abi: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [str(tc.kcov_run)]
    if abi is not None:
        cmd += ["--abi", abi]
    cmd += ["--", str(exe), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def list_cases(exe: Path) -> list[str]:
    """The cases a client registers, in order (it prints them without args)."""
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def assert_pass(proc: subprocess.CompletedProcess[str], case: str) -> None:
    """A case passes only with exit status 0 *and* its PASS line."""
    detail = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, f"{case}: exit status {proc.returncode}\n{detail}"
    assert f"PASS {case}\n" in proc.stdout, f"{case}: no PASS line\n{detail}"
    assert "FAIL" not in proc.stdout, detail
