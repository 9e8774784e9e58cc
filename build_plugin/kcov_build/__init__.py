"""kcov-build and kcov-run: build with coverage, run on the hosted kcov device."""
from __future__ import annotations

__all__ = ["runtime_paths"]

from ._paths import runtime_paths
