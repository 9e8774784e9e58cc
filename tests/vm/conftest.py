"""Fixtures for the real-kernel tests: kernels built with `kcov-build kernel`
(tests/support/kernels.py) and booted with the virtme-ng harness
(tests/support/vm.py)."""
from __future__ import annotations

import shutil

import pytest

from tests.support.kernels import BuiltKernel, build_kernel, need
from tests.support.vm import find_vng


@pytest.fixture(scope="session")
def vng_available() -> None:
    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")


@pytest.fixture(scope="session")
def gcc_kernel(tmp_path_factory: pytest.TempPathFactory) -> BuiltKernel:
    return build_kernel("gcc-12", tmp_path_factory)


@pytest.fixture(scope="session")
def clang_kernel(tmp_path_factory: pytest.TempPathFactory) -> BuiltKernel:
    return build_kernel("clang-19", tmp_path_factory)
