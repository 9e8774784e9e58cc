"""Helpers of the source-based coverage tests (tests/profile).

Builds are real: the installed kcov-build with clang-14, clang-16 and
clang-19 for our runtime, and the same clang with compiler-rt's profile
runtime for the reference.  A tool that is missing skips the test, except
under CI=true, where scripts/setup.sh must have installed it.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

from kcov.profile import raw

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
KVDEV = ROOT / "examples" / "kvdev"
BIN = Path(sys.executable).parent
CI = os.environ.get("CI") == "true"
#: clang -> LLVM major of its tools (llvm-profdata-N, llvm-cov-N)
CLANGS = {"clang-14": 14, "clang-16": 16, "clang-19": 19}


def need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None:
            if CI:
                pytest.fail(f"{t} is missing in CI (scripts/setup.sh installs it)")
            pytest.skip(f"{t} is not installed")


def need_clang(cc: str) -> int:
    v = CLANGS[cc]
    need(cc, f"llvm-profdata-{v}", f"llvm-cov-{v}")
    return v


def run(cmd: Sequence[object], *, check: bool = True, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def kcov_build(*args: object, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = BIN / "kcov-build"
    if not path.is_file():
        pytest.skip(f"kcov-build is not installed next to {sys.executable}")
    return run([path, *args], check=check, cwd=cwd)


def env_with(**kw: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LLVM_PROFILE_FILE", "__LLVM_PROFILE_RT_INIT_ONCE")}
    env.update(kw)
    return env


def lz4_tarball() -> Path:
    """Debian's pinned lz4 1.9.4 orig tarball, fetched once into .cache/src
    by the helper of the kcov-build tests."""
    sys.path.insert(0, str(ROOT / "tests" / "build_plugin"))
    try:
        from test_kcov_build_wrap import lz4_tarball as fetch
    finally:
        sys.path.pop(0)
    return fetch()


# --- Comparing raw profiles field by field ------------------------------------------


def _fields(version: int) -> list[str]:
    return list(raw._header_fields(version))


def normalized(data: bytes) -> list[dict[str, object]]:
    """Each raw profile of `data` with what depends on where things were
    loaded, or on which binary it is, left out: NamesDelta and BitmapDelta
    (absolute addresses), the build ID, and each record's FunctionPointer and
    Values.  Everything else must be equal between two runtimes."""
    out = []
    for p in raw.parse(data):
        names = _fields(p.version)
        h = dict(zip(names, struct.unpack_from(f"<{len(names)}Q", data, p.offset)))
        hsize = 8 * len(names)
        ids_end = p.offset + hsize + h["BinaryIdsSize"]
        rec, _, kinds = raw._record_layout(p.version, 8)
        recs = []
        for i in range(p.num_data):
            r = ids_end + i * rec
            if p.version == 8:
                name_ref, fhash, cptr, _fp, _vals, ncnt = struct.unpack_from("<QQqQQI", data, r)
                sites = struct.unpack_from("<2H", data, r + 44)
                recs.append((name_ref, fhash, cptr, ncnt, sites))
            else:
                name_ref, fhash, cptr, bptr, _fp, _vals, ncnt = struct.unpack_from("<QQqqQQI", data, r)
                sites = struct.unpack_from("<3H", data, r + 52)
                (nbits,) = struct.unpack_from("<I", data, r + 60)
                recs.append((name_ref, fhash, cptr, ncnt, sites, nbits))
        body = ids_end + p.num_data * rec
        rest = data[body:p.offset + p.size]
        keep = {k: v for k, v in h.items() if k not in ("NamesDelta", "BitmapDelta")}
        keep["build_id_sizes"] = [len(b) // 2 for b in p.binary_ids]
        out.append({"header": keep, "records": recs, "counters_names_values": rest})
    return out
