"""The stress run: 8 processes x 2,000 cycles of open / size / map / enable /
record / disable or exit / close against kcov.ko (data/progs/stress.c), four
processes in the Linux ABI and four in FreeBSD's at the same time.  After
it every descriptor, bound task and buffer is gone and the kernel log has
no new WARN, BUG, Oops or KFENCE report."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import kmod_guest as H


from tests.support.vm import dmesg_problems  # noqa: E402

pytestmark = pytest.mark.vm

PROCESSES = 8
CYCLES = 2000
ZERO = {"descriptors": 0, "tasks": 0, "buffers": 0}


def dmesg() -> str:
    return subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout


def test_stress() -> None:
    if "KMOD_PROGS" not in os.environ:
        pytest.fail("KMOD_PROGS is not set (run by tests/kmod)")
    progs = Path(os.environ["KMOD_PROGS"])
    assert H.stats() == ZERO, "descriptors left over before the stress run"
    log_before = len(dmesg_problems(dmesg()))
    t0 = time.monotonic()
    runs = {abi: subprocess.Popen([str(progs / f"stress-{abi}"), str(PROCESSES // 2), str(CYCLES)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for abi in ("linux", "freebsd")}
    for abi, p in runs.items():
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"{abi}: {out}{err}"
        assert f"stress {abi}: {PROCESSES // 2 * CYCLES} cycles, 0 failed processes" in out, out
        sys.stderr.write(f"{out.strip()}\n")
    sys.stderr.write(f"stress: {PROCESSES} x {CYCLES} cycles in {time.monotonic() - t0:.1f} s\n")
    assert H.wait_until(lambda: H.stats() == ZERO, 20), f"leaked: {H.stats()}"
    assert len(dmesg_problems(dmesg())) == log_before, dmesg_problems(dmesg())
