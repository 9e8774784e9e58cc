"""The units pytest-xdist's workers share the suite by, and their order
(tests/support/scheduling.py)."""
from __future__ import annotations

from pathlib import Path

from tests.support.scheduling import CHAIN_FOLDERS, CHAIN_ORDER, KERNEL_FOLDERS, order, scope

TESTS = Path(__file__).resolve().parents[1]


def test_units() -> None:
    assert scope("tests/kmod/test_kmod.py::test_guest_suite") == "kernel"
    assert scope("tests/kstress/test_kstress.py::test_dmesg_clean[debug]") == "kernel"
    assert scope("tests/vm/test_kernel_vm.py::test_guest_dmesg_clean[gcc_kernel]") == "kernel"
    a = "tests/kernels/test_kernels.py::test_kernel_built[debug]"
    b = "tests/kernels/test_kernels.py::test_kernel_built[gcc-12]"
    assert scope(a) == a and scope(b) == b  # each build a unit of its own
    assert scope("tests/report/test_cli.py::test_x") == scope("tests/report/test_pcs.py::test_y") == "report"
    assert scope("tests/profile/test_pgo.py::test_x[1]") == "tests/profile/test_pgo.py"


def test_order_chain_then_builds_then_slowest() -> None:
    nodes = [
        ("tests/pybind/test_views.py::test_a", False),
        ("tests/profile/test_pgo.py::test_a", True),
        ("tests/profile/test_pgo.py::test_b", False),
        ("tests/kernels/test_kernels.py::test_kernel_built[debug]", True),
        ("tests/build_plugin/test_kcov_build_wrap.py::test_a", True),
        ("tests/build_plugin/test_kcov_build_wrap.py::test_b", True),
        ("tests/kstress/test_kstress.py::test_a", True),
        ("tests/kmod/test_kmod.py::test_a", True),
        ("tests/kprofile/test_kprofile.py::test_a", True),
    ]
    assert order(nodes) == [
        "tests/kprofile/test_kprofile.py::test_a",  # the chain, in CHAIN_ORDER
        "tests/kstress/test_kstress.py::test_a",
        "tests/kmod/test_kmod.py::test_a",
        "tests/kernels/test_kernels.py::test_kernel_built[debug]",
        "tests/build_plugin/test_kcov_build_wrap.py::test_a",  # two slow tests
        "tests/build_plugin/test_kcov_build_wrap.py::test_b",
        "tests/profile/test_pgo.py::test_a",  # one
        "tests/profile/test_pgo.py::test_b",
        "tests/pybind/test_views.py::test_a",  # none
    ]


def test_every_folder_that_boots_a_guest_is_in_the_chain() -> None:
    booting = {p.parent.name for p in TESTS.glob("*/guest")}
    assert booting and booting <= CHAIN_FOLDERS
    assert CHAIN_FOLDERS < KERNEL_FOLDERS and set(CHAIN_ORDER) == CHAIN_FOLDERS
    assert {p.name for p in TESTS.iterdir() if p.is_dir()} >= KERNEL_FOLDERS
