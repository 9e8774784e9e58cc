"""Host side of the kernel stress suite (issue 7, point 3).

Two kernels, each booted once under virtme-ng with the guest suite (guest/,
marked `vm`) and its module builds:

* stock: Debian's newest installed 6.1 kernel (tests/support/kernel.py), modules built against
  Debian's headers (as tests/kmod does);
* debug: linux-source-6.1 built by `kcov-build kernel` with
  kernel_conf/linux/debug.config (KASAN, KMEMLEAK, LOCKDEP, atomic-sleep
  checks, no CONFIG_KCOV), modules built against its build tree; kcov.ko
  with KASAN instrumentation of its own (kstress_host.build_kcov).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.support.kernel import stock

from kstress_host import (BuiltKernel, GuestRun, Module, Payload,
                          build_control, build_debug_kernel, build_kcov, build_kcovtest,
                          build_programs, find_vng, need, run_guest)

# Stress cycles per process: a KASAN + lockdep + kmemleak kernel under TCG
# runs them about 10 times slower than the stock kernel.
CYCLES = {"stock": 2000, "debug": 500}
TIMEOUT = {"stock": 1200.0, "debug": 2400.0}


@pytest.fixture(scope="session")
def debug_kernel(tmp_path_factory: pytest.TempPathFactory) -> BuiltKernel:
    return build_debug_kernel(tmp_path_factory)


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("gcc") is not None, "gcc is not installed")
    need(Path("/usr/include/linux/kcov.h").is_file(), "<linux/kcov.h> is missing (apt install linux-libc-dev)")
    return build_programs(tmp_path_factory.mktemp("kstress-progs"))


def _payload(kind: str, kernel: Path, kdir: Path, kasan: bool, programs: Path,
             tmp: pytest.TempPathFactory) -> Payload:
    root = tmp.mktemp(f"kstress-{kind}-modules")
    kcov = build_kcov(kdir, root / "kcov", kasan=kasan)
    return Payload(kind, kernel, kcov, build_kcovtest(kdir, kcov, root / "kcovtest"),
                   build_control(kdir, root / "kstressctl"), programs, CYCLES[kind])


@pytest.fixture(scope="session")
def stock_payload(programs: Path, tmp_path_factory: pytest.TempPathFactory) -> Payload:
    k = stock()
    need(shutil.which("gcc-12") is not None, "gcc-12 (the kernel's compiler) is not installed")
    return _payload("stock", k.image, k.headers, False, programs, tmp_path_factory)


@pytest.fixture(scope="session")
def debug_payload(debug_kernel: BuiltKernel, programs: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Payload:
    return _payload("debug", debug_kernel.image, debug_kernel.outdir, True, programs, tmp_path_factory)


@pytest.fixture(scope="session")
def debug_kcov_plain(debug_kernel: BuiltKernel, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kcov.ko exactly as shipped (no KASAN of its own), against the debug kernel."""
    return build_kcov(debug_kernel.outdir, tmp_path_factory.mktemp("kstress-debug-plain") / "kcov")


def _boot(p: Payload, tmp: pytest.TempPathFactory) -> GuestRun:
    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    g = run_guest(p, tmp.mktemp(f"kstress-{p.kind}-guest"), TIMEOUT[p.kind])
    t = {k: g.phase_seconds(a, b) for k, (a, b) in
         {"suite": ("kcov", "kcov-done"), "control": ("control", "control-done")}.items()}
    sys.stderr.write(f"\n[kstress {p.kind}] modules built in {p.kcov.seconds:.0f}s + {p.kcovtest.seconds:.0f}s + "
                     f"{p.control.seconds:.0f}s; VM {g.result.seconds:.0f}s "
                     f"(suite {t['suite'] or 0:.0f}s, control {t['control'] or 0:.0f}s)\n")
    return g


@pytest.fixture(scope="session")
def stock_run(stock_payload: Payload, tmp_path_factory: pytest.TempPathFactory) -> GuestRun:
    return _boot(stock_payload, tmp_path_factory)


@pytest.fixture(scope="session")
def debug_run(debug_payload: Payload, tmp_path_factory: pytest.TempPathFactory) -> GuestRun:
    return _boot(debug_payload, tmp_path_factory)


@pytest.fixture(params=["stock", "debug"])
def guest(request: pytest.FixtureRequest) -> GuestRun:
    """Each kernel's run, for the checks both must pass."""
    return request.getfixturevalue(f"{request.param}_run")
