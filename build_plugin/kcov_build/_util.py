"""Small pieces every kcov-build command shares: atomic writes and
running a child in the foreground the way system(3) does."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence


def write_atomic(
    path: Path, data: str | bytes, *, mode: int | None = None, errors: str = "strict", mkdir: bool = True
) -> None:
    """Write data to path through a temporary file in the same directory,
    fsync'd and renamed into place: readers see the old file or the new one,
    never half of it.  mode, if given, is applied before the rename; with
    mkdir, missing parent directories are created."""
    directory = path.parent if str(path.parent) else Path(".")
    if mkdir:
        directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as fb:
                fb.write(data)
                fb.flush()
                os.fsync(fb.fileno())
        else:
            with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as ft:
                ft.write(data)
                ft.flush()
                os.fsync(ft.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
