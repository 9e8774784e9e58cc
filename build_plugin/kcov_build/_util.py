"""Small pieces every kcov-build command shares: running a child in the
foreground the way system(3) does.  Files are written by kcov's one atomic
writer, re-exported here."""
from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from typing import Iterator, Mapping, Sequence

from kcov._base.files import write_atomic

__all__ = ["exit_status", "run_foreground", "terminal_signals_ignored", "write_atomic"]


@contextlib.contextmanager
def terminal_signals_ignored() -> Iterator[None]:
    """Like system(3): while a child runs in the foreground, the terminal's
    ^C and ^\\ reach it too; we let it decide, and report how it ended
    instead of dying with a traceback."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def exit_status(rc: int) -> int:
    """A child's status as a shell reports it: 128 + N for death by signal N."""
    return 128 - rc if rc < 0 else rc


def run_foreground(cmd: Sequence[str], prog: str, env: Mapping[str, str] | None = None) -> int:
    """Run cmd, wait for it with terminal signals ignored, return its status
    (126 with a one-line message if it cannot be started)."""
    try:
        proc = subprocess.Popen(list(cmd), env=env)
    except OSError as e:
        print(f"{prog}: {cmd[0]}: {e.strerror}", file=sys.stderr)
        return 126
    with terminal_signals_ignored():
        return exit_status(proc.wait())
