"""Helpers of the host-side kcov.ko tests (a unique module name, so it
never collides with other test directories' modules): building modules,
the guest script, and reading the guest's JUnit reports."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from examples.kernel import kmodules  # noqa: F401  (minix.ko, shared with the demo)
from tests.support.junit import Junit  # noqa: F401  (the kmod tests import these from here)
from tests.support.prereq import REPO, in_ci, need  # noqa: F401
from tests.support.vm import VENV_BIN, Vm, VmResult, dmesg_problems, find_vng  # noqa: F401
from tests.support.modules import Module, run  # noqa: F401
from tests.support.modules import kcov_build_cmd as kcov_build  # noqa: F401

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GUEST = HERE / "guest"
MODULE_SRC = REPO / "runtime" / "linux"


@dataclass(frozen=True)
class GuestRun:
    result: VmResult
    main: Junit | None
    unload: Junit | None


def guest_script(out: Path, kcov_ko: Path, kcovtest_ko: Path) -> str:
    py = f"{VENV_BIN / 'python'} -m pytest -p no:cacheprovider -m vm -q -rfE"
    return (
        f"insmod {kcov_ko} && insmod {kcovtest_ko} || exit 90\n"
        # Code symbols with the modules', to name the vCPUs' code if the
        # guest ever freezes (tests/support/vm.py vcpu_state).
        f"grep ' [tTwW] ' /proc/kallsyms > {out / 'kallsyms'}\n"
        f"{py} --durations=5 --junitxml={out / 'main.xml'} {GUEST} "
        f"--ignore={GUEST / 'test_kmod_unload.py'}\n"
        "rc1=$?\n"
        f"{py} --junitxml={out / 'unload.xml'} {GUEST / 'test_kmod_unload.py'}\n"
        "rc2=$?\n"
        "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]\n"
    )
