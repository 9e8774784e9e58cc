"""The FreeBSD kcov contract matrix (spec bsd-kcov.md §1.11) through the
Python API on the hosted device: the cases of tests/support/contract.py,
the same ones kcov.ko runs in the VM (tests/kmod/guest/test_kmod_contract.py).

"A syscall" in the original becomes a call into the instrumented library
(data/instr.c built by clang-19).
"""
from __future__ import annotations

from tests.support.contract import *  # noqa: F401,F403 - the cases; `target` is conftest.py's
