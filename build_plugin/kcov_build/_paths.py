"""Where the installed runtime lives (inside the `kcov` package)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimePaths:
    lib_dir: Path
    include_dir: Path
    shared_lib: Path
    static_lib: Path
    preload: Path
    compat_dir: Path


def runtime_paths() -> RuntimePaths:
    import kcov

    lib = Path(kcov.get_lib_dir())
    inc = Path(kcov.get_include())
    return RuntimePaths(
        lib_dir=lib,
        include_dir=inc,
        shared_lib=lib / "libkcovrt.so",
        static_lib=lib / "libkcovrt.a",
        preload=lib / "libkcov-preload.so",
        compat_dir=inc / "kcov" / "compat",
    )
