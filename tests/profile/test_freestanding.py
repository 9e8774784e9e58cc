"""The serialiser is freestanding and never instruments itself.

runtime/profile/profile.c, value.c and sancov.c must build with -ffreestanding
-nostdlib (a kernel has no libc) and call nothing: every symbol they need
undefined would have to be supplied by each kernel glue.  And whatever
flags leak into their build, they must not count, trace or profile
themselves (a counter in the runtime would change the profile it writes).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.prereq import own

from profhelp import ROOT, need, run

SOURCES = ("profile.c", "value.c", "sancov.c")
PROFILE_DIR = ROOT / "runtime" / "profile"
INCLUDE = ROOT / "runtime" / "include"


def _objects(tmp: Path, cc: str, *flags: str) -> list[Path]:
    own((PROFILE_DIR / "profile.c").is_file(), "runtime/profile sources are not in this tree")
    out = []
    for src in SOURCES:
        obj = tmp / f"{Path(src).stem}-{cc}.o"
        run([cc, "-std=c11", "-O2", "-ffreestanding", "-nostdlib", "-fno-builtin", "-Wall", "-Wextra",
             "-Werror", "-I", INCLUDE, *flags, "-c", PROFILE_DIR / src, "-o", obj])
        out.append(obj)
    return out


@pytest.mark.parametrize("cc", ["gcc-12", "clang-14", "clang-16", "clang-19"])
def test_serialiser_is_freestanding(cc: str, tmp_path: Path) -> None:
    need(cc, "nm")
    for obj in _objects(tmp_path, cc):
        undefined = run(["nm", "-u", obj]).stdout.split()
        assert not [s for s in undefined if s != "U"], f"{cc}: {obj.name} needs {undefined}"
        defined = run(["nm", "--defined-only", obj]).stdout
        assert "kcovprof_" in defined  # the check can see symbols


@pytest.mark.parametrize("cc", ["clang-19", "gcc-12"])
def test_serialiser_ignores_leaked_instrumentation_flags(cc: str, tmp_path: Path) -> None:
    """KCOV_NOINSTR keeps coverage and profiling out of every function
    even when a user's CFLAGS carry them."""
    need(cc, "nm", "readelf")
    flags = ["-fsanitize-coverage=trace-pc", "-finstrument-functions"]
    flags += ["-fprofile-instr-generate", "-fcoverage-mapping"] if cc.startswith("clang") else ["-fprofile-arcs"]
    for obj in _objects(tmp_path, cc, *flags):
        undefined = set(run(["nm", "-u", obj]).stdout.split()) - {"U"}
        assert not undefined, f"{cc}: {obj.name} calls {sorted(undefined)} (instrumented)"
        sections = run(["readelf", "-SW", obj]).stdout
        assert "__llvm_prf_cnts" not in sections and ".gcda" not in sections, sections


def test_installed_runtime_is_not_instrumented() -> None:
    """libkcovrt (with the profile runtime inside) and the per-image objects
    carry no profile sections and call no coverage callback."""
    need("readelf", "nm")
    import kcov

    lib = Path(kcov.get_lib_dir())
    images = [lib / "libkcovrt.so", lib / "kcovprof-module.o", lib / "kcovprof-module-v8.o",
              lib / "kcovprof-module-v10.o"]
    for image in images:
        assert image.is_file(), image
        sections = run(["readelf", "-SW", image]).stdout
        # The per-image objects carry compiler-rt's pool of 1024 value nodes
        # (24 bytes each) in __llvm_prf_vnds: data for the image's value
        # profiling, not instrumentation of the runtime.
        prf = sorted(set(re.findall(r"__llvm_prf_\w+", sections)))
        if image.suffix == ".o":
            assert prf == ["__llvm_prf_vnds"], (image, prf)
            size = re.search(r"__llvm_prf_vnds\s+PROGBITS\s+\w+\s+\w+\s+(\w+)", sections)
            assert size and int(size.group(1), 16) == 1024 * 24, sections
        else:
            assert not prf, (image, prf)
        undefined = run(["nm", "-u", image]).stdout
        assert "__sanitizer_cov" not in undefined and "__llvm_profile_instrument" not in undefined, image
