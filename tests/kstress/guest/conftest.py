"""Fixtures for the stress suite's tests run inside the VM (marked `vm`; the
host run deselects them).  Every test must leave kcov.ko as it found it: no
descriptor, bound task or buffer outlives the test (checked after each)."""
from __future__ import annotations

import gc
import os
from typing import Iterator

import pytest

import kstress_guest as G


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    if not os.path.exists("/dev/kcov") or not os.path.exists(G.H.KCOVTEST):
        pytest.fail("kcov.ko and kcovtest.ko must be loaded (run by tests/kstress)")
    before = G.H.stats()
    yield
    gc.collect()
    ok = G.H.wait_until(lambda: G.H.stats() == before, 20)
    assert ok, f"kcov.ko objects leaked: before {before}, after {G.H.stats()}"
