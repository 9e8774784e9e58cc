"""Every invalid call in every state, per ABI, the valid sequences and the
mmap rules against kcov.ko: the cases of tests/support/errno_cases.py, the
same ones the hosted device runs (tests/pybind/test_errno_table.py), plus
what only kcov.ko answers.

FreeBSD, NetBSD and OpenBSD go to /dev/kcov with the module's personality
set to that ABI; Linux goes to /sys/kernel/debug/kcov.
"""
from __future__ import annotations

import ctypes
import errno as E

import pytest

import kcov
from tests.support import abi_tables as T
from tests.support import kmod_guest as H
from tests.support.errno_cases import *  # noqa: F401,F403 - the cases; `target` is conftest.py's

pytestmark = pytest.mark.vm


def test_linux_remote_enable_unsupported() -> None:
    # struct kcov_remote_arg {trace_mode, area_size, num_handles, pad, common_handle}
    arg = ctypes.create_string_buffer(24)
    with H.open_dev("linux", 512) as k:
        with pytest.raises(kcov.KcovError) as ei:
            k.ioctl(T.NUMBERS["KCOV_LINUX_REMOTE_ENABLE"], ctypes.addressof(arg))
        assert ei.value.errno == T.ENOTSUPP
        with pytest.raises(kcov.KcovError) as ei:
            k.ioctl(T.NUMBERS["KCOV_LINUX_REMOTE_ENABLE"], 0)
        assert ei.value.errno == E.EFAULT
