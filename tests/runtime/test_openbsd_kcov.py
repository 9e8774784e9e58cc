"""OpenBSD's regress/sys/dev/kcov/kcov.c (bsd-kcov.md §3.3) on the hosted
device, under kcov-run --abi openbsd, in both trace modes."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest

from runtime_clients import RUN_TIMEOUT, Toolchain, assert_pass, run_client

CASES = ["close", "coverage", "dying", "exec", "fork", "open", "state", "errno"]


@pytest.fixture(scope="module")
def client(build_client: Callable[[str, str], Path]) -> Path:
    return build_client("openbsd_kcov", "openbsd")


def test_cases_registered(client: Path) -> None:
    proc = subprocess.run([str(client), "-l"], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert proc.stdout.split() == CASES


@pytest.mark.parametrize("mode", ["pc", "cmp"])
@pytest.mark.parametrize("case", CASES)
def test_case(toolchain: Toolchain, client: Path, case: str, mode: str) -> None:
    assert_pass(run_client(toolchain, client, ["-m", mode, case], abi="openbsd"), case)


def test_needs_openbsd_personality(toolchain: Toolchain, client: Path) -> None:
    """Under the NetBSD personality the errno rules differ: "errno" fails."""
    proc = run_client(toolchain, client, ["-m", "pc", "errno"], abi="netbsd")
    assert proc.returncode != 0
    assert "PASS" not in proc.stdout
