"""Run inside the VM by test_plugin.py under `pytest --kcov --kcov-provider
linux` (copied as test_minix_ops.py): each test makes one file-system call
on a loop-mounted minix file system, so the instrumented minix.ko code it
runs is recorded under the test's name.  KCOV_REPO names the source tree
(examples/kernel/minixcov.py makes the file system)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from examples.kernel import minixcov  # the VM harness puts the repository on PYTHONPATH


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with minixcov.minix_fs() as mnt:
        yield mnt


def test_create(root: Path) -> None:
    os.close(os.open(root / "file", os.O_CREAT | os.O_WRONLY, 0o644))


def test_mkdir(root: Path) -> None:
    os.mkdir(root / "dir")


def test_readdir(root: Path) -> None:
    assert sorted(os.listdir(root)) == ["dir", "file"]


def test_unlink(root: Path) -> None:
    os.unlink(root / "file")
