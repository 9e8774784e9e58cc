"""Concurrent lifetimes across 8 processes, against kcov.ko.

* tests/kmod's stress program (tests/kmod/data/progs/stress.c): 8 processes,
  four in the Linux ABI and four in FreeBSD's, each cycling through open /
  size / map / enable / record / disable or thread exit or close while
  enabled / close, with a forked child every 16th cycle.
* race.c (../data): four descriptors shared by 8 processes of 2 threads
  each, which size, map, enable, disable, record, exit while enabled and
  close them at random, at once; only documented errnos may come back and
  the count word never exceeds the buffer.

Afterwards every descriptor, bound task and buffer is gone.  The kernel log
is checked by the host, for the whole run (tests/kstress/test_kstress.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import kstress_guest as G

pytestmark = pytest.mark.vm

PROCESSES = 8
ZERO = {"descriptors": 0, "tasks": 0, "buffers": 0}


def cycles() -> int:
    return int(os.environ.get("KSTRESS_CYCLES", "2000"))


def test_stress_8_processes() -> None:
    progs = G.env_path("KSTRESS_PROGS")
    n = cycles()
    assert G.H.stats() == ZERO, "descriptors left over before the stress run"
    t0 = time.monotonic()
    runs = {abi: subprocess.Popen([str(progs / f"stress-{abi}"), str(PROCESSES // 2), str(n)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for abi in ("linux", "freebsd")}
    for abi, p in runs.items():
        out, err = p.communicate(timeout=1500)
        assert p.returncode == 0, f"{abi}: {out}{err}"
        assert f"stress {abi}: {PROCESSES // 2 * n} cycles, 0 failed processes" in out, out
        sys.stderr.write(f"{out.strip()}\n")
    sys.stderr.write(f"stress: {PROCESSES} x {n} cycles in {time.monotonic() - t0:.1f} s\n")
    assert G.H.wait_until(lambda: G.H.stats() == ZERO, 30), f"leaked: {G.H.stats()}"


def test_race_shared_descriptors() -> None:
    progs = G.env_path("KSTRESS_PROGS")
    gens = int(os.environ.get("KSTRESS_RACE_GENERATIONS", "20"))
    ops = int(os.environ.get("KSTRESS_RACE_OPS", "200"))
    t0 = time.monotonic()
    p = subprocess.run([str(progs / "race"), str(PROCESSES), str(gens), str(ops), "0x5eed"],
                       capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0, f"race failed ({p.returncode}):\n{p.stdout}{p.stderr}"
    line = p.stdout.strip().splitlines()[-1]
    total = gens * PROCESSES * 2 * ops
    assert line.startswith(f"race: {total} ops, 0 unexpected, ") and line.endswith(" 0 failed processes"), line
    assert int(line.split(", ")[2].split()[0]) > 0, f"nothing was ever recorded: {line}"
    sys.stderr.write(f"{line} in {time.monotonic() - t0:.1f} s\n")
    assert G.H.wait_until(lambda: G.H.stats() == ZERO, 30), f"leaked: {G.H.stats()}"
