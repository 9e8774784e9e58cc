"""The FreeBSD kcov contract matrix (bsd-kcov.md §1.11) against kcov.ko's
/dev/kcov: the cases of tests/support/contract.py, the same ones the hosted
device runs (tests/pybind/test_contract.py).

"A syscall" is a write to the instrumented kcovtest.ko; "thread exit" is a
real task exit, seen by the module's sched_process_exit probe.
"""
from __future__ import annotations

import pytest

from tests.support.contract import *  # noqa: F401,F403 - the cases; `target` is conftest.py's

pytestmark = pytest.mark.vm
