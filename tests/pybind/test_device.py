"""The Linux device provider against a real kernel's kcov (VM suite only)."""
from __future__ import annotations

import os

import pytest

import kcov
from kcov import Mode


@pytest.mark.vm
def test_linux_device_records_syscalls() -> None:
    if not kcov.LinuxDeviceProvider().available():
        pytest.skip("no usable /sys/kernel/debug/kcov")
    with kcov.open("linux", entries=1 << 16) as k:
        assert k.abi == kcov.Abi.LINUX
        with k.trace(Mode.PC):
            os.getppid()
        assert k.count > 0 and len(k.pcs()) == k.count
        k.enable(Mode.PC)
        with pytest.raises(kcov.KcovInvalidError) as ei:
            k.enable(Mode.PC)
        assert ei.value.state == "RUNNING"
        k.disable()
