"""Threads whose end kcov must see: joined until the OS task is gone.

Kept apart from the test cases (no pytest import), so guest helpers and
the processes they start import quickly."""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

__all__ = ["join_os", "run_in_thread"]


def join_os(t: threading.Thread, timeout: float = 30.0) -> None:
    """Join `t` and wait until its task is gone.

    Python's join returns when the thread's Python state is released,
    before the OS thread has run its TLS destructors (where the hosted
    runtime sees a thread exit) and do_exit() (where kcov.ko does)."""
    tid = t.native_id
    t.join(timeout)
    assert not t.is_alive()
    end = time.monotonic() + timeout
    while os.path.exists(f"/proc/self/task/{tid}"):
        assert time.monotonic() < end, f"task {tid} still there {timeout}s after its thread ended"
        time.sleep(0.005)


def run_in_thread(fn: Callable[[], object], join: Callable[[threading.Thread], None] = join_os) -> None:
    """Run `fn` in a fresh thread, `join` it, re-raise what it raised."""
    err: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    t = threading.Thread(target=body)
    t.start()
    join(t)
    if err:
        raise err[0]
