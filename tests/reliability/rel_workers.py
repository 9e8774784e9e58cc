"""Real threads that run commands sent to them, for the model-based test.

A kcov descriptor belongs to the thread that enabled it, so the test needs
enable, record, disable and exit to happen on particular threads.  Each
Worker is an OS thread that executes callables from a queue and hands back
their results.  Its exit is complete only when the OS thread is gone
(Thread.join() returns before glibc runs the thread's key destructors,
which is where the hosted runtime sees the exit), so exit() also waits for
/proc/self/task/TID to disappear.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, Callable

TIMEOUT = 30.0


class Worker:
    """An OS thread that runs callables on request."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._q: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self._res: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._t = threading.Thread(target=self._run, name=f"kcov-{name}",
                                   daemon=True)
        self._t.start()
        ok, tid = self._res.get(timeout=TIMEOUT)
        self.tid: int = tid

    def _run(self) -> None:
        self._res.put((True, threading.get_native_id()))
        while True:
            fn = self._q.get()
            if fn is None:
                return
            try:
                self._res.put((True, fn()))
            except BaseException as e:  # noqa: BLE001 - re-raised by call()
                self._res.put((False, e))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on this thread and return its result (or raise)."""
        self._q.put(fn)
        ok, value = self._res.get(timeout=TIMEOUT)
        if not ok:
            raise value
        return value

    def exit(self) -> None:
        """End the thread and wait until the OS has destroyed it."""
        self._q.put(None)
        self._t.join(TIMEOUT)
        assert not self._t.is_alive(), f"worker {self.name} did not exit"
        path = f"/proc/self/task/{self.tid}"
        deadline = time.monotonic() + TIMEOUT
        while os.path.exists(path):
            assert time.monotonic() < deadline, f"thread {self.tid} lingers"
            time.sleep(0.0005)
