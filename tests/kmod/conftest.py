"""Host side of the kcov.ko tests: build the module and the instrumented
test module kcovtest.ko against the installed Debian kernel headers, boot
the stock kernel (the newest installed /boot/vmlinuz-6.1.*-amd64 with its
headers, tests/support/kernel.py) with virtme-ng, load both
and run the guest suite (guest/, marked `vm`) there.

The guest suite runs in two pytest processes: everything, then
test_kmod_unload.py, which unloads and reloads the modules and needs a
process that holds no descriptor.  Each writes a JUnit report to a
directory shared read-write with the guest.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import kmod_progs
from tests.support.kernel import stock
from kmod_host import (DATA, MODULE_SRC, REPO, GuestRun, Junit, Module, Vm,
                       find_vng, guest_script, kcov_build, kmodules, need, run)


@pytest.fixture(scope="session")
def kdir() -> Path:
    need(shutil.which("gcc-12") is not None, "gcc-12 (the kernel's compiler) is not installed")
    return stock().headers


@pytest.fixture(scope="session")
def kcov_module(kdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kcov.ko built by runtime/linux/Makefile, out of tree."""
    out = tmp_path_factory.mktemp("kcov-module")
    secs = run(["make", "-C", str(MODULE_SRC), f"OUT={out}", f"KDIR={kdir}"])
    return Module(out, secs)


@pytest.fixture(scope="session")
def kcov_module_wrapped(kdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """kcov.ko built by kbuild under kcov-build, which instruments every
    compile it sees unless the build opts out (runtime/linux/Kbuild does)."""
    out = tmp_path_factory.mktemp("kcov-module-wrapped")
    run(["make", "-C", str(MODULE_SRC), f"OUT={out}", "stage"])
    secs = run([*kcov_build(), "--runtime", "none", "--",
                "make", "-C", str(kdir), f"M={out}", "modules"])
    return Module(out, secs)


@pytest.fixture(scope="session")
def kcovtest_module(kdir: Path, kcov_module: Module, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """data/kcovtest built with trace-pc,trace-cmp, its callbacks resolved
    against kcov.ko's Module.symvers."""
    out = tmp_path_factory.mktemp("kcovtest") / "kcovtest"
    shutil.copytree(DATA / "kcovtest", out)
    secs = run([*kcov_build(), "--mode", "pc,cmp", "--runtime", "none", "--",
                "make", "-C", str(kdir), f"M={out}",
                f"KBUILD_EXTRA_SYMBOLS={kcov_module.symvers}", "modules"])
    return Module(out, secs)


@pytest.fixture(scope="session")
def linux_src() -> Path:
    """fs/minix and Documentation/dev-tools/kcov.rst of linux-source-6.1,
    extracted once into .cache/ (examples/kernel/kmodules.py)."""
    need(kmodules.TARBALL.is_file(), f"{kmodules.TARBALL} is missing (apt install linux-source-6.1)")
    return kmodules.linux_source()


@pytest.fixture(scope="session")
def minix_module(kdir: Path, kcov_module: Module, linux_src: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Module:
    """linux-source-6.1's fs/minix as an instrumented, out-of-tree minix.ko."""
    out = tmp_path_factory.mktemp("minix") / "minix"
    built = kmodules.build_minix(out, kcov_module.symvers, kdir, linux_src)
    return Module(built.dir, built.seconds)


@pytest.fixture(scope="session")
def kcovsys_module(kdir: Path, kcov_module: Module, tmp_path_factory: pytest.TempPathFactory) -> Module:
    """data/kcovsys: instrumented code on the system call path, for the
    kcov.rst examples."""
    out = tmp_path_factory.mktemp("kcovsys") / "kcovsys"
    shutil.copytree(DATA / "kcovsys", out)
    secs = run([*kcov_build(), "--mode", "pc,cmp", "--runtime", "none", "--",
                "make", "-C", str(kdir), f"M={out}",
                f"KBUILD_EXTRA_SYMBOLS={kcov_module.symvers}", "modules"])
    return Module(out, secs)


@pytest.fixture(scope="session")
def kmod_programs(linux_src: Path, tmp_path_factory: pytest.TempPathFactory) -> kmod_progs.Programs:
    """kcov.rst's examples, the fork server and the stress program."""
    need(shutil.which("gcc") is not None, "gcc is not installed")
    need(Path("/usr/include/linux/kcov.h").is_file(), "<linux/kcov.h> is missing (apt install linux-libc-dev)")
    rst = (linux_src / "Documentation" / "dev-tools" / "kcov.rst").read_text()
    return kmod_progs.build(tmp_path_factory.mktemp("kmod-progs"), rst)


@pytest.fixture(scope="session")
def guest_run(kcov_module: Module, kcovtest_module: Module, minix_module: Module,
              kcovsys_module: Module, kmod_programs: kmod_progs.Programs,
              tmp_path_factory: pytest.TempPathFactory) -> GuestRun:
    """One boot of the stock kernel running the whole guest suite."""
    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    out = tmp_path_factory.mktemp("kmod-guest")
    vm = Vm(kernel=stock().image, memory="1G", cpus=2, timeout=900, extra_args=(f"--rwdir={out}",),
            symbols=out / "kallsyms")
    script = guest_script(out, kcov_module.ko, kcovtest_module.ko)
    res = vm.run(script, cwd=REPO, env={"KCOV_KO": str(kcov_module.ko),
                                        "KCOVTEST_KO": str(kcovtest_module.ko),
                                        "MINIX_KO": str(minix_module.ko),
                                        "KCOVSYS_KO": str(kcovsys_module.ko),
                                        "KMOD_PROGS": str(kmod_programs.dir)})
    sys.stderr.write(f"\n[kmod] modules built in {kcov_module.seconds:.0f}s + "
                     f"{kcovtest_module.seconds:.0f}s + minix {minix_module.seconds:.0f}s + "
                     f"{kcovsys_module.seconds:.0f}s; guest suite {res.seconds:.0f}s\n")
    return GuestRun(res, Junit.read(out / "main.xml"), Junit.read(out / "unload.xml"))
