"""NetBSD's tests/modules/t_kcov.c (bsd-kcov.md §2.4) on the hosted device,
under kcov-run --abi netbsd."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from runtime_clients import Toolchain, assert_pass, list_cases, run_client

CASES = [
    "kcov_dup2",
    "kcov_multiopen",
    "kcov_open_close_open",
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
    "kcov_basic_dup2_pc",
    "kcov_basic_dup2_cmp",
    "kcov_multienable_on_the_same_thread",
    "kcov_buffer_access_from_custom_thread",
    "kcov_thread",
    "kcov_multiple_threads2",
    "kcov_multiple_threads4",
    "kcov_multiple_threads8",
    "kcov_multiple_threads16",
    "kcov_multiple_threads32",
    "kcov_enable_none_records_nothing",
    "kcov_close_enabled_records_until_exit",
]


@pytest.fixture(scope="module")
def client(build_client: Callable[[str, str], Path]) -> Path:
    return build_client("netbsd_kcov", "netbsd")


def test_registration_order(client: Path) -> None:
    assert list_cases(client) == CASES


@pytest.mark.parametrize("case", CASES)
def test_case(toolchain: Toolchain, client: Path, case: str) -> None:
    assert_pass(run_client(toolchain, client, [case], abi="netbsd"), case)


def test_needs_netbsd_personality(toolchain: Toolchain, client: Path) -> None:
    """Under the OpenBSD personality the same numbers mean other errnos
    (ENXIO, not ENOBUFS, for an enable before sizing): kcov_enable fails."""
    proc = run_client(toolchain, client, ["kcov_enable"], abi="openbsd")
    assert proc.returncode == 1
    assert "FAIL kcov_enable" in proc.stdout
