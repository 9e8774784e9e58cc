"""FreeBSD's tests/sys/kern/kcov.c (bsd-kcov.md §1.11) on the hosted device."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from runtime_clients import Toolchain, assert_pass, list_cases, run_client

# Registration order of FreeBSD's ATF_TP_ADD_TCS.
CASES = [
    "kcov_bufsize",
    "kcov_mmap",
    "kcov_mmap_no_munmap",
    "kcov_mmap_no_munmap_no_close",
    "kcov_enable",
    "kcov_enable_no_disable",
    "kcov_enable_no_disable_no_close",
    "kcov_mmap_enable_thread_close",
    "kcov_basic_pc",
    "kcov_basic_cmp",
    "kcov_thread_pc",
    "kcov_thread_cmp",
    "kcov_enable_multi_thread",
]


@pytest.fixture(scope="module")
def client(build_client: Callable[[str, str], Path]) -> Path:
    return build_client("freebsd_kcov", "freebsd")


def test_registration_order(client: Path) -> None:
    assert list_cases(client) == CASES


@pytest.mark.parametrize("case", CASES)
def test_case(toolchain: Toolchain, client: Path, case: str) -> None:
    assert_pass(run_client(toolchain, client, [case]), case)


def test_fails_without_device(client: Path) -> None:
    """Without kcov-run there is no /dev/kcov: the harness must report FAIL."""
    import subprocess

    proc = subprocess.run([str(client), "kcov_basic_pc"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "FAIL kcov_basic_pc" in proc.stdout
