"""Fixtures of the kernel source-based coverage tests (issue 5, kernel part).

One clang-19 kernel, the one tests/vm builds (tests/support/kernels.py: same
fragments, same cache key, and with CI=true the same in-process build), so
CI compiles it once.  Against its build tree: kcov.ko (runtime/linux, the
profile registry alone, since that kernel has its own CONFIG_KCOV),
data/kprofdemo built by `kcov-build --sbcc`, a copy whose link claims the
wrong raw version, and, from the profile of the first boot, kprofdemo
rebuilt with the profile for PGO.  Two boots: the instrumented module, then
the PGO one.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from kprof_host import (DATA, GUEST, MODULE_SRC, PYTHON, REPO, Boot, Module, Vm, find_vng, kcov_build, kernels,
                        need, pgo_use, run)

LLVM = "LLVM=-19"


@pytest.fixture(scope="session")
def kprof_kernel(tmp_path_factory: pytest.TempPathFactory) -> "kernels.BuiltKernel":
    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    need(shutil.which("ld.lld-19") is not None, "ld.lld-19 is not installed (apt install lld-19)")
    return kernels.build_kernel("clang-19", tmp_path_factory)


@pytest.fixture(scope="session")
def kcov_ko(kprof_kernel: "kernels.BuiltKernel", tmp_path_factory: pytest.TempPathFactory) -> Module:
    out = tmp_path_factory.mktemp("kprof-kcov")
    secs = run(["make", "-C", str(MODULE_SRC), f"OUT={out}", f"KDIR={kprof_kernel.outdir}", LLVM])
    return Module(out, secs)


def _copy_demo(dst: Path, name: str = "kprofdemo") -> Path:
    shutil.copytree(DATA / "kprofdemo", dst)
    if name != "kprofdemo":
        (dst / "Kbuild").write_text(f"obj-m := {name}.o\n{name}-y := main.o calc.o\n")
    return dst


@pytest.fixture(scope="session")
def demo_ko(kprof_kernel: "kernels.BuiltKernel", tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kprofdemo.ko by `kcov-build --sbcc -- make -C KDIR M=DIR LLVM=-19 modules`."""
    d = _copy_demo(tmp_path_factory.mktemp("kprof-demo") / "kprofdemo")
    secs = run([*kcov_build(), "--sbcc", "--", "make", "-C", str(kprof_kernel.outdir), f"M={d}", LLVM,
                "modules"])
    return Module(d, secs)


def _manual_link_inputs(d: Path, raw_version: int) -> str:
    """LDFLAGS_MODULE as kcov-build's, by hand (with a chosen raw version)."""
    from kcov_build import kmod_profile

    (d / "kprof.lds").write_text(kmod_profile.linker_script(raw_version))
    (d / "dep.s").write_text(kmod_profile.DEP_ASM)
    run(["clang-19", "-c", str(d / "dep.s"), "-o", str(d / "dep.o")])
    return f"LDFLAGS_MODULE=-T {d / 'kprof.lds'} {d / 'dep.o'}"


@pytest.fixture(scope="session")
def vp_ko(kprof_kernel: "kernels.BuiltKernel", kcov_ko: Module, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kprofvp.ko: kprofdemo by `kcov-build --pgo-generate` (IR PGO), whose
    indirect calls go to kcov.ko's __llvm_profile_instrument_target (modpost
    needs kcov.ko's Module.symvers for that)."""
    d = _copy_demo(tmp_path_factory.mktemp("kprof-vp") / "kprofvp", "kprofvp")
    secs = run([*kcov_build(), "--pgo-generate", "--", "make", "-C", str(kprof_kernel.outdir), f"M={d}", LLVM,
                f"KBUILD_EXTRA_SYMBOLS={kcov_ko.symvers}", "modules"])
    return Module(d, secs)


@pytest.fixture(scope="session")
def bad_ko(kprof_kernel: "kernels.BuiltKernel", tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kprofbad.ko: the same code built by clang-19 (raw v10), but its link
    script claims raw v8, as a module built for another compiler would."""
    d = _copy_demo(tmp_path_factory.mktemp("kprof-bad") / "kprofbad", "kprofbad")
    secs = run(["make", "-C", str(kprof_kernel.outdir), f"M={d}", LLVM,
                "KCFLAGS=-fprofile-instr-generate -fcoverage-mapping", _manual_link_inputs(d, 8), "modules"])
    return Module(d, secs)


def _boot(kernel: "kernels.BuiltKernel", out: Path, args: list[str]) -> Boot:
    vm = Vm(kernel.image, memory="512M", cpus=1, timeout=600, extra_args=(f"--rwdir={out}",))
    cmd = " ".join([str(PYTHON), str(GUEST), str(out), *args])
    res = vm.run(cmd, cwd=REPO)
    phase = args[1]
    report = out / f"{phase}.json"
    assert res.returncode == 0 and report.is_file(), res.describe()
    sys.stderr.write(f"\n[kprofile] {phase} boot: {res.seconds:.0f}s\n")
    return Boot(res, json.loads(report.read_text()), out)


@pytest.fixture(scope="session")
def sbcc_boot(kprof_kernel: "kernels.BuiltKernel", kcov_ko: Module, demo_ko: Module, bad_ko: Module,
              vp_ko: Module, tmp_path_factory: pytest.TempPathFactory) -> Boot:
    out = tmp_path_factory.mktemp("kprof-guest-sbcc")
    return _boot(kprof_kernel, out, [str(kcov_ko.ko), "sbcc", str(demo_ko.ko), str(bad_ko.ko), str(vp_ko.ko)])


@pytest.fixture(scope="session")
def profdata(sbcc_boot: Boot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import kcov.profile

    raw = sbcc_boot.out / "workload.profraw"
    assert raw.is_file(), sbcc_boot.report
    return kcov.profile.merge([raw], tmp_path_factory.mktemp("kprof-profdata") / "kprofdemo.profdata")


@pytest.fixture(scope="session")
def pgo_ko(kprof_kernel: "kernels.BuiltKernel", profdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kprofdemo rebuilt with the profile of the first boot; every function
    must have profile data that matches (-Werror=profile-instr-*)."""
    d = _copy_demo(tmp_path_factory.mktemp("kprof-pgo") / "kprofdemo")
    prefix, kcflags = pgo_use(profdata)
    kcflags += ["-Werror=profile-instr-out-of-date", "-Werror=profile-instr-unprofiled"]
    secs = run([*prefix, "make", "-C", str(kprof_kernel.outdir), f"M={d}", LLVM,
                f"KCFLAGS={' '.join(kcflags)}", "modules"])
    return Module(d, secs)


@pytest.fixture(scope="session")
def pgo_boot(kprof_kernel: "kernels.BuiltKernel", kcov_ko: Module, pgo_ko: Module,
             tmp_path_factory: pytest.TempPathFactory) -> Boot:
    out = tmp_path_factory.mktemp("kprof-guest-pgo")
    return _boot(kprof_kernel, out, [str(kcov_ko.ko), "pgo", str(pgo_ko.ko)])
