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

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import (CMP_DTYPE, DEFAULT_ENTRIES, Comparisons, Coverage, Kcov,
                       State, open)
    from .abi import Abi, AbiSpec, Mode, spec
    from .errors import (ENOTSUPP, KcovBusyError, KcovError, KcovInvalidError,
                         KcovUnsupportedError)
    from .provider import (FreeBSDDeviceProvider, HostedProvider,
                           LinuxDeviceProvider, Provider)

    __version__: str

# The public names are imported on first use (PEP 562), so that the command
# lines built on kcov._base (kcov-build's compiler wrapper runs once per
# compile) start without numpy and the extension: 0.2 s per call otherwise.
_LAZY = {
    "._api": ("CMP_DTYPE", "DEFAULT_ENTRIES", "Comparisons", "Coverage", "Kcov", "State", "open"),
    ".abi": ("Abi", "AbiSpec", "Mode", "spec"),
    ".errors": ("ENOTSUPP", "KcovBusyError", "KcovError", "KcovInvalidError", "KcovUnsupportedError"),
    ".provider": ("FreeBSDDeviceProvider", "HostedProvider", "LinuxDeviceProvider", "Provider"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:  # written once, in pyproject.toml
            value: Any = metadata.version("kcov")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            value = "0+unknown"
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})


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
