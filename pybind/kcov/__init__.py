"""kcov: kcov-compatible coverage from Python (placeholder, being written)."""
from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

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
