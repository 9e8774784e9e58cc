"""Helpers of the reader fuzzers (test_fuzz_readers.py).

* The corpus: valid files of every reader, made by real builds and runs
  once per session -- kcov-pcs dumps and bare PCs of tests/report's fixture
  (clang-19, run under kcov-run), kcov JSON and lcov converted from them,
  lcov written by llvm-cov and by lcov/gcov, raw profiles of clang-14, -16
  and -19 (kcov-build --sbcc, --pgo-generate, and compiler-rt's runtime),
  .profdata merged by llvm-profdata and .sancov from kcov.profile.sancov --
  each with the offsets where its structure changes.
* Mutations, as hypothesis strategies, and their application.
* The contract every outcome must meet: a success whose output is
  well-formed, or a one-line error with a documented exit status; never a
  traceback, a signal or a hang; every output complete or untouched.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence


from tests.support.prereq import need_tool as need
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The builders of tests/report and tests/profile.
from tests.profile import profhelp
from tests.report import reporthelp

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
# The compiler of the instrumented fixtures (conftest.py, test_sanitizers.py).
CC = "clang-19"
BIN = Path(sys.executable).parent

#: Scales every fuzzer's and the model test's budget: make test runs them
#: whole (1), make check a quarter (Makefile).
SCALE = float(os.environ.get("KCOV_FUZZ_EXAMPLES", "1"))
#: Seconds one in-process execution may take (the slowest real one, a
#: collection with symbolisation, takes well under one on a busy machine).
INPROCESS_TIMEOUT = 20
#: Seconds, and bytes of address space, for one CLI run in a subprocess.
SUBPROCESS_TIMEOUT = 120
SUBPROCESS_MEMORY = 3 << 30

REPORT = "kcov-report"
PROFILE = "python -m kcov.profile"
KCOV_BUILD = "kcov-build"
#: Exit statuses each CLI documents (kcov-report: thresholds 2|4|8, and
#: sysexits; kcov.profile and kcov-build pgo: sysexits).
REPORT_STATUS = frozenset({0, 2, 4, 6, 8, 10, 12, 14, 64, 65, 66, 69, 70, 73})
PROFILE_STATUS = frozenset({0, 64, 65, 66, 69, 70, 73})
PGO_STATUS = frozenset({0, 64, 65, 66, 69, 73})


def budget(n: int) -> settings:
    """Hypothesis settings for `n` examples (scaled), derandomized."""
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True,
                    deadline=None, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))


def scaled(n: int) -> int:
    """`n` scaled as the budgets are, at least 1."""
    return max(1, int(n * SCALE))


# --- Execution counts ---------------------------------------------------------------

#: (reader, how) -> executions; printed by conftest's terminal summary.
EXECUTIONS: Counter[tuple[str, str]] = Counter()


def count(reader: str, how: str) -> None:
    EXECUTIONS[(reader, how)] += 1


def executions(reader: str | None = None) -> int:
    return sum(n for (r, _), n in EXECUTIONS.items() if reader is None or r == reader)


def summary_lines() -> list[str]:
    if not EXECUTIONS:
        return []
    readers = sorted({r for r, _ in EXECUTIONS})
    hows = sorted({h for _, h in EXECUTIONS})
    width = max(len(r) for r in readers + ["reader", "total"])
    out = [f"{'reader':<{width}}  " + "  ".join(f"{h:>10}" for h in hows) + f"  {'total':>8}"]
    for r in readers:
        out.append(f"{r:<{width}}  " + "  ".join(f"{EXECUTIONS[(r, h)]:>10}" for h in hows)
                   + f"  {executions(r):>8}")
    out.append(f"{'total':<{width}}  " + "  ".join(
        f"{sum(n for (_, h2), n in EXECUTIONS.items() if h2 == h):>10}" for h in hows)
        + f"  {executions():>8}")
    return out


# --- The corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A valid input of one reader, and where its structure changes."""

    name: str
    kind: str  #: pcs, bare, json, lcov, profraw, profdata, sancov
    data: bytes
    boundaries: tuple[int, ...]

    def __repr__(self) -> str:
        return f"Seed({self.name})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


@dataclass
class Corpus:
    root: Path
    seeds: dict[str, list[Seed]] = field(default_factory=dict)
    #: --module specs that place the bare-PC seeds
    bare_modules: tuple[str, ...] = ()
    #: paths worth putting where a file name goes (module lines, SF:, frames)
    paths: tuple[str, ...] = ()
    #: lines of the real sources (an lcov DA: line beyond them is a lie)
    source: Path | None = None
    #: binaries of the raw profiles by seed name (llvm-cov report inputs)
    prof_binary: dict[str, Path] = field(default_factory=dict)
    #: the trace-pc library loaded in this process, for .sancov
    sancov_lib: Path | None = None
    sancov_range: tuple[int, int, int] = (0, 0, 0)  #: bias, lo, hi
    sancov_pcs: tuple[int, ...] = ()

    def __repr__(self) -> str:  # hypothesis prints the test's arguments
        return f"Corpus({self.root})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def of(self, kind: str) -> list[Seed]:
        return self.seeds[kind]

    def pick(self, kind: str, i: int) -> Seed:
        s = self.seeds[kind]
        return s[i % len(s)]

    def others(self, kind: str) -> list[Seed]:
        return [s for k, v in sorted(self.seeds.items()) if k != kind for s in v]

    def add(self, seed: Seed) -> None:
        self.seeds.setdefault(seed.kind, []).append(seed)


def text_boundaries(data: bytes, limit: int = 400) -> tuple[int, ...]:
    """Line starts and ends, then separators, evenly thinned to `limit`."""
    lines = {0, len(data)}
    for i, b in enumerate(data):
        if b == 0x0A:
            lines.update((i, i + 1))
    seps = [i for i, b in enumerate(data) if b in b":, {}[]\"@=" and i not in lines]
    room = max(0, limit - len(lines))
    if len(seps) > room:
        step = len(seps) / max(1, room)
        seps = [seps[int(k * step)] for k in range(room)]
    out = sorted(lines | set(seps))
    if len(out) > limit:
        step = len(out) / limit
        out = sorted({out[int(k * step)] for k in range(limit)} | {0, len(data)})
    return tuple(out)


def word_boundaries(data: bytes, head: int = 256) -> tuple[int, ...]:
    """Every 8-byte word of the first `head` bytes, then every 64th byte."""
    out = set(range(0, min(head, len(data)), 8)) | set(range(head, len(data), 64))
    out |= {len(data), len(data) - 1, len(data) // 2}
    return tuple(sorted(b for b in out if 0 <= b <= len(data)))


def profraw_layout(data: bytes) -> list[tuple[int, int, dict[str, int]]]:
    """(offset, version, header) of each raw profile of a valid file."""
    from kcov.profile import raw

    out = []
    for p in raw.parse(data):
        names = raw._header_fields(p.version)
        h = dict(zip(names, struct.unpack_from(f"<{len(names)}Q", data, p.offset)))
        out.append((p.offset, p.version, h))
    return out


def profraw_boundaries(data: bytes) -> tuple[int, ...]:
    """Every header field, binary ID, data record and section start and end
    of every raw profile in the file (the layout of raw.py)."""
    from kcov.profile import raw

    out = {0, len(data)}
    for p in raw.parse(data):
        names = raw._header_fields(p.version)
        h = dict(zip(names, struct.unpack_from(f"<{len(names)}Q", data, p.offset)))
        hsize = 8 * len(names)
        out.update(p.offset + 8 * i for i in range(len(names) + 1))
        pos, ids_end = p.offset + hsize, p.offset + hsize + h["BinaryIdsSize"]
        while pos < ids_end:
            (ln,) = struct.unpack_from("<Q", data, pos)
            out.update((pos, pos + 8, pos + 8 + ln))
            pos += 8 + ln + (-ln) % 8
        rec, _, _ = raw._record_layout(p.version, 8)
        out.update(ids_end + i * rec for i in range(p.num_data + 1))
        q = ids_end + p.num_data * rec + h["PaddingBytesBeforeCounters"]
        out.add(q)
        q += h["NumCounters"] * (1 if p.variant & raw.VARIANT_BYTE_COVERAGE else 8)
        out.add(q)
        q += h["PaddingBytesAfterCounters"]
        if p.version == 10:
            q += h["NumBitmapBytes"]
            out.add(q)
            q += h["PaddingBytesAfterBitmapBytes"]
        out.add(q)
        q += h["NamesSize"]
        out.update((q, q + (-h["NamesSize"]) % 8, p.offset + p.size))
    return tuple(sorted(b for b in out if 0 <= b <= len(data)))


def _seed(c: Corpus, kind: str, path: Path, name: str | None = None) -> Seed:
    data = path.read_bytes()
    if kind == "profraw":
        bounds = profraw_boundaries(data)
    elif kind in ("profdata", "sancov"):
        bounds = word_boundaries(data)
    else:
        bounds = text_boundaries(data)
    s = Seed(name or path.name, kind, data, bounds)
    c.add(s)
    return s


def _bias(m: Any) -> int:
    """The load bias of a module map: module_maps(path, bias) maps the same
    segment at the same address."""
    from kcov.report import module_maps

    for seg in module_maps(m.path, 0):
        if seg.file_offset == m.file_offset:
            return int(m.start - seg.start)
    raise AssertionError(f"no executable segment of {m.path} at file offset {m.file_offset:#x}")


def build_corpus(d: Path) -> Corpus:
    """Build and run the fixture programs; every seed is then checked to be
    read without error by its reader, so a mutation is what breaks it."""
    import kcov
    import kcov.profile as kp
    from kcov.report import collect, formats, write_pcs

    for tool in ("clang-19", "clang-14", "clang-16", "llvm-profdata-19", "llvm-profdata-14",
                 "llvm-cov-19", "llvm-symbolizer-19", "gcc-12", "gcov-12", "lcov", "sancov-19",
                 "kcov-build", "kcov-run"):
        need(tool)
    c = Corpus(d)

    # kcov-pcs dumps, bare PCs, kcov JSON and lcov: tests/report's fixture.
    fx = reporthelp.build_fixture("clang-19", d / "fx")
    dumps = []
    for test, (kind, arg) in {"digits": ("digits", "1:2"), "letters": ("letters", "abc")}.items():
        pcs, mods = reporthelp.run_fixture(fx, kind, arg, d)
        dump = d / f"{test}.pcs"
        write_pcs(dump, {test: pcs}, mods)
        dumps.append(dump)
        if test == "digits":
            bare = [m for m in mods if m.path in (str(fx.prog), str(fx.lib))]
            c.bare_modules = tuple(f"{m.path}@{_bias(m):#x}" for m in bare)
            (d / "digits.rawcover").write_text("".join(f"{int(p):x}\n" for p in pcs))
            (d / "digits.kcovtrace").write_text("".join(f"0x{int(p):x}\n" for p in pcs))
    data = collect(dumps)
    formats.write(data, "json", d / "run.json")
    formats.write(data, "lcov", d / "run.info")
    for p in dumps:
        _seed(c, "pcs", p)
    _seed(c, "bare", d / "digits.rawcover")
    _seed(c, "bare", d / "digits.kcovtrace")
    _seed(c, "json", d / "run.json")
    _seed(c, "lcov", d / "run.info")
    c.source = fx.prog_src

    # Raw profiles: a program and its library (two images in one file) by
    # clang-19, the program alone by clang-14 and -16, a PGO build (value
    # profiles), and compiler-rt's own runtime.
    pd = d / "prof"
    pd.mkdir()
    for f in ("fuzzprof.c", "fuzzlib.c"):
        shutil.copy(DATA / f, pd / f)
    kb, run, env = profhelp.kcov_build, profhelp.run, profhelp.env_with

    def profile_of(exe: Path, name: str, *args: str) -> Path:
        out = pd / f"{name}.profraw"
        run([exe, *args], check=False, env=env(LLVM_PROFILE_FILE=str(out)), cwd=pd)
        assert out.is_file() and out.stat().st_size, f"{exe} wrote no profile"
        return out

    kb("--sbcc", "clang-19", "-O1", "-fPIC", "-shared", "fuzzlib.c", "-o", "libfuzzlib.so", cwd=pd)
    kb("--sbcc", "clang-19", "-O1", "-DFUZZ_LIB", "fuzzprof.c", "-L.", "-lfuzzlib",
       f"-Wl,-rpath,{pd}", "-o", "fz19", cwd=pd)
    raws = {"fz19": profile_of(pd / "fz19", "fz19", "5")}
    for v in (14, 16):
        kb("--sbcc", f"clang-{v}", "-O1", "fuzzprof.c", "-o", f"fz{v}", cwd=pd)
        raws[f"fz{v}"] = profile_of(pd / f"fz{v}", f"fz{v}", "4")
    kb("--pgo-generate", "clang-19", "-O1", "fuzzprof.c", "-o", "fzpgo", cwd=pd)
    raws["fzpgo"] = profile_of(pd / "fzpgo", "fzpgo", "7", "x")
    run(["clang-19", "-O1", "-fprofile-instr-generate", "-fcoverage-mapping", "fuzzprof.c", "-o", "fzcrt"], cwd=pd)
    raws["fzcrt"] = profile_of(pd / "fzcrt", "fzcrt", "2")
    for name, p in raws.items():
        _seed(c, "profraw", p)
        c.prof_binary[p.name] = pd / name
    for name, v in (("fz19", 19), ("fz14", 14), ("fzpgo", 19)):
        out = pd / f"{name}.profdata"
        run([f"llvm-profdata-{v}", "merge", "-o", out, raws[name]])
        _seed(c, "profdata", out)
        c.prof_binary[out.name] = pd / name
    # lcov by other producers: llvm-cov export, and lcov over gcc's gcov.
    lc = run(["llvm-cov-19", "export", "-format=lcov", pd / "fz19", "-object", pd / "libfuzzlib.so",
              f"-instr-profile={pd / 'fz19.profdata'}"]).stdout
    (d / "llvm-cov.info").write_text(lc)
    _seed(c, "lcov", d / "llvm-cov.info")
    gd = d / "gcov"
    gd.mkdir()
    shutil.copy(DATA / "fuzzprof.c", gd)
    run(["gcc-12", "--coverage", "-O0", "fuzzprof.c", "-o", "fzgcc"], cwd=gd)
    run([gd / "fzgcc", "6"], check=False, cwd=gd)
    run(["lcov", "--quiet", "--capture", "--rc", "lcov_branch_coverage=1", "--gcov-tool", "gcov-12",
         "--directory", gd, "--output-file", d / "gcov.info"], cwd=gd)
    _seed(c, "lcov", d / "gcov.info")

    # .sancov: kcov PCs of a trace-pc library loaded here, written by
    # kcov.profile.sancov.
    sd = d / "sancov"
    sd.mkdir()
    shutil.copy(DATA / "fuzzlib.c", sd)
    lib_path = sd / "libfzcov.so"
    kb("--mode", "pc", "clang-19", "-O1", "-fPIC", "-shared", "fuzzlib.c", "-o", lib_path, cwd=sd)
    lib = ctypes.CDLL(str(lib_path))
    lib.fzlib_scale.argtypes = [ctypes.c_int]
    with kcov.open(provider="hosted") as k:
        with k.trace(kcov.Mode.PC):
            for x in (1, 20):
                lib.fzlib_scale(x)
        pcs = [int(x) for x in k.pcs()]
    found = kp.runtime.image_of(pcs[0])
    assert found is not None and os.path.samefile(found[0], lib_path), found
    c.sancov_lib, c.sancov_range, c.sancov_pcs = lib_path, found[1:], tuple(pcs)
    files = kp.write_sancov(pcs, sd, pid=1)
    assert len(files) == 1, files
    _seed(c, "sancov", files[0], "libfzcov.so.1.sancov")

    c.paths = (str(fx.prog), str(fx.lib), str(fx.dir / "fixlib.o"), str(fx.prog_src),
               "/nonexistent/file.c", "/etc/passwd", "/tmp", "/dev/null", "/dev/zero",
               str(pd / "fz19"), str(d / "run.json"), "", "relative/x.c", "a b\tc")

    # Every seed reads cleanly: the mutations, not the seeds, are what fail.
    for s in c.of("pcs"):
        collect(d / s.name)
    for s in c.of("bare"):
        collect(d / s.name, modules=modules_of(c))
    for s in c.of("json") + c.of("lcov"):
        formats.read_bytes(s.data, s.name)
    from kcov.profile import raw
    for s in c.of("profraw"):
        raw.parse(s.data, s.name)
    return c


def modules_of(c: Corpus) -> list[Any]:
    from kcov.report import module_maps

    out = []
    for spec in c.bare_modules:
        path, _, base = spec.partition("@")
        out += module_maps(path, int(base, 16))
    return out


# --- Mutations ----------------------------------------------------------------------

#: A position: ("b", i) is the i-th structural boundary of the seed (mod
#: their number), ("r", i) any byte offset (mod the length + 1).
POS = st.one_of(st.tuples(st.just("b"), st.integers(0, 1 << 20)),
                st.tuples(st.just("r"), st.integers(0, 1 << 20)))
BAD_UTF8 = [b"\xff", b"\xc3", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xc0\xaf",
            b"\xef\xbb\xbf", b"\xfe\xff"]
BLOBS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"\x00", b"\n", b"\r\n", b"\r", b"\t", b" ", b"\x0c", b"\x1e", b"\xe2\x80\xa8",
                     b"0", b"-", b"#", b"{", b"}", b"[", b"\"", b"\\", b"0x", b"\x00" * 8, b"\xff" * 8,
                     *BAD_UTF8]),
)
BYTE_OPS = st.one_of(
    st.tuples(st.just("truncate"), POS),
    st.tuples(st.just("flip"), POS, st.integers(0, 7)),
    st.tuples(st.just("insert"), POS, BLOBS),
    st.tuples(st.just("delete"), POS, st.integers(1, 64)),
    st.tuples(st.just("overwrite"), POS, BLOBS),
    st.tuples(st.just("dup"), POS, st.integers(1, 600)),
    st.tuples(st.just("long"), POS, st.sampled_from([4096, 65537, 1 << 20]),
              st.sampled_from([b"A", b"7", b"f", b"\xff", b" ", b"0x1\n", b"\x00", b"[", b"{\"a\":"])),
    st.tuples(st.just("swap"), st.integers(0, 1000)),
    st.tuples(st.just("splice"), st.integers(0, 1000), POS, POS),
    st.just(("empty",)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=80)),
)
NUMBERS = ["0", "1", "-1", "-0", "+1", "00", "0x0", "0x", "0x-1", "ffffffffffffffff", "10000000000000000",
           "1" * 30, "f" * 40, "4000000000", "2147483648", "18446744073709551615", "18446744073709551616",
           "99999999", "1e3", "1.5", "nan", "inf", "1_0", "\u0663", "\uff10", " ", "", "\x00", "@x300",
           "@9x5000"]
#: Long values, named in the strategies (hypothesis prints examples).
LONG = {"@x300": "x" * 300, "@9x5000": "9" * 5000}
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
#: Lines worth trying per text format.
LINES = {
    "pcs": ["kcov-pcs v1", "kcov-pcs v2", "kcov-pcs", "kcov-pcs v1 extra", "module", "test", "test ",
            "test \u00e9\u0000", "# producer: someone else", "0x", "0xg", "-1", "ffffffffffffffffffff",
            "  0x1  ", "0x0", "module 0 0 0 exe - /x", "module 0x1000 0x0 0 exe - /x",
            "module 0 ffffffffffffffffffffff 0 exe - /x", "module 0 0x1000 0 kmod - {path}",
            "module 0 0x1000 0 vmlinux - {path}", "module 0 0x1000 0 dso 00 {path}",
            "module 0 0x1000 0 exe - {path}", "module 0 0x1000 0 bogus - {path}",
            "module 0x0 0xffffffffffffffff 0x0 exe - {path}", "module 1 2 3 exe"],
    "bare": ["0", "0x0", "ffffffffffffffff", "1" * 17, "f" * 40, "0x", "zz", "-1", "# comment", "kcov-pcs v1",
             " 0x10 ", "0x10 0x20", "{}"],
    "lcov": ["SF:", "SF:{path}", "SF:/dev/zero", "end_of_record", "TN:", "TN:a,b", "TN:\u00e9", "DA:", "DA:1",
             "DA:0,1", "DA:1,-1", "DA:-1,1", "DA:4000000000,1", "DA:1,99999999999999999999", "DA:1,1,abc",
             "DA:3,1,md5", "DA:2000000,1", "FN:1,f", "FN:1,2,f", "FN:5,1,f", "FN:,f", "FN:1,", "FN:-1,f",
             "FNDA:1,", "FNDA:x,f", "FNDA:1,nosuchfn", "FNL:0,1,2", "FNL:0", "FNA:0,1,f", "FNA:9,1,f",
             "FNA:0,-1,f", "BRDA:1,0,0,-", "VER:2", "LF:x", ":", "DA:1,1\x00", "FNF:1", "LH:99"],
    "json": ["{", "}", "[]", "{}", "null", "\"format\": \"kcov-coverage\"", "\"version\": 2,",
             "\"version\": 1,", "NaN", "-Infinity", "1e999", "\"\\ud800\"", "\"\\u0000\""],
}
TOKEN_OP = st.tuples(st.just("token"), st.integers(0, 1 << 16), st.integers(0, 16), st.sampled_from(NUMBERS))
TEXT_OPS = st.one_of(
    TOKEN_OP, TOKEN_OP,
    st.tuples(st.just("line_del"), st.integers(0, 1 << 16)),
    st.tuples(st.just("line_dup"), st.integers(0, 1 << 16), st.integers(1, 3)),
    st.tuples(st.just("line_swap"), st.integers(0, 1 << 16), st.integers(0, 1 << 16)),
    st.tuples(st.just("line_set"), st.integers(0, 1 << 16), st.integers(0, 1 << 10), TEXT),
    st.tuples(st.just("line_add"), st.integers(0, 1 << 16), st.integers(0, 1 << 10), TEXT),
    st.tuples(st.just("path"), st.integers(0, 1 << 16), st.integers(0, 64)),
    st.just(("crlf",)),
)
#: Values a JSON node may become.
JSON_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 7, 2**31, 2**63, 2**64, 10**40, 0.5, -0.0, 1e308, float("nan"), float("inf"),
    "", "x", "\ud800", "\x00", "a" * 5000, "{path}", "../../../etc/passwd", [], {}, [0, 0, 0, 0],
    ["f", "{path}", 1, 0], ["f", "{path}", 4000000000, 0], [[]], {"format": "kcov-coverage"},
    "kcov-coverage", "exe", "dso", "lcov", "kmod", "vmlinux", "build-id:", "name:x", "deep",
]
JSON_OPS = st.one_of(
    st.tuples(st.just("jset"), st.lists(st.integers(0, 1 << 16), min_size=0, max_size=8),
              st.integers(0, len(JSON_VALUES) - 1), st.integers(0, 64)),
    st.tuples(st.just("jdel"), st.lists(st.integers(0, 1 << 16), min_size=1, max_size=8)),
    st.tuples(st.just("jdup"), st.lists(st.integers(0, 1 << 16), min_size=1, max_size=8)),
)
#: Header field values of binary formats (resolved against the old value).
FIELD_VALUES = ["zero", "one", "dec", "inc", "dbl", "half", "2^32", "2^40", "2^40+1", "2^63", "max", "len",
                "len/8", "hi"]
FIELD_OPS = st.tuples(st.just("field"), st.integers(0, 7), st.integers(0, 31), st.sampled_from(FIELD_VALUES))
VERSION_OPS = st.tuples(st.just("version"), st.integers(0, 7),
                        st.sampled_from([0, 5, 7, 8, 9, 10, 11, 12, 0xFFFFFFFF, "byte", "temporal", "dbg",
                                         "magic32", "magic-be", "indexed"]))
WORD_OPS = st.tuples(st.just("word"), st.integers(0, 63), st.sampled_from(FIELD_VALUES))


def mutations(kind: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    ops = [BYTE_OPS]
    if kind in ("pcs", "bare", "lcov", "json"):
        ops += [TEXT_OPS, TEXT_OPS]
    if kind == "json":
        ops += [JSON_OPS, JSON_OPS]
    if kind == "profraw":
        ops += [FIELD_OPS, FIELD_OPS, VERSION_OPS]
    if kind in ("profdata", "sancov"):
        ops += [WORD_OPS, WORD_OPS]
    return st.lists(st.one_of(*ops), min_size=1, max_size=4)


def _pos(p: tuple[str, int], data: bytes, seed: Seed) -> int:
    kind, i = p
    if kind == "b" and seed.boundaries:
        return min(seed.boundaries[i % len(seed.boundaries)], len(data))
    return i % (len(data) + 1)


def _field_value(v: str, old: int, n: int) -> int:
    return {"zero": 0, "one": 1, "dec": old - 1, "inc": old + 1, "dbl": old * 2, "half": old // 2,
            "2^32": 1 << 32, "2^40": 1 << 40, "2^40+1": (1 << 40) + 1, "2^63": 1 << 63, "max": 2**64 - 1,
            "len": n, "len/8": n // 8, "hi": old | (1 << 32)}[v] & (2**64 - 1)


def _json_node(doc: Any, path: Sequence[int]) -> tuple[Any, Any]:
    """(container, key) of the node `path` leads to (the root: (None, None))."""
    parent, key, node = None, None, doc
    for i in path:
        if isinstance(node, dict) and node:
            k = sorted(node)[i % len(node)]
        elif isinstance(node, list) and node:
            k = i % len(node)
        else:
            break
        parent, key, node = node, k, node[k]
    return parent, key


def _json_value(i: int, c: Corpus, j: int) -> Any:
    v = JSON_VALUES[i]
    if v == "deep":
        v = json.loads("[" * 3000 + "]" * 3000) if j % 2 else {"a": json.loads("[" * 200 + "]" * 200)}
    elif isinstance(v, str) and "{path}" in v:
        v = v.replace("{path}", c.paths[j % len(c.paths)])
    elif isinstance(v, list):
        v = [x.replace("{path}", c.paths[j % len(c.paths)]) if isinstance(x, str) else x for x in v]
    return v


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def mutate(seed: Seed, ops: Sequence[tuple[Any, ...]], c: Corpus) -> bytes:
    """Apply `ops` to the seed's bytes, in order."""
    from kcov.profile import raw

    data = seed.data
    for op in ops:
        name, args = op[0], op[1:]
        n = len(data)
        if name == "truncate":
            data = data[:_pos(args[0], data, seed)]
        elif name == "flip" and n:
            i = _pos(args[0], data, seed) % n
            data = data[:i] + bytes([data[i] ^ (1 << args[1])]) + data[i + 1:]
        elif name == "insert":
            i = _pos(args[0], data, seed)
            data = data[:i] + args[1] + data[i:]
        elif name == "delete":
            i = _pos(args[0], data, seed)
            data = data[:i] + data[i + args[1]:]
        elif name == "overwrite":
            i = _pos(args[0], data, seed)
            data = data[:i] + args[1] + data[i + len(args[1]):]
        elif name == "dup":
            i = _pos(args[0], data, seed)
            data = data[:i] + data[i:i + args[1]] + data[i:]
        elif name == "long":
            i = _pos(args[0], data, seed)
            data = data[:i] + args[2] * (args[1] // len(args[2]) + 1) + data[i:]
        elif name == "swap":
            pool = c.others(seed.kind)
            data = pool[args[0] % len(pool)].data
        elif name == "splice":
            pool = c.others(seed.kind) + c.of(seed.kind)
            other = pool[args[0] % len(pool)]
            data = data[:_pos(args[1], data, seed)] + other.data[_pos(args[2], other.data, other):]
        elif name == "empty":
            data = b""
        elif name == "junk":
            data = args[0]
        elif name.startswith("line_") or name in ("token", "path", "crlf"):
            data = _text_op(name, args, data, seed, c)
        elif name in ("jset", "jdel", "jdup"):
            data = _json_op(name, args, data, c)
        elif name in ("field", "version"):
            data = _raw_op(name, args, data, raw)
        elif name == "word" and n >= 8:
            i = (args[0] * 8) % (n - n % 8 or 8)
            (old,) = struct.unpack_from("<Q", data, i)
            data = data[:i] + struct.pack("<Q", _field_value(args[1], old, n)) + data[i + 8:]
    return data


def _text_op(name: str, args: tuple[Any, ...], data: bytes, seed: Seed, c: Corpus) -> bytes:
    lines = _lines(data)
    if name == "crlf":
        return data.replace(b"\n", b"\r\n")
    i = args[0] % len(lines)
    if name == "line_del":
        del lines[i]
    elif name == "line_dup":
        lines[i:i] = [lines[i]] * args[1]
    elif name == "line_swap":
        j = args[1] % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    elif name in ("line_set", "line_add"):
        vocab = LINES.get(seed.kind, [])
        k = args[1]
        if vocab and k % 3:
            text = vocab[k % len(vocab)].replace("{path}", c.paths[k % len(c.paths)])
        else:
            text = args[2]
        new = text.encode("utf-8", "surrogatepass")
        if name == "line_set":
            lines[i] = new
        else:
            lines.insert(i, new)
    elif name == "token":
        import re

        # A number of a line that has some (a PC, an address, a line or a
        # count), else any field.
        numeric = [k for k, ln in enumerate(lines) if re.search(rb"[ ,:\[]\d|^[0-9a-fx]+$", ln)]
        if numeric:
            i = numeric[args[0] % len(numeric)]
        parts = re.split(rb"([ ,:@\t\[\]])", lines[i])
        tokens = [k for k in range(0, len(parts), 2) if re.fullmatch(rb"(0x)?[0-9a-f]+", parts[k])] \
            or list(range(0, len(parts), 2))
        t = tokens[args[1] % len(tokens)]
        parts[t] = LONG.get(args[2], args[2]).encode("utf-8", "surrogatepass")
        lines[i] = b"".join(parts)
    elif name == "path":
        import re

        # The last field of a module line, an SF: path, a JSON string that
        # names a file: another file, of another kind or none.
        new = c.paths[args[1] % len(c.paths)].encode()
        named = [k for k, ln in enumerate(lines) if ln.startswith((b"module ", b"SF:")) or b'"/' in ln]
        if named:
            i = named[args[0] % len(named)]
        line = lines[i]
        if line.startswith(b"module "):
            parts = line.split(b" ", 6)
            if len(parts) == 7:
                parts[6] = new
            lines[i] = b" ".join(parts)
        elif line.startswith(b"SF:"):
            lines[i] = b"SF:" + new
        else:
            lines[i] = re.sub(rb'"/[^"]*"', b'"' + new + b'"', line, count=1)
    return b"\n".join(lines)


def _json_op(name: str, args: tuple[Any, ...], data: bytes, c: Corpus) -> bytes:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return data
    parent, key = _json_node(doc, args[0])
    if name == "jset":
        value = _json_value(args[1], c, args[2])
        if parent is None:
            doc = value
        else:
            parent[key] = value
    elif name == "jdel" and parent is not None:
        del parent[key]
    elif name == "jdup" and parent is not None:
        if isinstance(parent, list):
            parent.insert(key, parent[key])
        else:
            parent[f"{key}_"] = parent[key]
    try:
        return json.dumps(doc, indent=1 if len(args[0]) % 2 else None).encode()
    except (ValueError, RecursionError):
        return data


def _raw_op(name: str, args: tuple[Any, ...], data: bytes, raw: Any) -> bytes:
    try:
        layout = profraw_layout(data)
    except Exception:  # an earlier op broke it: change the first header then
        layout = [(0, 10, {})] if len(data) >= 128 else []
    if not layout:
        return data
    off, version, _ = layout[args[0] % len(layout)]
    if name == "field":
        fields = raw._header_fields(version)
        i = off + 8 * (args[1] % len(fields))
        if i + 8 > len(data):
            return data
        (old,) = struct.unpack_from("<Q", data, i)
        return data[:i] + struct.pack("<Q", _field_value(args[2], old, len(data))) + data[i + 8:]
    v = args[1]
    if off + 16 > len(data):
        return data
    magic, word = struct.unpack_from("<QQ", data, off)
    if v == "byte":
        word |= raw.VARIANT_BYTE_COVERAGE
    elif v == "temporal":
        word |= raw.VARIANT_TEMPORAL
    elif v == "dbg":
        word |= raw.VARIANT_DBG_CORRELATE
    elif v == "magic32":
        magic = raw.RAW_MAGIC32
    elif v == "magic-be":
        magic = int.from_bytes(magic.to_bytes(8, "little"), "big")
    elif v == "indexed":
        magic = raw.INDEXED_MAGIC
    else:
        word = (word & ~0xFFFFFFFF) | v
    return data[:off] + struct.pack("<QQ", magic, word) + data[off + 16:]


# --- Outcomes -----------------------------------------------------------------------


class Hang(BaseException):
    """An in-process execution ran past INPROCESS_TIMEOUT (a BaseException,
    so that no reader's `except Exception` can swallow it)."""


#: Bytes of address space an in-process execution may add (a reader that
#: allocates without bound then fails with MemoryError, not the machine).
INPROCESS_MEMORY = 3 << 30


@contextlib.contextmanager
def bounded(seconds: float = INPROCESS_TIMEOUT) -> Iterator[None]:
    """An in-process execution's deadline and memory bound."""
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + INPROCESS_MEMORY
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        with deadline(seconds):
            yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_message(e: BaseException, statuses: frozenset[int], attr: str) -> int:
    """A reader's error: one non-empty line and a documented status."""
    msg = str(e)
    assert msg.strip() and "\n" not in msg, f"{type(e).__name__}: not one line: {msg!r}"
    status = int(getattr(e, attr))
    assert status in statuses and status >= 64, f"{type(e).__name__} {msg!r}: status {status}"
    return status


def report_error(e: BaseException) -> int:
    return check_message(e, REPORT_STATUS, "exit_status")


def profile_error(e: BaseException) -> int:
    return check_message(e, PROFILE_STATUS, "exit_code")


@dataclass(frozen=True)
class CliResult:
    status: int
    stdout: str
    stderr: str


def run_inprocess(main: Callable[[list[str]], int], argv: Sequence[str], cwd: Path) -> CliResult:
    """A CLI's main() in this process, with its own cwd, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), bounded():
        try:
            status = main(list(argv))
        except SystemExit as e:  # argparse's --help of kcov.profile
            status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    return CliResult(int(status), out.getvalue(), err.getvalue())


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SUBPROCESS_MEMORY, SUBPROCESS_MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_subprocess(cmd: Sequence[str | Path], cwd: Path, stdin: bytes = b"") -> CliResult:
    """A CLI in a child: a signal (a crash) or the timeout (a hang) fails."""
    env = profhelp.env_with(PYTHONDONTWRITEBYTECODE="1")
    try:
        r = subprocess.run([str(x) for x in cmd], cwd=cwd, input=stdin, capture_output=True,
                           timeout=SUBPROCESS_TIMEOUT, preexec_fn=_limits, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"hang: {' '.join(map(str, cmd))} ran over {SUBPROCESS_TIMEOUT} s") from None
    stderr = r.stderr.decode("utf-8", "replace")
    assert r.returncode >= 0, f"{' '.join(map(str, cmd))} died of signal {-r.returncode}:\n{stderr}"
    return CliResult(r.returncode, r.stdout.decode("utf-8", "replace"), stderr)


def check_cli(r: CliResult, prog: str, statuses: frozenset[int], what: str = "") -> None:
    """A documented status, never a traceback; an error is one line that
    names the program (after any warnings)."""
    where = f"{what}\nstatus {r.status}\nstderr:\n{r.stderr[-3000:]}"
    assert r.status in statuses, f"undocumented exit status: {where}"
    assert "Traceback" not in r.stderr, f"traceback: {where}"
    # A tool that crashed is reported as a crash, not with its crash banner.
    assert "PLEASE submit a bug report" not in r.stderr and "Stack dump:" not in r.stderr, f"tool crash: {where}"
    if r.status >= 64:
        errors = [ln for ln in r.stderr.splitlines() if not ln.startswith(f"{prog}: warning:")]
        assert len(errors) == 1, f"not one error line: {where}"
        assert errors[0].startswith(f"{prog}: ") and errors[0][len(prog) + 2:].strip(), f"bad error line: {where}"


# --- Output directories -------------------------------------------------------------

STAMP = ".kcov-report"


def tree(d: Path) -> dict[str, bytes | None]:
    """Every entry under `d`: file -> its bytes, directory -> None."""
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(d):
        for x in dirs:
            out[os.path.relpath(os.path.join(root, x), d)] = None
        for x in files:
            p = os.path.join(root, x)
            out[os.path.relpath(p, d)] = Path(p).read_bytes() if os.path.isfile(p) else b"?"
    return out


def check_no_temporaries(d: Path, what: str = "") -> None:
    """No temporary file of an atomic write is left anywhere under d (they
    are hidden: `.NAME.XXXX`)."""
    left = [k for k in tree(d) if os.path.basename(k).startswith(".") and os.path.basename(k) != STAMP]
    assert not left, f"temporary files left behind: {left} {what}"


def check_untouched(before: dict[str, bytes | None], d: Path, what: str = "") -> None:
    after = tree(d)
    assert after == before, (f"a failed run changed its output directory: "
                             f"{sorted(set(after) ^ set(before)) or 'contents changed'} {what}")


def check_output_file(path: Path, fmt: str) -> Any:
    """A complete output of `fmt`; returns what a reader makes of it."""
    from kcov.report import formats

    assert path.exists(), f"{path} was not written"
    if fmt in ("json", "lcov"):
        return formats.read(path, fmt)
    if fmt == "cobertura":
        import xml.etree.ElementTree as ET

        return ET.parse(path).getroot()
    if fmt == "json-summary":
        return json.loads(path.read_bytes())
    if fmt == "html":
        index = path / "index.html" if path.is_dir() else path
        text = index.read_text()
        assert text.rstrip().endswith("</html>"), f"{index} is incomplete"
        if path.is_dir():
            assert (path / STAMP).is_file()
        return text
    return path.read_text()
