"""Run by test_plugin.py under `pytest --kcov` (copied as test_plugged.py):
three tests that each reach their own functions of libplugged.so, a
module-scoped fixture whose setup and teardown reach functions of their
own, and a test that uses kcov itself (marked no_kcov)."""
from __future__ import annotations

import ctypes
import os
from typing import Iterator

import pytest

LIB = ctypes.CDLL(os.environ["PLUGGED_LIB"])


@pytest.mark.no_kcov
def test_own_kcov() -> None:
    """Traces on its own: with the plugin's descriptor enabled on this
    thread, enabling another would fail (EBUSY)."""
    import kcov

    with kcov.open(provider="hosted") as k:
        with k.trace(kcov.Mode.PC):
            LIB.never(5)
        assert k.count > 0


@pytest.fixture(scope="module")
def lib() -> Iterator[ctypes.CDLL]:
    LIB.fixture_up()
    yield LIB
    LIB.fixture_down()


def test_alpha(lib: ctypes.CDLL) -> None:
    lib.alpha(1)
    lib.shared(2)


def test_beta(lib: ctypes.CDLL) -> None:
    lib.beta(3)


def test_gamma(lib: ctypes.CDLL) -> None:
    lib.gamma_(4)


def test_nothing() -> None:
    assert True
