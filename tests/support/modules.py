"""Out-of-tree kernel module builds for the kernel suites (tests/kmod,
tests/kprofile, tests/kstress): a build step that fails the test with its
output, and the module it left behind."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from examples.kernel.kmodules import Built

from .kernels import kcov_build_cmd  # noqa: F401  (the suites import it from here)
from .vm import VENV_BIN


def run(cmd: list[str], cwd: Path | None = None) -> float:
    """Run a build step; fail the test with its output if it fails.
    Returns the seconds it took."""
    t0 = time.monotonic()
    env = dict(os.environ, PATH=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
    return time.monotonic() - t0


# A module built out of tree: its directory and how long it took (the
# examples' type, so that their builders and the suites' agree).
Module = Built
