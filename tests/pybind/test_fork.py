"""Forked children trace through descriptors their parent opened.

The parent opens, sizes and maps 4 hosted descriptors; each child enables
one, calls the instrumented library and _exit()s without disabling.  The
parent sees each child's records through the shared mapping, and once the
child is reaped the descriptor is READY and can be enabled again
(bsd-kcov.md §1.9, §4.3).
"""
from __future__ import annotations

import os
from typing import Any

import pytest

import kcov
from kcov import Mode, State

NDESC = 4
NCHILD = 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_children(lib: Any) -> None:
    ks = [kcov.open("hosted", abi="freebsd", entries=512) for _ in range(NDESC)]
    try:
        for first in range(0, NCHILD, NDESC):
            pids = {}
            for i, k in enumerate(ks):
                child_id = first + i + 1
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        k.enable(Mode.CMP)
                        k.reset()
                        lib.cmp_const(child_id)
                        code = 0
                    finally:
                        os._exit(code)
                pids[pid] = (k, child_id)
            for pid, (k, child_id) in pids.items():
                _, status = os.waitpid(pid, 0)
                assert os.waitstatus_to_exitcode(status) == 0
                # The child exited while RUNNING; the reaped owner leaves
                # the descriptor READY again.
                assert k.state == State.READY
                c = k.comparisons()
                assert len(c) == 1
                assert int(c.arg1[0]) == 0x1234ABCD
                assert int(c.arg2[0]) == child_id
                assert bool(c.is_const[0])
                k.reset()
        for k in ks:
            with k.trace(Mode.PC):
                lib.work(3)
                assert k.count > 0
    finally:
        for k in ks:
            k.close()
