"""Kcov keeps a device's state in step with raw ioctls: after a raw sizing
call of a by-pointer ABI (NetBSD, OpenBSD), `entries` is the size the call
passed, read back from the pointer (found by tests/support/errno_cases.py
on kcov.ko, whose devices cannot be asked)."""
from __future__ import annotations

import ctypes

import pytest

import kcov
from kcov import Abi, FreeBSDDeviceProvider


class AcceptingDevice(FreeBSDDeviceProvider):
    """A device that accepts every call (nothing is opened)."""

    def __init__(self, abi: str) -> None:
        super().__init__("/nonexistent")
        self.abi = Abi.parse(abi)

    def open(self) -> int:
        return 99

    def ioctl(self, fd: int, cmd: int, arg: int) -> int:
        return 0

    def close(self, fd: int) -> None:
        pass


@pytest.mark.parametrize("abi", ["netbsd", "openbsd"])
def test_by_pointer_sizing_sets_entries(abi: str) -> None:
    k = kcov.open(AcceptingDevice(abi), entries=None)
    size = ctypes.c_uint64(4096)
    k.ioctl(kcov.spec(abi).setbufsize, ctypes.addressof(size))
    assert (k.state, k.entries) == (kcov.State.READY, 4096)


def test_by_value_sizing_sets_entries() -> None:
    k = kcov.open(AcceptingDevice("freebsd"), entries=None)
    k.ioctl(kcov.spec("freebsd").setbufsize, 1024)
    assert (k.state, k.entries) == (kcov.State.READY, 1024)
