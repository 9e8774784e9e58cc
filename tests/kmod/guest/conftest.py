"""Fixtures for the tests run inside the VM (marked `vm`; the host run
deselects them).  Every test must leave kcov.ko as it found it: no
descriptor, bound task or buffer outlives the test (checked after each)."""
from __future__ import annotations

import gc
import os
from typing import Iterator

import pytest

from tests.support import kmod_guest as H


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    if not os.path.exists("/dev/kcov") or not os.path.exists(H.KCOVTEST):
        pytest.fail("kcov.ko and kcovtest.ko must be loaded (run by tests/kmod)")
    before = H.stats()
    yield
    gc.collect()
    ok = H.wait_until(lambda: H.stats() == before, 10)
    assert ok, f"kcov.ko objects leaked: before {before}, after {H.stats()}"


@pytest.fixture
def page() -> int:
    return H.PAGE


@pytest.fixture
def target() -> H.KernelModule:
    """kcov.ko, for the cases of tests/support/contract.py and errno_cases.py."""
    return H.KernelModule()
