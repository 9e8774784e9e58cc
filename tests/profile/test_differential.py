"""Our profile runtime against compiler-rt's, on the same programs and inputs.

For clang-14, clang-16 and clang-19, each program is built twice from the
same source directory (so the coverage mappings name the same files):
once by `kcov-build --sbcc`, which links kcov's runtime, and once by the
same clang with plain `-fprofile-instr-generate -fcoverage-mapping`, which
links compiler-rt's libclang_rt.profile.  Both run the same inputs, each
run writing its own file (LLVM_PROFILE_FILE=.../%p.profraw).  Then, per
run and after merging all runs:

* `llvm-profdata-N show --all-functions --counts` prints the same text;
* `llvm-cov-N report` of each binary with its own profile prints the same
  table;
* the raw files agree field by field, except what depends on load
  addresses or on the binary's identity (kept apart by profhelp.normalized).

The programs: the foundation's example (examples/kvdev, built by its own
Makefile, driven by data/kvdrive.c, two images per run) and LZ4 1.9.4
(Debian's orig tarball, its own Makefile, the lz4 command line tool).
"""
from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from profhelp import (CLANGS, DATA, KVDEV, OUR_IMAGE_SYMBOLS, env_with, kcov_build, lz4_tarball, need, need_clang,
                      normalized, run)

SBCC = "-fprofile-instr-generate -fcoverage-mapping"

KV_RUNS = [
    ["put:alpha=1", "put:beta=2", "get:alpha", "get:nope", "count"],
    ["put:alpha=1", "put:alpha=3", "del:alpha", "del:alpha", "put:BAD=1", "bad", "clear", "count"],
    ["put:" + k + "=7" for k in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q")],
]


@dataclass(frozen=True)
class Built:
    cc: str
    llvm: int
    exe: dict[str, Path]  # runtime ("ours", "ref") -> the program
    objects: dict[str, list[Path]]  # runtime -> further images for llvm-cov
    report_args: tuple[str, ...] = ()


def _nm_defined(path: Path) -> set[str]:
    out = run(["nm", "--defined-only", path]).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def _assert_runtime_is_ours(binary: Path) -> None:
    """No compiler-rt profile runtime in the image: none of its symbols."""
    syms = _nm_defined(binary)
    foreign = sorted(s for s in syms if s.startswith(("lprof", "__llvm_profile_", "__llvm_write_binary_ids",
                                                       "INSTR_PROF", "__llvm_orderfile"))
                     and s not in OUR_IMAGE_SYMBOLS)
    assert not foreign, f"{binary.name} carries compiler-rt's profile runtime: {foreign[:8]}"
    assert "__llvm_profile_runtime" in syms  # ours, from kcovprof-module*.o


def _assert_runtime_is_compiler_rt(binary: Path) -> None:
    syms = _nm_defined(binary)
    assert "lprofWriteData" in syms or "__llvm_profile_write_file" in syms, binary


def _run_all(built: Built, runs: list[list[str]], tmp: Path, cwd: Path) -> dict[str, list[Path]]:
    """Run every input with each runtime; the raw files, in run order."""
    files: dict[str, list[Path]] = {}
    for rt, exe in built.exe.items():
        d = tmp / f"prof-{rt}"
        d.mkdir()
        got = []
        for i, args in enumerate(runs):
            out = d / f"run{i}.profraw"
            p = run([exe, *args], env=env_with(LLVM_PROFILE_FILE=str(out)), cwd=cwd)
            assert "LLVM Profile Error" not in p.stderr and "kcov profile" not in p.stderr, p.stderr
            assert out.is_file() and out.stat().st_size > 0, f"{rt}: run {i} wrote no profile"
            got.append(out)
        files[rt] = got
    return files


def _compare(built: Built, files: dict[str, list[Path]], tmp: Path) -> None:
    v = built.llvm
    show = f"llvm-profdata-{v}"
    for a, b in zip(files["ours"], files["ref"]):
        ours = run([show, "show", "--all-functions", "--counts", a]).stdout
        ref = run([show, "show", "--all-functions", "--counts", b]).stdout
        assert ours == ref, f"{built.cc}: llvm-profdata show differs for {a.name}"
        assert "Block counts" in ours or "Function count" in ours
        assert normalized(a.read_bytes()) == normalized(b.read_bytes()), f"{built.cc}: {a.name} differs"
    reports = {}
    for rt in ("ours", "ref"):
        merged = tmp / f"{rt}.profdata"
        run([show, "merge", "-o", merged, *files[rt]])
        shown = run([show, "show", "--all-functions", "--counts", merged]).stdout
        reports[rt] = (shown, run([f"llvm-cov-{v}", "report", *built.report_args, built.exe[rt],
                                   *(a for o in built.objects[rt] for a in ("-object", o)),
                                   f"-instr-profile={merged}"]).stdout)
    assert reports["ours"][0] == reports["ref"][0], f"{built.cc}: merged profiles differ"
    assert reports["ours"][1] == reports["ref"][1], f"{built.cc}: llvm-cov report differs"
    total = reports["ours"][1].splitlines()[-1]
    assert total.startswith("TOTAL"), reports["ours"][1]
    # The runs really covered something, and not everything.
    assert "100.00%" not in total.split()[3] and "0.00%" != total.split()[3], total


# --- examples/kvdev ---------------------------------------------------------------


def _build_kvdev(cc: str, tmp: Path) -> tuple[Built, Path]:
    llvm = need_clang(cc)
    need("make", "nm")
    src = tmp / "kvdev"  # one directory, both builds: the same paths in the coverage mapping
    shutil.copytree(KVDEV, src)
    shutil.copy(DATA / "kvdrive.c", src / "kvdrive.c")
    exe: dict[str, Path] = {}
    objects: dict[str, list[Path]] = {}
    for rt in ("ours", "ref"):
        out = tmp / rt
        out.mkdir()
        run(["make", "-C", src, "clean"])
        if rt == "ours":
            # The example's own Makefile, unaware of kcov.
            kcov_build("--sbcc", "--compiler", cc, "--", "make", "-C", src)
            shutil.copy(src / "libkvdev.so", out / "libkvdev.so")
            kcov_build("--sbcc", cc, "-O2", "-g", f"{src}/kvdrive.c", "-L", out, "-lkvdev",
                       f"-Wl,-rpath,{out}", "-o", out / "kvdrive", cwd=src)
        else:
            run(["make", "-C", src, f"CC={cc}", f"CFLAGS=-O2 -g {SBCC}"])
            # The Makefile links without CFLAGS: relink with the profile runtime.
            run([cc, "-fprofile-instr-generate", "-shared", src / "kvdev.o", "-o", out / "libkvdev.so"])
            run([cc, "-O2", "-g", *SBCC.split(), f"{src}/kvdrive.c", "-L", out, "-lkvdev",
                 f"-Wl,-rpath,{out}", "-o", out / "kvdrive"], cwd=src)
        exe[rt] = out / "kvdrive"
        objects[rt] = [out / "libkvdev.so"]
    for rt in ("ours", "ref"):
        check = _assert_runtime_is_ours if rt == "ours" else _assert_runtime_is_compiler_rt
        check(exe[rt])
        check(objects[rt][0])
    return Built(cc, llvm, exe, objects), src


@pytest.mark.parametrize("cc", list(CLANGS))
def test_kvdev_same_profiles_as_compiler_rt(cc: str, tmp_path: Path) -> None:
    built, src = _build_kvdev(cc, tmp_path)
    files = _run_all(built, KV_RUNS, tmp_path, src)
    # Each run's file holds two raw profiles: the program's and the library's.
    from kcov.profile import raw

    for f in files["ours"]:
        profs = raw.read(f)
        assert len(profs) == 2 and all(p.binary_ids for p in profs), profs
        assert profs[0].version == (10 if CLANGS[cc] >= 19 else 8)
    _compare(built, files, tmp_path)


# --- LZ4 1.9.4 ---------------------------------------------------------------------


def _lz4_runs(work: Path) -> list[list[str]]:
    text = work / "in.txt"
    text.write_bytes(b"".join(p.read_bytes() for p in sorted((work / "lz4-1.9.4" / "lib").glob("*.c"))))
    binary = work / "in.bin"
    binary.write_bytes(bytes((i * 7919 + (i >> 5)) & 0xFF for i in range(150_000)))
    return [
        ["-q", "-f", str(text), str(work / "t.lz4")],
        ["-q", "-d", "-f", str(work / "t.lz4"), str(work / "t.out")],
        ["-q", "-9", "-f", str(binary), str(work / "b.lz4")],
        ["-q", "-t", str(work / "b.lz4")],
        ["-q", "--fast=3", "-B4", "-BD", "-f", str(text), str(work / "f.lz4")],
        ["-q", "-l", "-f", str(text), str(work / "l.lz4")],
    ]


@pytest.mark.slow
@pytest.mark.parametrize("cc", list(CLANGS))
def test_lz4_same_profiles_as_compiler_rt(cc: str, tmp_path: Path) -> None:
    llvm = need_clang(cc)
    need("make", "nm")
    with tarfile.open(lz4_tarball()) as tf:
        tf.extractall(tmp_path, filter="data")
    src = tmp_path / "lz4-1.9.4"
    exe: dict[str, Path] = {}
    for rt in ("ours", "ref"):
        run(["make", "-C", src / "programs", "clean"])
        run(["make", "-C", src / "lib", "clean"])
        if rt == "ours":
            kcov_build("--sbcc", "--compiler", cc, "--", "make", "-j2", "-C", src / "programs", "lz4", "CFLAGS=-O2")
        else:
            run(["make", "-j2", "-C", src / "programs", "lz4", f"CC={cc}", f"CFLAGS=-O2 {SBCC}"])
        exe[rt] = tmp_path / f"lz4-{rt}"
        shutil.copy(src / "programs" / "lz4", exe[rt])
    _assert_runtime_is_ours(exe["ours"])
    _assert_runtime_is_compiler_rt(exe["ref"])
    built = Built(cc, llvm, exe, {"ours": [], "ref": []})
    files = _run_all(built, _lz4_runs(tmp_path), tmp_path, tmp_path)
    assert (tmp_path / "t.out").read_bytes() == (tmp_path / "in.txt").read_bytes()
    _compare(built, files, tmp_path)


# --- %m: online merging, file names ---------------------------------------------------


@pytest.mark.parametrize("cc", ["clang-14", "clang-19"])
def test_merge_pool_names_and_sums_match_compiler_rt(cc: str, tmp_path: Path) -> None:
    """LLVM_PROFILE_FILE=...%m: each image merges every run into its own file,
    named by compiler-rt's module signature; names and sums must match."""
    built, src = _build_kvdev(cc, tmp_path)
    shown = {}
    for rt, exe in built.exe.items():
        d = tmp_path / f"m-{rt}"
        d.mkdir()
        for args in KV_RUNS:
            run([exe, *args], env=env_with(LLVM_PROFILE_FILE=f"{d}/kv-%m.profraw"), cwd=src)
        names = sorted(p.name for p in d.iterdir())
        assert len(names) == 2, names  # one file per image
        shown[rt] = (names, [run([f"llvm-profdata-{built.llvm}", "show", "--all-functions", "--counts",
                                  d / n]).stdout for n in names])
    assert shown["ours"][0] == shown["ref"][0], "the %m file names differ from compiler-rt's"
    assert shown["ours"][1] == shown["ref"][1], "the merged counts differ from compiler-rt's"
    assert "Function count: 3" in "".join(shown["ours"][1])  # main ran once per run


@pytest.mark.parametrize("variant", ["single-byte", "mcdc"])
def test_clang19_variants_match_compiler_rt(variant: str, tmp_path: Path) -> None:
    """clang-19's single-byte counters (the compiler then emits
    __llvm_profile_raw_version with the byte-coverage bit) and MC/DC
    bitmaps (the __llvm_prf_bits section, v10's BitmapDelta)."""
    need_clang("clang-19")
    src = tmp_path / "kv"
    src.mkdir()
    shutil.copy(KVDEV / "kvdev.c", src)
    shutil.copy(DATA / "kvdrive.c", src)
    flags = ["-mllvm", "-enable-single-byte-coverage"] if variant == "single-byte" else ["-fcoverage-mcdc"]
    exe = {}
    for rt in ("ours", "ref"):
        exe[rt] = tmp_path / f"kv-{rt}"
        if rt == "ours":
            kcov_build("--sbcc", "clang-19", "-O1", *flags, "kvdev.c", "kvdrive.c", "-o", exe[rt], cwd=src)
        else:
            run(["clang-19", "-O1", *SBCC.split(), *flags, "kvdev.c", "kvdrive.c", "-o", exe[rt]], cwd=src)
    mcdc = ("--show-mcdc-summary",) if variant == "mcdc" else ()
    built = Built("clang-19", 19, exe, {"ours": [], "ref": []}, mcdc)
    files = _run_all(built, KV_RUNS, tmp_path, src)
    from kcov.profile import raw

    p = raw.read(files["ours"][0])[0]
    assert p.version == 10
    if variant == "single-byte":
        assert p.variant & raw.VARIANT_BYTE_COVERAGE
    else:
        assert p.num_bitmap_bytes > 0
    _compare(built, files, tmp_path)
