"""kcov.ko, the runtime as a Linux kernel module (issue 4, points 1-2):
built against the installed Debian headers, never instrumented itself,
exporting the SanitizerCoverage callbacks, and passing the guest suite
(guest/) on the stock Debian kernel in a VM, with a clean kernel log."""
from __future__ import annotations

import subprocess

import pytest
from kmod_host import GUEST, GuestRun, Module, dmesg_problems
from kcov_build.objcheck import callback_calls

from tests.support.collect import collected
from tests.support.kernel import stock

pytestmark = pytest.mark.slow

CALLBACKS = [
    "__sanitizer_cov_trace_pc",
    *(f"__sanitizer_cov_trace_{c}cmp{n}" for c in ("", "const_") for n in (1, 2, 4, 8)),
    "__sanitizer_cov_trace_switch",
    "__sanitizer_cov_trace_cmpf",
    "__sanitizer_cov_trace_cmpd",
]


def modinfo(ko: object, field: str) -> str:
    return subprocess.run(["modinfo", "-F", field, str(ko)], capture_output=True, text=True,
                          check=True).stdout.strip()


def exports(symvers: object) -> dict[str, str]:
    out = {}
    with open(str(symvers)) as f:
        for line in f:
            _crc, sym, _mod, kind, *_ = line.rstrip("\n").split("\t")
            out[sym] = kind
    return out


def assert_not_instrumented(m: Module) -> None:
    calls = callback_calls(m.ko)
    assert "__sanitizer_cov_trace_pc" in calls, "callback definitions missing from the module"
    bad = {f: c for f, c in calls.items() if c}
    assert not bad, f"kcov.ko calls coverage callbacks itself: {bad}"


def test_module_builds_exports_and_is_not_instrumented(kcov_module: Module) -> None:
    assert_not_instrumented(kcov_module)
    ex = exports(kcov_module.symvers)
    assert {s: ex.get(s) for s in CALLBACKS} == {s: "EXPORT_SYMBOL" for s in CALLBACKS}
    assert modinfo(kcov_module.ko, "license") == "GPL"
    assert modinfo(kcov_module.ko, "vermagic").startswith(f"{stock().release} ")
    params = {line.split(":", 1)[0] for line in modinfo(kcov_module.ko, "parm").splitlines()}
    assert params >= {"bsd_abi", "max_entries", "debugfs"}


def test_module_stays_uninstrumented_under_kcov_build(kcov_module_wrapped: Module) -> None:
    assert_not_instrumented(kcov_module_wrapped)


def test_test_module_is_instrumented_against_kcov(kcovtest_module: Module) -> None:
    calls = callback_calls(kcovtest_module.ko)
    write = calls["kcovtest_write"]
    assert write.get("__sanitizer_cov_trace_pc", 0) > 0
    assert any(k.startswith("__sanitizer_cov_trace_const_cmp") for k in write)
    assert "__sanitizer_cov_trace_switch" in calls["kcovtest_classify"]
    assert modinfo(kcovtest_module.ko, "depends") == "kcov"


def test_guest_suite(guest_run: GuestRun) -> None:
    res, main = guest_run.result, guest_run.main
    assert main is not None, f"the guest suite left no report\n{res.describe()}"
    assert main.failures == 0 and main.errors == 0, f"{main.summary()}\n{res.describe()}"
    assert main.skipped == 0, main.summary()
    # Exactly what pytest collects here for the same selection.
    want = collected("-m", "vm", GUEST, f"--ignore={GUEST / 'test_kmod_unload.py'}")
    assert main.tests == want, f"{main.summary()}: {want} tests expected"


def test_guest_unload(guest_run: GuestRun) -> None:
    res, unload = guest_run.result, guest_run.unload
    assert unload is not None, f"the unload test left no report\n{res.describe()}"
    assert unload.tests == 1 and not unload.failed and unload.skipped == 0, \
        f"{unload.summary()}\n{res.describe()}"
    assert res.returncode == 0, res.describe()


def test_guest_dmesg_clean(guest_run: GuestRun) -> None:
    dmesg = guest_run.result.dmesg
    assert "kcov: /dev/kcov (freebsd) and /sys/kernel/debug/kcov ready" in dmesg, \
        guest_run.result.describe()
    assert dmesg_problems(dmesg) == []
