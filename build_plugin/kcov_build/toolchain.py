"""Which compiler is at hand: its family and version, asked from the compiler.

The lowest layer of kcov-build: every other module may import it, it imports
none of them.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Compiler:
    family: str  # "clang", "gcc" or "other"
    version: tuple[int, ...] = ()

    def describe(self) -> str:
        v = ".".join(map(str, self.version))
        return f"{self.family} {v}".strip()


_VERSION_RE = re.compile(r"version (\d+(?:\.\d+)+)")


def identify(cc: str) -> Compiler:
    """Which compiler cc is, asked from the compiler itself."""
    try:
        out = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    low = out.lower()
    base = os.path.basename(cc)
    if "clang" in low or (not out and "clang" in base):
        m = _VERSION_RE.search(out)
        return Compiler("clang", tuple(int(x) for x in m.group(1).split(".")) if m else ())
    if "free software foundation" not in low and "gcc" not in base and "g++" not in base:
        return Compiler("other")
    # The first line of gcc --version carries a vendor string that may hold
    # other numbers; -dumpfullversion is exact (GCC >= 7, older ignore it).
    version: tuple[int, ...] = ()
    try:
        v = subprocess.run(
            [cc, "-dumpfullversion", "-dumpversion"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        v = ""
    if re.fullmatch(r"\d+(\.\d+)*", v):
        version = tuple(int(x) for x in v.split("."))
    return Compiler("gcc", version)


def resolve(cc: str) -> str | None:
    """The absolute path of an executable, or None."""
    if os.sep in cc:
        return os.path.abspath(cc) if os.path.isfile(cc) and os.access(cc, os.X_OK) else None
    return shutil.which(cc)


def newest_clang() -> str | None:
    """The clang-N with the highest N on PATH, else plain clang."""
    best: tuple[int, str] | None = None
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for p in glob.glob(os.path.join(d or ".", "clang-[0-9]*")):
            m = re.fullmatch(r"clang-(\d+)", os.path.basename(p))
            if m and os.access(p, os.X_OK) and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), os.path.basename(p))
    if best is not None:
        return best[1]
    return "clang" if shutil.which("clang") else None


def cxx_for(cc: str) -> str | None:
    """The C++ driver that goes with a C compiler (clang-19 -> clang++-19)."""
    d, base = os.path.split(cc)
    for pat, rep in ((r"clang", "clang++"), (r"gcc", "g++"), (r"^cc$", "c++")):
        if re.search(pat, base) and "++" not in base:
            cand = os.path.join(d, re.sub(pat, rep, base, count=1))
            found = resolve(cand)
            if found is not None:
                return found
    return None


def sbcc_raw_version(version: tuple[int, ...]) -> int | None:
    """The raw profile version a clang of this version writes, if our
    runtime writes it too (InstrProfData.inc of LLVM 14, 16 and 19)."""
    if not version:
        return None
    major = version[0]
    if 14 <= major <= 17:
        return 8
    if 19 <= major <= 22:
        return 10
    return None
