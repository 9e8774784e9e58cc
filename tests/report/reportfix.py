"""Fixtures and helpers of the kcov.report tests (conftest.py re-exports the
fixtures; test files import helpers from here: a unique module name, since
`from conftest import` gets whichever directory's conftest was loaded last).

The symbolisation and collection tests (test_symbolize.py, test_points.py,
test_pcs.py, test_collect.py) build data/'s fixture with each real
toolchain (reporthelp.TOOLCHAINS), run it under kcov-run, and work on the
PCs it recorded.  The kernel-module fixtures build kcov.ko and an
instrumented fs/minix (examples/kernel/kmodules.py) against Debian's
kernel headers.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.support import kernels

from kcov.report import ModuleMap, write_pcs
from reporthelp import TOOLCHAINS, Fixture, build_fixture, need, run_fixture

from examples.kernel import kmodules


@pytest.fixture(scope="session")
def fixture_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fixture]:
    """Built fixtures by toolchain name (built on first use)."""
    return {}


def _fixture(builds: dict[str, Fixture], tc: str, tmp: pytest.TempPathFactory) -> Fixture:
    if tc not in builds:
        builds[tc] = build_fixture(tc, tmp.mktemp(f"fix-{tc}"))
    return builds[tc]


@pytest.fixture(params=sorted(TOOLCHAINS))
def fx(request: pytest.FixtureRequest, fixture_builds: dict[str, Fixture],
       tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """The fixture built by each toolchain in turn."""
    return _fixture(fixture_builds, request.param, tmp_path_factory)


@pytest.fixture
def fx_clang(fixture_builds: dict[str, Fixture], tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """The fixture built by clang-19 (GNU ld)."""
    return _fixture(fixture_builds, "clang-19", tmp_path_factory)


@pytest.fixture
def fx_gcc(fixture_builds: dict[str, Fixture], tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return _fixture(fixture_builds, "gcc-12", tmp_path_factory)


@dataclass(frozen=True)
class Run:
    """One run of the fixture: its PCs, module map and the dump written."""

    test: str
    pcs: npt.NDArray[np.uint64]
    modules: list[ModuleMap]
    dump: Path


# Two inputs that reach different code: "digits" reaches prog_digits and,
# through ':' (digit 10), clamp_digit's overflow branch; "letters" reaches
# prog_letters.  Both reach lib_checksum.
INPUTS = {"digits": ("digits", "1:2"), "letters": ("letters", "abc")}


def fixture_runs(fx: Fixture, tmp: Path) -> dict[str, Run]:
    out = {}
    for test, (kind, arg) in INPUTS.items():
        pcs, mods = run_fixture(fx, kind, arg, tmp)
        dump = tmp / f"{test}.pcs"
        write_pcs(dump, {test: pcs}, mods)
        out[test] = Run(test, pcs, mods, dump)
    return out


@pytest.fixture
def runs(fx: Fixture, tmp_path: Path) -> dict[str, Run]:
    """Both inputs run on `fx`, each dumped to a kcov-pcs file."""
    return fixture_runs(fx, tmp_path)


@pytest.fixture
def runs_clang(fx_clang: Fixture, tmp_path: Path) -> dict[str, Run]:
    return fixture_runs(fx_clang, tmp_path)


# -- kernel modules -------------------------------------------------------------


@dataclass(frozen=True)
class KernelModules:
    kcov_ko: Path
    minix_ko: Path
    minix_src: Path  # the directory the module was built in (its sources)


@pytest.fixture(scope="session")
def kernel_modules(tmp_path_factory: pytest.TempPathFactory) -> KernelModules:
    """kcov.ko and linux-source-6.1's fs/minix as an instrumented minix.ko,
    built against the installed Debian headers (the kernel demo's build)."""
    missing = [m for m in kmodules.missing_prerequisites()
               if not m.startswith(("qemu", "vng"))]
    need(not missing, f"missing {'; '.join(missing)}")
    need(shutil.which("ld") is not None, "GNU ld is not installed (binutils)")
    out = tmp_path_factory.mktemp("kmods")
    try:
        kc = kmodules.build_kcov(out / "kcov")
        mx = kmodules.build_minix(out / "minix", kc.symvers)
    except kmodules.BuildError as e:
        pytest.fail(str(e))
    return KernelModules(kc.ko, mx.ko, mx.dir)


# -- a vmlinux with DWARF ---------------------------------------------------------


def build_dwarf_kernel(tmp_factory: pytest.TempPathFactory, compiler: str = "gcc-12") -> kernels.BuiltKernel:
    """The gcc kcov VM kernel of tests/support/kernels.py, which carries DWARF
    (kernels.DEBUGINFO_CONFIG): one build serves tests/vm and tests/report."""
    k = kernels.build_kernel(compiler, tmp_factory)
    assert kernels.DEBUGINFO_CONFIG in kernels.fragments(compiler), f"the {compiler} kernel has no DWARF"
    return k


@pytest.fixture(scope="session")
def dwarf_kernel(tmp_path_factory: pytest.TempPathFactory) -> kernels.BuiltKernel:
    return build_dwarf_kernel(tmp_path_factory)
