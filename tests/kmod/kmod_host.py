"""Helpers of the host-side kcov.ko tests (a unique module name, so it
never collides with other test directories' modules): building modules,
the guest script, and reading the guest's JUnit reports."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


from tests.support.prereq import in_ci, need  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "vm"))
sys.path.insert(0, str(REPO / "examples" / "kernel"))  # kmodules: minix.ko, shared with the demo

from harness import VENV_BIN, Vm, VmResult, dmesg_problems, find_vng  # noqa: E402,F401
import kmodules  # noqa: E402,F401

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GUEST = HERE / "guest"
MODULE_SRC = REPO / "runtime" / "linux"


def kcov_build() -> list[str]:
    exe = VENV_BIN / "kcov-build"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "kcov_build"]


def run(cmd: list[str], cwd: Path | None = None) -> float:
    """Run a build step; fail the test with its output if it fails."""
    t0 = time.monotonic()
    env = dict(os.environ, PATH=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
    return time.monotonic() - t0


@dataclass(frozen=True)
class Module:
    dir: Path
    seconds: float

    @property
    def ko(self) -> Path:
        return next(self.dir.glob("*.ko"))

    @property
    def symvers(self) -> Path:
        return self.dir / "Module.symvers"


@dataclass(frozen=True)
class Junit:
    tests: int
    failures: int
    errors: int
    skipped: int
    failed: list[str]
    passed: tuple[str, ...] = ()

    @classmethod
    def read(cls, path: Path) -> Junit | None:
        if not path.is_file():
            return None
        root = ET.parse(path).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        assert suite is not None
        failed = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                  if c.find("failure") is not None or c.find("error") is not None]
        passed = tuple(f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                       if not any(c.find(k) is not None for k in ("failure", "error", "skipped")))
        return cls(int(suite.get("tests", 0)), int(suite.get("failures", 0)),
                   int(suite.get("errors", 0)), int(suite.get("skipped", 0)), failed, passed)

    def summary(self) -> str:
        return (f"{self.tests} tests, {self.failures} failed, {self.errors} errors, "
                f"{self.skipped} skipped" + (f": {self.failed}" if self.failed else ""))


@dataclass(frozen=True)
class GuestRun:
    result: VmResult
    main: Junit | None
    unload: Junit | None


def guest_script(out: Path, kcov_ko: Path, kcovtest_ko: Path) -> str:
    py = f"{VENV_BIN / 'python'} -m pytest -p no:cacheprovider -m vm -q -rfE"
    return (
        f"insmod {kcov_ko} && insmod {kcovtest_ko} || exit 90\n"
        f"{py} --durations=5 --junitxml={out / 'main.xml'} {GUEST} "
        f"--ignore={GUEST / 'test_kmod_unload.py'}\n"
        "rc1=$?\n"
        f"{py} --junitxml={out / 'unload.xml'} {GUEST / 'test_kmod_unload.py'}\n"
        "rc2=$?\n"
        "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]\n"
    )
