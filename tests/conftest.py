"""Rules for every test folder.

* Where everything is required (CI=true, or KCOV_REQUIRE_ALL=1 as
  `make test` and `make check` set it), a skip is a failure, however it was
  raised: after `make setup` nothing may be missing, and a suite that skips
  would go green without testing anything.  Guest-only tests outside a VM
  are the exception: they are not missing anything, they run elsewhere.
* Guest-only tests (marked `vm`) skip outside the VM and say where they run;
  the VM harness (tests/support/vm.py) sets KCOV_GUEST=1 in the guest.
* Tests that build a Linux kernel or boot a VM are marked `kernel`: the
  whole host side of the kernel suites, and elsewhere whoever asks for a
  built kernel or boots one.  `make check` deselects them.
* In the guest, each test runs under a watchdog (tests/support/watchdog.py):
  a hung test dumps its Python and kernel stacks and ends the run at once.
* Under pytest-xdist (-n auto), the units of work and their order of
  tests/support/scheduling.py.
* At the end of the run, a table of where the time went, per test folder.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support.prereq import strict, why_strict
from tests.support.scheduling import KERNEL_FOLDERS, order, scope
from tests.support.watchdog import Watchdog

TESTS = Path(__file__).resolve().parent
# Fixtures that build a kernel (tests/report/reportfix.py).
KERNEL_FIXTURES = frozenset({"debug_kernel", "dwarf_kernel"})
GUEST_ONLY = "guest-only: runs inside the VM that tests/kmod, tests/kstress or tests/vm boot"

_seconds: dict[str, float] = defaultdict(float)
_counts: dict[str, int] = defaultdict(int)
_t0 = time.monotonic()
_watchdog: Watchdog | None = None


def in_guest() -> bool:
    return os.environ.get("KCOV_GUEST") == "1"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_guest():
        return
    skip = pytest.mark.skip(reason=GUEST_ONLY)
    for item in items:
        if item.get_closest_marker("vm") is not None:
            item.add_marker(skip)
            continue
        path = Path(str(item.path)).resolve()
        folder = path.relative_to(TESTS).parts[0] if path.is_relative_to(TESTS) else ""
        kernel = folder in KERNEL_FOLDERS or bool(KERNEL_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if kernel:
            item.add_marker(pytest.mark.kernel)
    if hasattr(config, "workerinput"):
        # Under pytest-xdist the longest units come first, so that the
        # scheduler below never leaves one for the end
        # (tests/support/scheduling.py).
        at = {n: i for i, n in enumerate(order((it.nodeid, it.get_closest_marker("slow") is not None)
                                                for it in items))}
        items.sort(key=lambda it: at[it.nodeid])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With workers (make check, make test: -n auto): the units of
    tests/support/scheduling.py."""
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    config.option.loadscopereorder = False
    return UnitScheduling(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    """In the guest, a hung test dumps its stacks and ends the run (tests/support/watchdog.py)."""
    global _watchdog
    if not in_guest():
        yield
        return
    if _watchdog is None:
        _watchdog = Watchdog()
    _watchdog.arm(item.nodeid)
    try:
        yield
    finally:
        _watchdog.disarm()


def _suite(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:2]) if parts[0] == "tests" and len(parts) > 2 else parts[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Counted where reports arrive: the only process, or xdist's controller."""
    _seconds[_suite(report.nodeid)] += report.duration
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _counts[_suite(report.nodeid)] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()
    if rep.skipped and strict() and not hasattr(rep, "wasxfail") and item.get_closest_marker("vm") is None:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"{why_strict()}: everything is required, so this skip is a failure: {reason}"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if not _seconds or in_guest():
        return
    tr = terminalreporter
    tr.section("time per test folder")
    total = sum(_seconds.values())
    for suite, secs in sorted(_seconds.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"{secs:8.1f} s  {100 * secs / total if total else 0:5.1f} %  {_counts[suite]:5d} tests  {suite}")
    workers = getattr(config.option, "numprocesses", None) or 0
    tr.write_line(f"{total:8.1f} s  in tests, {time.monotonic() - _t0:.1f} s wall for the session"
                  + (f" ({workers} workers)" if workers else ""))
