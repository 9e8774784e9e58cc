"""kcov: kcov-compatible coverage from Python.

Open a descriptor, record a thread, read the buffer without copying::

    import kcov
    with kcov.open(provider="hosted") as k:
        with k.trace(kcov.Mode.PC):
            lib.work(10)          # code built with -fsanitize-coverage=trace-pc
        print(k.count, k.pcs())   # a zero-copy, read-only uint64 view

The "hosted" provider is the in-process runtime (libkcovrt); "linux" and
"freebsd" are the kernels' own devices.  See API.md for the full tour.
"""
from __future__ import annotations

from importlib import metadata as _metadata
from pathlib import Path

from ._api import (CMP_DTYPE, DEFAULT_ENTRIES, Comparisons, Coverage, Kcov,
                   State, open)
from .abi import Abi, AbiSpec, Mode, spec
from .errors import (ENOTSUPP, KcovBusyError, KcovError, KcovInvalidError,
                     KcovUnsupportedError)
from .provider import (FreeBSDDeviceProvider, HostedProvider,
                       LinuxDeviceProvider, Provider)

try:  # written once, in pyproject.toml
    __version__ = _metadata.version("kcov")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Abi",
    "AbiSpec",
    "CMP_DTYPE",
    "Comparisons",
    "Coverage",
    "DEFAULT_ENTRIES",
    "ENOTSUPP",
    "FreeBSDDeviceProvider",
    "HostedProvider",
    "Kcov",
    "KcovBusyError",
    "KcovError",
    "KcovInvalidError",
    "KcovUnsupportedError",
    "LinuxDeviceProvider",
    "Mode",
    "Provider",
    "State",
    "get_cmake_dir",
    "get_include",
    "get_lib_dir",
    "open",
    "spec",
]

_PKG = Path(__file__).resolve().parent


def get_include() -> str:
    """Directory holding kcovrt.h and the per-OS compat headers."""
    return str(_PKG / "include")


def get_lib_dir() -> str:
    """Directory holding libkcovrt.so, libkcovrt.a and libkcov-preload.so."""
    return str(_PKG / "lib")


def get_cmake_dir() -> str:
    """Directory for find_package(KcovRuntime)."""
    return str(_PKG / "lib" / "cmake" / "KcovRuntime")
