"""syzkaller's BSD fork-server sequence (bsd-kcov.md §4.2-§4.3) against the
FreeBSD ABI: 200 forked children, each enabling an inherited descriptor."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from runtime_clients import Toolchain, assert_pass, list_cases, run_client

CASES = ["plain", "extra"]


@pytest.fixture(scope="module")
def client(build_client: Callable[[str, str], Path]) -> Path:
    return build_client("forkserver", "freebsd")


def test_cases_registered(client: Path) -> None:
    assert list_cases(client) == CASES


@pytest.mark.parametrize("case", CASES)
def test_forkserver(toolchain: Toolchain, client: Path, case: str) -> None:
    proc = run_client(toolchain, client, [case])
    assert_pass(proc, case)
    assert "200 children ok" in proc.stdout
