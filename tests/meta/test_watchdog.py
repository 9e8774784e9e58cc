"""The guest watchdog (tests/support/watchdog.py) turns a hung test into a
quick failure that shows where it hung, even one stuck in a C call that
holds the GIL, and stays quiet for tests that end."""
from __future__ import annotations

import signal
import subprocess
import sys

from tests.support.prereq import REPO
from tests.support.vm import VmResult
from tests.support.watchdog import WATCHDOG_MARK

HUNG = """
import ctypes, faulthandler, threading, time
from tests.support.watchdog import Watchdog
faulthandler.enable()
def waiting_here():
    time.sleep(30)
threading.Thread(target=waiting_here, daemon=True).start()
def stuck_holding_the_gil():
    ctypes.PyDLL(None).sleep(30)   # PyDLL keeps the GIL across the call
w = Watchdog(sysrq=False)
w.arm("t::ok", 5); w.disarm()
w.arm("t::hung", 1)
stuck_holding_the_gil()
"""

QUICK = """
import time
from tests.support.watchdog import Watchdog
w = Watchdog(sysrq=False)
for i in range(3):
    w.arm(f"t::{i}", 0.5); w.disarm()
time.sleep(1.5)
w.close()
print("done")
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_hung_test_dumps_its_stacks_and_is_ended() -> None:
    r = run(HUNG)
    assert r.returncode == -signal.SIGABRT, r
    assert f"{WATCHDOG_MARK} t::hung still running after 1s" in r.stderr, r.stderr
    assert "t::ok" not in r.stderr
    # Each task's kernel view, then both threads' Python stacks.
    assert r.stderr.count(f"{WATCHDOG_MARK} task ") >= 2, r.stderr
    assert "State:" in r.stderr and "wchan" in r.stderr
    assert "in stuck_holding_the_gil" in r.stderr and "in waiting_here" in r.stderr, r.stderr


def test_tests_that_end_disarm_it() -> None:
    r = run(QUICK)
    assert (r.returncode, r.stdout, r.stderr) == (0, "done\n", "")


def test_the_dump_is_shown_whole_in_assertion_messages() -> None:
    dump = [f"{WATCHDOG_MARK} t still running", *[f"stack line {i}" for i in range(100)]]
    res = VmResult(returncode=None, stdout="", stderr="\n".join(["boot"] * 10 + dump + ["console"] * 60),
                   dmesg="", vng_returncode=None, seconds=1200, timed_out=True)
    text = res.describe()
    assert f"{WATCHDOG_MARK} t still running" in text and "stack line 99" in text
