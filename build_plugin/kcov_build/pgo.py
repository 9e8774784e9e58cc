"""Profile-guided optimisation with kcov's profile runtime.

    kcov-build --pgo-generate -- make ...           instrument (IR PGO), link our runtime
    ./program < workload                            writes default_%m.profraw (LLVM_PROFILE_FILE)
    kcov-build pgo merge -o app.profdata *.profraw  llvm-profdata merge, inputs vetted
    kcov-build --pgo-use app.profdata -- make ...   -fprofile-instr-use=app.profdata

--pgo-generate is clang's IR-level instrumentation (-fprofile-generate), not
the frontend's (-fprofile-instr-generate, what --sbcc uses): only IR PGO
profiles values -- the targets of indirect calls and the sizes of memcpy and
memset -- from which clang promotes indirect calls and specialises memory
operations, and its edge counters are placed for optimisation rather than
for source regions.  Like --sbcc, the link gets kcov's per-image object, so
compiler-rt's profile runtime stays out; the raw profiles are the same
bytes compiler-rt would write (tests/profile/test_value_profile.py).

An indexed profile (.profdata) records which llvm-profdata wrote it only as
its format version, and each clang reads the versions up to its own.
--pgo-use refuses a profile its clang cannot read, and warns about one
merged by the tools of another raw profile generation (LLVM 14-17 vs
19-22): it was gathered with another clang, whose function hashes the
compiler may not match, so part of the profile would be ignored.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
from dataclasses import dataclass
from os import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE, EX_USAGE
from pathlib import Path
from typing import Sequence

from kcov._base.errors import ArgumentParser, run_cli

from .errors import BuildError
from .settings import Settings
from .toolchain import sbcc_raw_version

PROG = "kcov-build"

INDEXED_MAGIC = 0x8169666F72706CFF  # "\xfflprofi\x81"
RAW_MAGICS = (0xFF6C70726F667281, 0xFF6C70726F665281)
#: Indexed format version -> the LLVM releases whose llvm-profdata writes it
#: (InstrProf.h's ProfVersion; 7, 9 and 12 seen from Debian's 14, 16, 19).
INDEXED_WRITERS: dict[int, tuple[int, int | None]] = {
    7: (12, 14), 8: (15, 15), 9: (16, 16), 10: (17, 17), 11: (18, 18), 12: (19, None),
}
#: LLVM major -> the newest indexed version its clang reads (the one it writes).
INDEXED_READ_MAX = {12: 7, 13: 7, 14: 7, 15: 8, 16: 9, 17: 10, 18: 11, 19: 12}


class PgoError(BuildError):
    """A PGO input kcov-build refuses: one line, a sysexits status (cli.main
    reports it like any BuildError)."""


# --- Checking a profile for --pgo-use ------------------------------------------------


@dataclass(frozen=True)
class IndexedProfile:
    path: str
    version: int  #: indexed format version (the low 32 bits; the high ones are variant flags)

    def writers(self) -> str:
        lo, hi = INDEXED_WRITERS.get(self.version, (0, 0))
        if lo == 0:
            return f"an llvm-profdata this kcov does not know (indexed version {self.version})"
        span = f"LLVM {lo}" if lo == hi else f"LLVM {lo}-{hi}" if hi else f"LLVM {lo} or newer"
        return f"the llvm-profdata of {span} (indexed version {self.version})"


def read_indexed(path: str) -> IndexedProfile:
    """The header of an indexed profile; PgoError if it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise PgoError(f"--pgo-use {path}: no such file", EX_NOINPUT) from None
    except IsADirectoryError:
        raise PgoError(f"--pgo-use {path}: a directory, not a profile", EX_NOINPUT) from None
    except OSError as e:
        raise PgoError(f"--pgo-use {path}: cannot read: {e.strerror}", EX_NOINPUT) from None
    if len(head) >= 8 and struct.unpack_from("<Q", head)[0] in RAW_MAGICS:
        raise PgoError(f"--pgo-use {path}: a raw profile (.profraw); merge the runs first: "
                       f"{PROG} pgo merge -o FILE.profdata RUNS.profraw...", EX_DATAERR)
    magic = struct.unpack_from("<Q", head)[0] if len(head) >= 8 else None
    if magic != INDEXED_MAGIC or len(head) < 16:
        what = ("an empty file" if not head else
                "truncated" if head[:8] == struct.pack("<Q", INDEXED_MAGIC)[:len(head[:8])] else "foreign data")
        raise PgoError(f"--pgo-use {path}: {what}, not an indexed LLVM profile (a .profdata written by "
                       f"{PROG} pgo merge or llvm-profdata merge)", EX_DATAERR)
    word = struct.unpack_from("<Q", head, 8)[0]
    # A damaged header or summary makes clang itself crash with a stack
    # dump; kcov.profile checks both the way llvm-profdata merge's output is
    # laid out (found by tests/reliability's reader fuzzing).
    from kcov.profile import ProfileError, vet_indexed

    try:
        vet_indexed(Path(path))
    except ProfileError as e:
        raise PgoError(f"--pgo-use {e}", EX_DATAERR) from None
    return IndexedProfile(path, word & 0xFFFFFFFF)


def _generation(major: int) -> str:
    """Which clangs share `major`'s raw profile version (and function hashes)."""
    raw = sbcc_raw_version((major,))
    return {8: "clang 14-17 (raw version 8)", 10: "clang 19-22 (raw version 10)"}.get(
        raw or 0, f"clang {major}")


def use_check(s: Settings, cc: str) -> list[str]:
    """Vet --pgo-use's profile for the compiler of s: PgoError if clang cannot
    use it; the warnings to print otherwise."""
    assert s.pgo_use is not None
    prof = read_indexed(s.pgo_use)
    if not s.version:
        return []
    major = s.version[0]
    lo, hi = INDEXED_WRITERS.get(prof.version, (0, 0))
    # The tools of LLVM N read the raw profiles of N's generation only, so
    # the writer of the .profdata tells which clangs gathered the profile.
    gathered = {_generation(v) for v in range(max(lo, 14), (hi or 22) + 1)} if lo else set()
    ours = _generation(major)
    foreign = bool(gathered) and ours not in gathered
    limit = INDEXED_READ_MAX.get(major)
    if limit is not None and prof.version > limit:
        if foreign:
            raise PgoError(
                f"--pgo-use {s.pgo_use}: a profile of {' or '.join(sorted(gathered))}, written by "
                f"{prof.writers()}, which {cc} (clang {major}) cannot read; gather a profile with "
                f"{PROG} --pgo-generate and {cc}", EX_DATAERR)
        raise PgoError(
            f"--pgo-use {s.pgo_use}: written by {prof.writers()}, which {cc} (clang {major}) cannot read "
            f"(it reads indexed versions up to {limit}); merge the raw profiles with llvm-profdata-{major}: "
            f"{PROG} pgo merge --llvm {major} -o FILE.profdata RUNS.profraw...", EX_DATAERR)
    if foreign:
        return [
            f"warning: --pgo-use {s.pgo_use} holds a profile of {' or '.join(sorted(gathered))}, merged by "
            f"{prof.writers()}; clang {major} hashes functions differently and drops the profile of every "
            f"function whose hash differs: gather a new profile with --pgo-generate and {cc}"
        ]
    return []


def capability_error(s: Settings, cc: str) -> str | None:
    """capability.capability_error's PGO part: a usage message, or PgoError
    (raised) for an unusable profile; warnings are printed here."""
    what = "--pgo-generate" if s.pgo_generate else "--pgo-use"
    if s.family != "clang":
        kind = "GCC" if s.family == "gcc" else "not clang"
        return (f"{what} needs clang: {cc} is {kind}, and gcc's -fprofile-generate/-fprofile-use are "
                "gcov-based (.gcda files), not LLVM profiles")
    if s.pgo_generate and s.version and sbcc_raw_version(s.version) is None:
        v = ".".join(map(str, s.version))
        return (f"--pgo-generate: {cc} is clang {v}, whose raw profile format the kcov profile runtime "
                "does not write (it writes v8 for clang 14-17 and v10 for clang 19-22)")
    if s.pgo_use:
        for w in use_check(s, cc):
            print(f"{PROG}: {w}", file=sys.stderr)
    return None


# --- kcov-build pgo merge ------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=f"{PROG} pgo", description="Profile-guided optimisation: merge the runs' raw profiles.",
                       usage_message=lambda prog, message: f"pgo: {message} (try '{PROG} pgo merge --help')")
    sub = p.add_subparsers(dest="cmd", metavar="merge", required=True)
    m = sub.add_parser(
        "merge", help="merge raw profiles (.profraw) into an indexed profile for --pgo-use",
        description=(
            "Merge the raw profiles of one program's runs into an indexed profile (.profdata) with the "
            "llvm-profdata that reads them. Every input is checked first: truncated or foreign files, "
            "profiles of different binaries and mixed raw versions are refused."),
        epilog=(
            "By default the oldest installed llvm-profdata that reads the inputs' raw version is used, so "
            "that every clang of that generation can read the output (clang reads the indexed versions of "
            "its own and older LLVMs)."))
    m.add_argument("-o", "--output", required=True, metavar="FILE", help="the .profdata to write (atomically)")
    pick = m.add_mutually_exclusive_group()
    pick.add_argument("--llvm", type=int, metavar="N", help="use llvm-profdata-N")
    pick.add_argument("--compiler", metavar="CC", help="use the llvm-profdata of this clang (clang-16...)")
    m.add_argument("--sparse", action="store_true", help="leave functions that never ran out of the output")
    m.add_argument("inputs", nargs="+", metavar="PROFRAW", help="raw profiles (indexed ones may be mixed in)")
    return p


def merge_main(opts: argparse.Namespace) -> int:
    from kcov.profile import ProfileError, merge, pick_version, vet

    llvm = opts.llvm
    if opts.compiler:
        from .toolchain import identify, resolve

        if resolve(opts.compiler) is None:
            raise PgoError(f"pgo merge: {opts.compiler}: command not found", EX_UNAVAILABLE)
        comp = identify(opts.compiler)
        if comp.family != "clang" or not comp.version:
            raise PgoError(f"pgo merge: {opts.compiler} is not clang; name a clang or pass --llvm N", EX_USAGE)
        llvm = comp.version[0]
    out = os.path.abspath(opts.output)
    if os.path.isdir(out):
        raise PgoError(f"pgo merge: -o {opts.output} is a directory", EX_CANTCREAT)
    try:
        version, _ = vet(opts.inputs)
        merge(opts.inputs, out, llvm_version=llvm, sparse=opts.sparse)
    except ProfileError as e:
        raise PgoError(f"pgo merge: {e}", e.exit_status) from None
    except OSError as e:
        raise PgoError(f"pgo merge: {e.filename or opts.output}: {e.strerror}", EX_CANTCREAT) from None
    tool = pick_version(version, llvm, "llvm-profdata")
    print(f"{PROG}: wrote {opts.output} from {len(opts.inputs)} profile(s) (raw version {version}, "
          f"llvm-profdata-{tool})", file=sys.stderr)
    return 0


def main(argv: Sequence[str]) -> int:
    """kcov-build pgo ..."""
    return run_cli(PROG, lambda: merge_main(_parser().parse_args(list(argv))), interrupted=None)
