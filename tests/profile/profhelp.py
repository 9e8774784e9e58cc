"""Helpers of the source-based coverage tests (tests/profile).

Builds are real: the installed kcov-build with clang-14, clang-16 and
clang-19 for our runtime, and the same clang with compiler-rt's profile
runtime for the reference.  A tool that is missing skips the test, except
under CI=true, where scripts/setup.sh must have installed it.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

from tests.support.lz4 import lz4_tarball  # noqa: F401  (the test modules import it from here)
from tests.support.prereq import need_tools as need, own

from kcov.profile import raw

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
KVDEV = ROOT / "examples" / "kvdev"
BIN = Path(sys.executable).parent
#: clang -> LLVM major of its tools (llvm-profdata-N, llvm-cov-N)
CLANGS = {"clang-14": 14, "clang-16": 16, "clang-19": 19}
#: compiler-rt's names that our per-image object (kcovprof-module*.o) defines
#: too, hidden: the driver's -u__llvm_profile_runtime hook and the entry
#: points of value profiling.  Any other __llvm_profile_*/lprof* symbol in
#: an image means compiler-rt's runtime was linked.
OUR_IMAGE_SYMBOLS = frozenset({"__llvm_profile_runtime", "__llvm_profile_instrument_target",
                               "__llvm_profile_instrument_memop", "__llvm_profile_instrument_target_value"})


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
    own(path.is_file(), f"kcov-build is not installed next to {sys.executable}")
    return run([path, *args], check=check, cwd=cwd)


def env_with(**kw: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LLVM_PROFILE_FILE", "__LLVM_PROFILE_RT_INIT_ONCE")}
    env.update(kw)
    return env


# --- Comparing raw profiles field by field ------------------------------------------


def _fields(version: int) -> list[str]:
    return list(raw._header_fields(version))


def normalized(data: bytes) -> list[dict[str, object]]:
    """Each raw profile of `data` with what depends on where things were
    loaded, or on which binary it is, left out: NamesDelta and BitmapDelta
    (absolute addresses), the build ID, and each record's FunctionPointer and
    Values.  Value data are decoded, with indirect-call targets (addresses)
    named by the NameRef of the record whose FunctionPointer they are, as
    llvm-profdata names them ("?" for an address of no instrumented
    function).  Everything else must be equal between two runtimes."""
    out = []
    for p in raw.parse(data):
        names = _fields(p.version)
        h = dict(zip(names, struct.unpack_from(f"<{len(names)}Q", data, p.offset)))
        hsize = 8 * len(names)
        ids_end = p.offset + hsize + h["BinaryIdsSize"]
        rec, _, kinds = raw._record_layout(p.version, 8)
        recs = []
        fptrs: dict[int, int] = {}
        for i in range(p.num_data):
            r = ids_end + i * rec
            if p.version == 8:
                name_ref, fhash, cptr, fptr, _vals, ncnt = struct.unpack_from("<QQqQQI", data, r)
                sites = struct.unpack_from("<2H", data, r + 44)
                recs.append((name_ref, fhash, cptr, ncnt, sites))
            else:
                name_ref, fhash, cptr, bptr, fptr, _vals, ncnt = struct.unpack_from("<QQqqQQI", data, r)
                sites = struct.unpack_from("<3H", data, r + 52)
                (nbits,) = struct.unpack_from("<I", data, r + 60)
                recs.append((name_ref, fhash, cptr, ncnt, sites, nbits))
            if fptr:
                fptrs[fptr] = name_ref
        body = ids_end + p.num_data * rec
        csize = 1 if p.variant & raw.VARIANT_BYTE_COVERAGE else 8
        vstart = body + h["NumCounters"] * csize + h["PaddingBytesAfterCounters"]
        if p.version == 10:
            vstart += h["NumBitmapBytes"] + h["PaddingBytesAfterBitmapBytes"]
        vstart += h["NamesSize"] + (-h["NamesSize"]) % 8
        values = []
        pos = vstart
        for r in recs:
            sites = r[4]
            if not any(sites):
                continue
            total, nk = struct.unpack_from("<II", data, pos)
            q, kinds_out = pos + 8, []
            for _ in range(nk):
                kind, ns = struct.unpack_from("<II", data, q)
                counts = data[q + 8:q + 8 + ns]
                q += (8 + ns + 7) & ~7
                per_site = []
                for c in counts:
                    pairs = [struct.unpack_from("<QQ", data, q + 16 * j) for j in range(c)]
                    q += 16 * c
                    if kind == 0:  # indirect-call targets: addresses
                        pairs = [(fptrs.get(v, "?"), n) for v, n in pairs]
                    per_site.append(pairs)
                kinds_out.append((kind, ns, per_site))
            assert q == pos + total, f"value data of {r[0]:#x}: {q - pos} bytes parsed, TotalSize {total}"
            values.append((r[0], kinds_out))
            pos += total
        assert pos == p.offset + p.size
        rest = data[body:vstart]
        keep = {k: v for k, v in h.items() if k not in ("NamesDelta", "BitmapDelta")}
        keep["build_id_sizes"] = [len(b) // 2 for b in p.binary_ids]
        out.append({"header": keep, "records": recs, "counters_names": rest, "values": values})
    return out
