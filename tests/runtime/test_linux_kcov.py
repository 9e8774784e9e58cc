"""The Linux kcov contract (linux-kcov.md §2.3-§2.6, §4.1-§4.2, §7) on the
hosted /sys/kernel/debug/kcov, from a client built against <linux/kcov.h>."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from runtime_clients import Toolchain, assert_pass, list_cases, run_client

CASES = [
    "doc_example_pc",
    "doc_example_cmp",
    "init_trace",
    "enable",
    "remote_enable",
    "mmap_rules",
    "exit_auto_disables",
    "close_while_enabled",
    "fork_children",
    "full_buffer",
]


@pytest.fixture(scope="module")
def client(build_client: Callable[[str, str], Path]) -> Path:
    return build_client("linux_kcov", "linux")


def test_cases_registered(client: Path) -> None:
    assert list_cases(client) == CASES


@pytest.mark.parametrize("case", CASES)
def test_case(toolchain: Toolchain, client: Path, case: str) -> None:
    assert_pass(run_client(toolchain, client, [case]), case)


def test_doc_example_pc_output(toolchain: Toolchain, client: Path) -> None:
    """kcov.rst prints one hex PC per line; they must look like code addresses
    of this executable and not all be the same."""
    proc = run_client(toolchain, client, ["doc_example_pc"])
    assert_pass(proc, "doc_example_pc")
    pcs = [int(x, 16) for x in re.findall(r"^0x([0-9a-f]+)$", proc.stdout, re.M)]
    assert len(pcs) >= 3
    assert len(set(pcs)) >= 3


def test_doc_example_cmp_output(toolchain: Toolchain, client: Path) -> None:
    proc = run_client(toolchain, client, ["doc_example_cmp"])
    assert_pass(proc, "doc_example_cmp")
    recs = re.findall(r"type: 0x([0-9a-f]+), arg1: 0x([0-9a-f]+), arg2: 0x([0-9a-f]+), "
                      r"size: (\d+), (const|non-const)", proc.stdout)
    assert recs
    # kern_syscall(KERN_MAGIC): `arg == 0x4b43` is a 4-byte constant compare.
    assert ("5", "4b43", "4b43", "4", "const") in recs
    assert any(kind == "non-const" for *_, kind in recs)
