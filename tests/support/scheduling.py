"""How pytest-xdist's workers share the suite (tests/conftest.py's
scheduler): units of work and their order, from node ids alone (xdist's
controller schedules node ids, it never sees the items).

* The kernel suites that boot VMs (CHAIN_FOLDERS) are one unit, first: one
  worker goes through them, one VM at a time, in CHAIN_ORDER.
* Each test of tests/kernels is a unit of its own, next: the other worker
  builds the kernels the chain boots, and the chain finds them built
  (tests/support/kernels.py shares a build under a lock).  The chain
  starts with the one kernel it builds itself (clang, for tests/kprofile)
  while the other worker builds the debug and gcc kernels, and ends with
  the suites of the stock kernel, which build none.
* tests/report and tests/runtime are one unit each: their session fixtures
  build what several of their files use, once.
* Every other test file is a unit, those with most tests marked slow first.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

# Folders whose host tests all build a kernel or boot the stock one.
KERNEL_FOLDERS = frozenset({"anchor", "kernels", "kmod", "kprofile", "kstress", "vm"})
# The kernel suites that boot VMs, in the order the chain takes them.
CHAIN_ORDER = ("kprofile", "kstress", "vm", "kmod", "anchor")
CHAIN_FOLDERS = frozenset(CHAIN_ORDER)
FOLDER_SCOPED = frozenset({"report", "runtime"})


def folder(nodeid: str) -> str:
    """The test folder of a node id ("tests/report/test_cli.py::t" -> "report")."""
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if parts[0] == "tests" and len(parts) > 2 else parts[0]


def scope(nodeid: str) -> str:
    """The unit of work a test belongs to."""
    f = folder(nodeid)
    if f in CHAIN_FOLDERS:
        return "kernel"
    if f == "kernels":
        return nodeid
    return f if f in FOLDER_SCOPED else nodeid.split("::", 1)[0]


def order(nodes: Iterable[tuple[str, bool]]) -> list[str]:
    """Node ids, given with whether each is marked slow, in the order their
    units should be handed out: the chain, the kernel builds, then units
    with most slow tests first (stable otherwise)."""
    nodes = list(nodes)
    slow = Counter(scope(n) for n, is_slow in nodes if is_slow)

    def key(nodeid: str) -> tuple[int, int]:
        f = folder(nodeid)
        if f in CHAIN_FOLDERS:
            return 0, CHAIN_ORDER.index(f)
        return (1, 0) if f == "kernels" else (2, -slow[scope(nodeid)])

    return sorted((n for n, _ in nodes), key=key)
