"""A per-test watchdog for the pytest suites that run inside a VM.

A guest test that hangs (a process stuck in a system call of a module under
test, or in a C call that holds the GIL) used to leave nothing behind: the
host's timeout killed qemu after 20 minutes and the log ended at the last
kernel message.  The watchdog is a separate process (so neither a held GIL
nor a stuck thread can stop it), told by the test process when each test
starts and ends.  When a test has run for `KCOV_GUEST_TEST_TIMEOUT` seconds
(default 400), it writes to stderr, every line marked with `WATCHDOG_MARK`:

* for every task of the test process: its state, wait channel and kernel
  stack (/proc/PID/task/*/stack, readable as root, which the guest is);
* with `sysrq`, the kernel's list of blocked tasks and CPU backtraces
  (sysrq `w` and `l`, into the kernel log and so the host's console
  capture; only ever in a guest: it is the log of the machine it runs on);

then sends the test process SIGABRT, whose handler (faulthandler, which
pytest enables) prints the Python stack of every thread, and SIGKILL five
seconds later.  The guest script goes on to save dmesg, and the host sees
a failure in seconds instead of a 20-minute timeout.  VmResult.describe()
shows the watchdog's section whole.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

WATCHDOG_MARK = "kcov-watchdog:"
DEFAULT_SECONDS = 400.0


def seconds() -> float:
    return float(os.environ.get("KCOV_GUEST_TEST_TIMEOUT", DEFAULT_SECONDS))


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError as e:
        return f"({e.strerror})"


def dump(pid: int, test: str, after: float, sysrq: bool, err: IO[str]) -> None:
    """What the kernel says of process `pid`'s tasks, to `err`."""
    err.write(f"\n{WATCHDOG_MARK} {test} still running after {after:.0f}s\n")
    tasks = Path(f"/proc/{pid}/task")
    for task in sorted(tasks.iterdir(), key=lambda p: int(p.name)) if tasks.is_dir() else ():
        state = next((line for line in _read(task / "status").splitlines()
                      if line.startswith("State:")), "State: ?")
        err.write(f"{WATCHDOG_MARK} task {task.name} ({_read(task / 'comm')}) {state}, "
                  f"wchan {_read(task / 'wchan')}\n{_read(task / 'stack')}\n")
    for key in "wl" if sysrq else "":
        try:
            Path("/proc/sysrq-trigger").write_text(key)
        except OSError as e:
            err.write(f"{WATCHDOG_MARK} sysrq {key}: {e.strerror}\n")
    if sysrq:
        err.write(f"{WATCHDOG_MARK} blocked tasks and CPU backtraces are in the kernel log\n")
    err.write(f"{WATCHDOG_MARK} SIGABRT to {pid}: Python stacks follow\n")
    err.flush()


def serve(pid: int, sysrq: bool, commands: int, err: IO[str]) -> None:
    """The watchdog process: `arm SECONDS TEST` and `disarm` lines on file
    descriptor `commands`; end of file ends it."""
    deadline: float | None = None
    after, test, pending = 0.0, "", b""
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if select.select([commands], [], [], wait)[0]:
            chunk = os.read(commands, 65536)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                verb, *rest = line.decode(errors="replace").split(" ", 2)
                if verb == "arm":
                    after, test = float(rest[0]), rest[1]
                    deadline = time.monotonic() + after
                else:
                    deadline = None
        elif deadline is not None:
            dump(pid, test, after, sysrq, err)
            os.kill(pid, signal.SIGABRT)
            time.sleep(5)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


class Watchdog:
    """The watchdog of this process: `arm()` before a test, `disarm()` after."""

    def __init__(self, sysrq: bool = True) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.watchdog", str(os.getpid()), "1" if sysrq else "0"],
            stdin=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
        assert self._proc.stdin is not None
        self._cmd = self._proc.stdin

    def arm(self, test: str, after: float | None = None) -> None:
        self._cmd.write(f"arm {seconds() if after is None else after} {test}\n")
        self._cmd.flush()

    def disarm(self) -> None:
        self._cmd.write("disarm\n")
        self._cmd.flush()

    def close(self) -> None:
        self._cmd.close()
        self._proc.wait(10)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2] == "1", sys.stdin.fileno(), sys.stderr)
