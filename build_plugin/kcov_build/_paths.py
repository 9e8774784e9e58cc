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

    def profile_stub(self, raw_version: int | None) -> Path:
        """The per-image object of the profile runtime (runtime/profile/module.c)
        that expects `raw_version` (8 or 10), or decides from the sections."""
        if raw_version in (8, 10):
            return self.lib_dir / f"kcovprof-module-v{raw_version}.o"
        return self.lib_dir / "kcovprof-module.o"


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
