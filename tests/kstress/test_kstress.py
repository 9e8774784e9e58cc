"""kcov.ko under stress on the stock kernel and on a debug kernel (issue 7,
point 3; the kernel half of point 4).

The debug kernel is linux-source-6.1 built by `kcov-build kernel` with
kernel_conf/linux/debug.config: KASAN (generic, inline, vmalloc too),
KMEMLEAK, LOCKDEP (PROVE_LOCKING) and DEBUG_ATOMIC_SLEEP, and no
CONFIG_KCOV.  Each kernel boots once and runs, with kcov.ko and the
instrumented kcovtest.ko built against it:

* the guest suite (guest/): 8 processes x 2,000 cycles (500 on the debug
  kernel) of tests/kmod's stress program, 8 processes hammering shared
  descriptors (race.c, 64,000 operations), 4,000 random ioctls in every
  state of every ABI, 18,144 mmaps with every wrong length, offset,
  protection and sharing flag; last, unloading while anything is in use
  (refused), and after (succeeds);
* then the checks: dmesg has no WARN, BUG, Oops, KASAN, lockdep or
  atomic-sleep report, lockdep stayed on, and a kmemleak scan after the
  unload (boot leaks cleared first) lists nothing;
* then the negative control, in the same boot: kstressctl.ko commits a WARN
  (both kernels) and, on the debug kernel, a lock inversion, a sleep under
  a spinlock, an out-of-bounds read and a leak, each of which the same
  checks must catch.
"""
from __future__ import annotations

import re

import pytest

from tests.support.kernel import stock
from kstress_host import (CONTROL_DEBUG, BuiltKernel, GuestRun, Module, Payload, has_kasan_checks,
                          kernel_problems, lockdep_debug_locks, parse_kmemleak, phases, vermagic)

pytestmark = pytest.mark.slow

# The debug kernel's options are checked in tests/kernels.


def test_modules_built_for_each_kernel(stock_payload: Payload, debug_payload: Payload,
                                       debug_kcov_plain: Module, debug_kernel: BuiltKernel) -> None:
    release = (debug_kernel.outdir / "include" / "config" / "kernel.release").read_text().strip()
    for m in (stock_payload.kcov, stock_payload.kcovtest, stock_payload.control):
        assert vermagic(m.ko).startswith(f"{stock().release} SMP "), m.ko
    for m in (debug_payload.kcov, debug_payload.kcovtest, debug_payload.control, debug_kcov_plain):
        assert vermagic(m.ko) == f"{release} SMP preempt mod_unload", m.ko
    # The module as shipped is never sanitized (its Kbuild says so); the
    # debug run loads it with KASAN checks of its own, and so the checks
    # cover its own loads and stores.
    assert not has_kasan_checks(debug_kcov_plain.ko)
    assert not has_kasan_checks(stock_payload.kcov.ko)
    assert has_kasan_checks(debug_payload.kcov.ko)
    assert has_kasan_checks(debug_payload.control.ko)


def test_guest_suite(guest: GuestRun) -> None:
    res, main = guest.result, guest.main
    assert main is not None, f"the guest suite left no report\n{res.describe()}"
    assert main.failures == 0 and main.errors == 0, f"{main.summary()}\n{res.describe()}"
    assert main.skipped == 0, main.summary()
    assert main.tests == 2 + 16 + 12 + 1, main.summary()
    assert any(t.endswith("::test_unload_refused_while_in_use_then_succeeds") for t in main.passed), main.passed
    assert res.returncode == 0, res.describe()


def test_dmesg_clean(guest: GuestRun) -> None:
    """Nothing in the kernel log from boot to the end of the kcov phase
    (the kmemleak scans after the unload included)."""
    parts = phases(guest.result.dmesg)
    assert {"kcov", "kcov-done", "control", "control-done"} <= parts.keys(), \
        f"phase marks missing: {sorted(parts)}\n{guest.result.describe()}"
    assert "kcov: /dev/kcov (freebsd) and /sys/kernel/debug/kcov ready" in parts["kcov"]
    for name in ("boot", "boot-done", "kcov", "kcov-done", "kmemleak-done"):
        found = kernel_problems(parts.get(name, ""))
        if name == "boot-done":  # the boot's own leaks, cleared before kcov.ko loads
            found = [line for line in found if "kmemleak:" not in line]
        assert found == [], name


def test_lockdep_stayed_on(debug_run: GuestRun) -> None:
    """lockdep validated the whole run (a report turns it off) and saw
    kcov.ko's locks."""
    assert lockdep_debug_locks(debug_run.file("lockdep-before.txt")) == 1
    assert lockdep_debug_locks(debug_run.file("lockdep-after.txt")) == 1
    classes = debug_run.file("lockdep-kcov.txt")
    assert "&kf->lock" in classes, classes
    assert "kcov_exit" in classes, classes  # the exit work queue


def test_kmemleak_finds_nothing(debug_run: GuestRun) -> None:
    report = debug_run.file("kmemleak-kcov.txt")
    assert (debug_run.out / "kmemleak-kcov.txt").is_file(), debug_run.result.describe()
    leaks = parse_kmemleak(report)
    assert leaks == [], report


def test_negative_control_stock(stock_run: GuestRun) -> None:
    """The dmesg check catches a WARN on the stock kernel."""
    found = kernel_problems(phases(stock_run.result.dmesg)["control"])
    assert any("WARNING:" in line and "[kstressctl]" in line for line in found), found


def test_negative_control_debug(debug_run: GuestRun) -> None:
    """Each deliberate bug of kstressctl.ko is caught by the check that
    passed kcov.ko: the dmesg scan (WARN, lockdep, atomic sleep, KASAN) and
    the kmemleak report."""
    control = phases(debug_run.result.dmesg)["control"]
    found = kernel_problems(control)
    expect = {
        "warn": r"WARNING: .* kstressctl_trigger",
        "lockdep": r"possible circular locking dependency detected",
        "sleep": r"BUG: sleeping function called from invalid context at .*kstressctl\.c",
        "kasan": r"BUG: KASAN: slab-out-of-bounds in kstressctl_kasan",
    }
    assert set(expect) <= set(CONTROL_DEBUG)
    for what, pattern in expect.items():
        assert any(re.search(pattern, line) for line in found), f"{what} not caught: {found[:40]}"
    leaks = parse_kmemleak(debug_run.file("kmemleak-control.txt"))
    ours = [leak for leak in leaks if leak.mentions("kstressctl")]
    assert ours, f"kmemleak missed the control's leak: {leaks}"
    # kmemleak reports the slab object's size (kmalloc-2k), not the 1337 asked.
    assert all(leak.size >= 1337 and "kstressctl leak" in leak.hexdump for leak in ours), ours
