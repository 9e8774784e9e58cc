"""Build Debian's linux-source-6.1 with `kcov-build kernel` (tinyconfig +
kcov.config + vm.config), boot it under qemu with virtme-ng, and use the
kernel's own kcov from the `kcov` Python package inside the VM.

The host judges what the guest reports: the PCs must lie in the kernel's
text and symbolise (with the build's System.map) to the traced syscall, two
syscalls must give different PC sets, comparison records must come back,
the in-guest pytest suite (`-m vm`) must pass, and dmesg must be clean.
"""
from __future__ import annotations

import bisect
import json
from pathlib import Path

import pytest

from tests.support.kernel import stock
from tests.support.kernels import BuiltKernel
from tests.support.vm import REPO, VENV_BIN, Vm, VmResult, dmesg_problems

DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.slow

PYTHON = VENV_BIN / "python"
KERNELS = ["gcc_kernel", "clang_kernel"]


class SymbolMap:
    """Text symbols of a System.map, for PC -> function."""

    def __init__(self, path: Path) -> None:
        syms = []
        for line in path.read_text().splitlines():
            addr, kind, name = line.split()[:3]
            if kind in "tTwW":
                syms.append((int(addr, 16), name))
        syms.sort()
        self.addrs = [a for a, _ in syms]
        self.names = [n for _, n in syms]
        self.all = {n: a for a, n in syms}
        for line in path.read_text().splitlines():
            addr, _kind, name = line.split()[:3]
            self.all.setdefault(name, int(addr, 16))

    def lookup(self, pc: int) -> str:
        # A recorded PC is a return address into the caller of the callback.
        i = bisect.bisect_right(self.addrs, pc - 1) - 1
        return self.names[i] if i >= 0 else "?"


@pytest.fixture(scope="module", params=KERNELS)
def kernel(request: pytest.FixtureRequest, vng_available: None) -> BuiltKernel:
    k: BuiltKernel = request.getfixturevalue(request.param)
    return k


def test_config_and_instrumentation(kernel: BuiltKernel) -> None:
    """Kbuild instrumented the kernel for kcov (tests/kernels checks that
    the fragments' options stuck)."""
    from kcov_build.objcheck import callback_calls

    calls = callback_calls(kernel.outdir / "kernel" / "sys.o")
    fn = next(f for f in calls if "getppid" in f)
    assert calls[fn].get("__sanitizer_cov_trace_pc", 0) > 0, calls[fn]
    assert any(k.startswith("__sanitizer_cov_trace_") and "cmp" in k
               for c in calls.values() for k in c), "no trace-cmp callbacks in kernel/sys.o"
    assert "__sanitizer_cov_trace_pc" in SymbolMap(kernel.system_map).all


GUEST_PYTEST = f"{PYTHON} -m pytest -q -p no:cacheprovider -m vm tests/pybind/test_device.py"


@pytest.fixture(scope="module")
def guest_run(kernel: BuiltKernel) -> VmResult:
    """One boot per kernel: the coverage script, then the in-guest pytest suite."""
    cmd = (f"{PYTHON} {DATA / 'guest_syscall_cov.py'}; echo cov-rc=$?; "
           f"{GUEST_PYTEST}; rc=$?; echo pytest-rc=$rc; exit $rc")
    r = Vm(kernel.image, memory="512M", cpus=1).run(cmd, cwd=REPO, timeout=300)
    assert not r.timed_out, r.describe()
    return r


def test_guest_dmesg_clean(guest_run: VmResult) -> None:
    assert guest_run.dmesg, "no dmesg came back from the guest\n" + guest_run.describe()
    assert "Linux version" in guest_run.dmesg
    assert not dmesg_problems(guest_run.dmesg), guest_run.describe()


def test_syscall_coverage_in_vm(kernel: BuiltKernel, guest_run: VmResult) -> None:
    r = guest_run
    assert "cov-rc=0" in r.stdout.splitlines(), r.describe()
    res = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("{")))
    assert res["abi"] == "LINUX"
    syms = SymbolMap(kernel.system_map)
    stext, etext = syms.all["_stext"], syms.all["_etext"]
    # nokaslr: the guest runs at the link addresses.
    assert res["kallsyms"] == {"_stext": stext, "_etext": etext}

    sets = {}
    for call in ("getppid", "getppid2", "read"):
        pcs = res[call]
        assert pcs, f"{call}: no PCs"
        outside = [hex(p) for p in pcs if not stext <= p < etext]
        assert not outside, f"{call}: PCs outside kernel text: {outside[:5]}"
        sets[call] = set(pcs)
    funcs = {c: {syms.lookup(p) for p in sets[c]} for c in sets}
    assert any("getppid" in f for f in funcs["getppid"]), sorted(funcs["getppid"])
    assert any(f in ("ksys_pread64", "vfs_read", "__x64_sys_pread64") for f in funcs["read"]), \
        sorted(funcs["read"])
    assert not any("getppid" in f for f in funcs["read"])
    assert sets["getppid"] != sets["read"]
    assert sets["getppid"] - sets["read"] and sets["read"] - sets["getppid"]
    # The same call covers the same code.
    assert sets["getppid"] == sets["getppid2"]

    cmp = res["cmp"]
    assert "unsupported" not in cmp, cmp
    assert cmp["n"] > 0
    assert all(stext <= p < etext for p in cmp["pc"])
    assert set(cmp["size"]) <= {1, 2, 4, 8} and cmp["const"] > 0


def test_device_suite_in_vm(guest_run: VmResult) -> None:
    """tests/pybind's in-VM tests (marker vm) pass against the real kcov."""
    r = guest_run
    assert "pytest-rc=0" in r.stdout.splitlines() and r.returncode == 0, r.describe()
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout


def test_stock_debian_kernel_boots(vng_available: None) -> None:
    """The harness also drives the distribution kernel (issue 4's target):
    exit status and dmesg come back; this kernel has no kcov."""
    k = stock()
    r = Vm(k.image).run(f"uname -r; {PYTHON} -c 'import numpy, kcov; print(kcov.__name__)'; exit 3",
                             timeout=300)
    assert r.returncode == 3 and r.vng_returncode == 3, r.describe()
    assert k.release in r.stdout.splitlines(), r.describe()
    assert "kcov" in r.stdout.splitlines()
    assert "Linux version" in r.dmesg and not dmesg_problems(r.dmesg), r.describe()
