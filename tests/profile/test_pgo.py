"""kcov-build's PGO flow: --pgo-generate, `kcov-build pgo merge`, --pgo-use.

On LZ4 1.9.4 (Debian's orig tarball, its own Makefile, the lz4 tool), with
clang-19:

* `kcov-build --pgo-generate -- make` links our runtime (not compiler-rt's);
  the runs merge into the compiler's default_%m.profraw; `kcov-build pgo
  merge` makes the .profdata; `kcov-build --pgo-use` builds an lz4 that
  links nothing of kcov's, works, and differs from the plain -O2 build;
* the same build instrumented by plain clang (compiler-rt) and the same
  workload give a profile that llvm-profdata shows identically, and
  -fprofile-instr-use of either gives byte-identical objects and program.

Bad input, each one line on stderr and a sysexits status, no file left
behind: pgo merge of truncated, foreign or missing files, of profiles of
different binaries or raw versions, with a missing llvm-profdata; --pgo-use
of a missing, raw, foreign or truncated profile, or of one its clang cannot
read; a warning for a profile of another clang generation.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from profhelp import BIN, DATA, OUR_IMAGE_SYMBOLS, ROOT, env_with, kcov_build, lz4_tarball, need, need_clang, run

SHOW = ("show", "--all-functions", "--counts", "--ic-targets", "--memop-sizes")
LZ4_OBJECTS = ("lib/lz4.o", "lib/lz4hc.o", "lib/lz4frame.o", "lib/xxhash.o", "lib/lz4file.o",
               "programs/bench.o", "programs/datagen.o", "programs/lz4cli.o", "programs/lz4io.o")


def _one_line(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == code, (p.returncode, p.stderr)
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# --- LZ4 1.9.4 ----------------------------------------------------------------------


@dataclass(frozen=True)
class Lz4:
    work: Path
    src: Path
    gen: dict[str, Path]  # "ours" / "ref" -> the instrumented lz4
    profraw: dict[str, list[Path]]
    inputs: tuple[Path, ...]


def _clean(src: Path) -> None:
    run(["make", "-C", src / "programs", "clean"])
    run(["make", "-C", src / "lib", "clean"])


def _workload(exe: Path, work: Path, inputs: tuple[Path, ...], env: dict[str, str]) -> None:
    for i, f in enumerate(inputs):
        run([exe, "-q", "-f", f, work / f"w{i}.lz4"], env=env, cwd=work)
        run([exe, "-q", "-9", "-f", f, work / f"w{i}.9.lz4"], env=env, cwd=work)
        run([exe, "-q", "-d", "-f", work / f"w{i}.lz4", work / f"w{i}.out"], env=env, cwd=work)
        assert (work / f"w{i}.out").read_bytes() == f.read_bytes()


@pytest.fixture(scope="module")
def lz4(tmp_path_factory: pytest.TempPathFactory) -> Lz4:
    need_clang("clang-19")
    need("make", "nm", "readelf")
    work = tmp_path_factory.mktemp("pgo-lz4")
    with tarfile.open(lz4_tarball()) as tf:
        tf.extractall(work, filter="data")
    src = work / "lz4-1.9.4"
    text = work / "in.txt"
    text.write_bytes(b"".join(p.read_bytes() for p in sorted((src / "lib").glob("*.[ch]"))) * 3)
    binary = work / "in.bin"
    binary.write_bytes(bytes((i * 7919 + (i >> 5)) & 0xFF for i in range(300_000)))
    inputs = (text, binary)
    gen, profraw = {}, {}
    for rt in ("ours", "ref"):
        _clean(src)
        if rt == "ours":
            kcov_build("--pgo-generate", "--compiler", "clang-19", "--", "make", "-j2", "-C", src / "programs", "lz4",
                       "CFLAGS=-O2")
        else:
            run(["make", "-j2", "-C", src / "programs", "lz4", "CC=clang-19", "CFLAGS=-O2 -fprofile-generate"])
        gen[rt] = work / f"lz4-gen-{rt}"
        shutil.copy(src / "programs" / "lz4", gen[rt])
        d = work / f"runs-{rt}"
        d.mkdir()
        # No LLVM_PROFILE_FILE: the compiler's default_%m.profraw, in the cwd.
        _workload(gen[rt], d, inputs, env_with())
        profraw[rt] = sorted(d.glob("default_*.profraw"))
    return Lz4(work, src, gen, profraw, inputs)


@pytest.mark.slow
def test_lz4_pgo_flow(lz4: Lz4, tmp_path: Path) -> None:
    syms = run(["nm", "--defined-only", lz4.gen["ours"]]).stdout
    assert "lprof" not in syms and "__llvm_profile_instrument_target" in syms
    assert not (set(re.findall(r"\b__llvm_profile_\w+", syms)) - OUR_IMAGE_SYMBOLS
                - {"__llvm_profile_raw_version", "__llvm_profile_filename"})
    assert "libkcovrt.so" in run(["readelf", "-d", lz4.gen["ours"]]).stdout
    # Nine runs, one image: %m merged them all into one file, named as compiler-rt names it.
    assert len(lz4.profraw["ours"]) == 1, lz4.profraw["ours"]
    assert [p.name for p in lz4.profraw["ours"]] == [p.name for p in lz4.profraw["ref"]]

    prof = tmp_path / "lz4.profdata"
    p = kcov_build("pgo", "merge", "-o", prof, *lz4.profraw["ours"])
    assert "wrote" in p.stderr and "llvm-profdata-19" in p.stderr
    shown = run(["llvm-profdata-19", *SHOW, prof]).stdout
    assert "Instrumentation level: IR" in run(["llvm-profdata-19", "show", prof]).stdout
    counts = dict(re.findall(r"^  (\S+):\n(?:    .*\n)*?    Block counts: \[([^]]*)\]", shown, re.M))
    assert sum(map(int, counts["LZ4_decompress_safe"].split(","))) > 1000, counts.get("LZ4_decompress_safe")

    _clean(lz4.src)
    kcov_build("--pgo-use", prof, "--compiler", "clang-19", "--", "make", "-j2", "-C", lz4.src / "programs", "lz4",
               "CFLAGS=-O2")
    exe = lz4.src / "programs" / "lz4"
    assert "kcovrt" not in run(["readelf", "-d", exe]).stdout  # an optimised build links nothing of ours
    assert "__llvm_prf" not in run(["readelf", "-SW", exe]).stdout
    out = tmp_path / "rt"
    run([exe, "-q", "-f", lz4.inputs[0], out.with_suffix(".lz4")])
    run([exe, "-q", "-d", "-f", out.with_suffix(".lz4"), out])
    assert out.read_bytes() == lz4.inputs[0].read_bytes()
    # The profile changed the code: lz4.o differs from a plain -O2 one.
    plain = tmp_path / "plain-lz4.o"
    run(["clang-19", "-O2", "-I", lz4.src / "lib", "-DXXH_NAMESPACE=LZ4_", "-c", lz4.src / "lib" / "lz4.c",
         "-o", plain])
    assert plain.read_bytes() != (lz4.src / "lib" / "lz4.o").read_bytes()


@pytest.mark.slow
def test_lz4_pgo_code_identical_to_compiler_rt(lz4: Lz4, tmp_path: Path) -> None:
    """A profile gathered through our runtime and one gathered through
    compiler-rt (same build flags, same workload) optimise lz4 into the same
    bytes: every object and the program itself."""
    prof, shown, built = {}, {}, {}
    for rt in ("ours", "ref"):
        prof[rt] = tmp_path / f"{rt}.profdata"
        kcov_build("pgo", "merge", "-o", prof[rt], *lz4.profraw[rt])
        shown[rt] = run(["llvm-profdata-19", *SHOW, prof[rt]]).stdout
        _clean(lz4.src)
        kcov_build("--pgo-use", prof[rt], "--compiler", "clang-19", "--", "make", "-j2", "-C", lz4.src / "programs",
                   "lz4", "CFLAGS=-O2")
        built[rt] = {o: (lz4.src / o).read_bytes() for o in (*LZ4_OBJECTS, "programs/lz4")}
    assert shown["ours"] == shown["ref"]
    # The .profdata files differ only in the binary IDs llvm-profdata copies in.
    ids = {rt: run(["llvm-profdata-19", "show", "--binary-ids", prof[rt]]).stdout.split("Binary IDs:")[-1].split()
           for rt in prof}
    assert ids["ours"] != ids["ref"] and all(len(i) == 1 for i in ids.values()), ids
    differ = [o for o in built["ours"] if built["ours"][o] != built["ref"][o]]
    assert not differ, f"optimised objects differ: {differ}"


# --- Small programs for the error cases ------------------------------------------------


@pytest.fixture(scope="module")
def profs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Raw and indexed profiles of data/vpfix.c from clang-19 (v10) and
    clang-14 (v8), and of another program."""
    need_clang("clang-19")
    d = tmp_path_factory.mktemp("pgo-profs")
    shutil.copy(DATA / "vpfix.c", d)
    (d / "other.c").write_text("int main(int c, char **v) { return c > 9; }\n")
    out: dict[str, Path] = {"dir": d}
    builds = [("vp19", "clang-19", "vpfix.c"), ("other19", "clang-19", "other.c")]
    if shutil.which("clang-14") and shutil.which("llvm-profdata-14"):
        builds.append(("vp14", "clang-14", "vpfix.c"))
    for name, cc, src in builds:
        kcov_build("--pgo-generate", cc, "-O2", src, "-o", d / name, cwd=d)
        raw = d / f"{name}.profraw"
        run([d / name, "ic", "3000", "1"], env=env_with(LLVM_PROFILE_FILE=str(raw)), cwd=d)
        out[f"{name}.profraw"] = raw
        llvm = cc.split("-")[1]
        out[f"{name}.profdata"] = d / f"{name}.profdata"
        run([f"llvm-profdata-{llvm}", "merge", "-o", out[f"{name}.profdata"], raw])
    return out


def _merge(*args: object) -> subprocess.CompletedProcess[str]:
    return kcov_build("pgo", "merge", *args, check=False)


def test_pgo_merge_refuses_bad_input(profs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "x.profdata"
    good = profs["vp19.profraw"]
    data = good.read_bytes()
    (tmp_path / "trunc.profraw").write_bytes(data[: len(data) // 2])
    (tmp_path / "foreign.profraw").write_bytes(b"\x7fELF" + bytes(200))
    _one_line(_merge("-o", out, good, tmp_path / "trunc.profraw"), 65, "trunc.profraw", "truncated")
    _one_line(_merge("-o", out, tmp_path / "foreign.profraw"), 65, "foreign.profraw", "not a raw LLVM profile")
    _one_line(_merge("-o", out, tmp_path / "missing.profraw"), 66, "missing.profraw", "no such file")
    _one_line(_merge("-o", out, good, profs["other19.profraw"]), 65, "different binaries")
    # A missing llvm-profdata: LLVM 20-22 read raw v10 too, but are not installed here.
    absent = next((v for v in (20, 21, 22) if not shutil.which(f"llvm-profdata-{v}")), None)
    if absent is not None:
        _one_line(_merge("--llvm", absent, "-o", out, good), 69, f"llvm-profdata-{absent} is not installed")
    _one_line(_merge("--llvm", 14, "-o", out, good), 65, "llvm-profdata-14 cannot read raw profile version 10")
    if "vp14.profraw" in profs:
        _one_line(_merge("-o", out, good, profs["vp14.profraw"]), 65, "version 10", "version 8")
    _one_line(_merge("-o", out), 64, "required")
    _one_line(_merge("-o", tmp_path, good), 73, "is a directory")
    assert not out.exists() and not list(tmp_path.glob(".x.profdata*")), "a partial output was left"
    # The good case, for contrast: exit 0, the file written.
    assert _merge("-o", out, good).returncode == 0 and out.stat().st_size > 0


def _use(prof: Path, cc: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return kcov_build("--pgo-use", prof, cc, "-O2", *extra, "-c", "vpfix.c", "-o", "use.o", check=False, cwd=cwd)


def test_pgo_use_refuses_what_clang_cannot_use(profs: dict[str, Path], tmp_path: Path) -> None:
    d = profs["dir"]
    (tmp_path / "empty.profdata").write_bytes(b"")
    data = profs["vp19.profdata"].read_bytes()
    (tmp_path / "trunc.profdata").write_bytes(data[:12])
    # A valid magic and version over a damaged header or summary made
    # clang-19 itself crash with a stack dump (reader fuzzing found it).
    (tmp_path / "damaged.profdata").write_bytes(data[:48])
    (tmp_path / "short.profdata").write_bytes(data[:-20])
    (d / "use.o").unlink(missing_ok=True)
    _one_line(_use(tmp_path / "missing.profdata", "clang-19", d), 66, "missing.profdata: no such file")
    _one_line(_use(tmp_path, "clang-19", d), 66, "a directory")
    _one_line(_use(profs["vp19.profraw"], "clang-19", d), 65, "a raw profile", "pgo merge")
    _one_line(_use(d / "vpfix.c", "clang-19", d), 65, "foreign data, not an indexed LLVM profile")
    _one_line(_use(tmp_path / "empty.profdata", "clang-19", d), 65, "an empty file")
    _one_line(_use(tmp_path / "trunc.profdata", "clang-19", d), 65, "truncated")
    _one_line(_use(tmp_path / "damaged.profdata", "clang-19", d), 65, "damaged indexed profile")
    _one_line(_use(tmp_path / "short.profdata", "clang-19", d), 65, "damaged indexed profile")
    assert not (d / "use.o").exists()
    if shutil.which("clang-14"):
        # clang-14 reads indexed profiles up to version 7; LLVM 19 writes 12.
        _one_line(_use(profs["vp19.profdata"], "clang-14", d), 65, "clang 19-22", "cannot read",
                  "--pgo-generate and clang-14")
    if shutil.which("clang-16"):
        _one_line(_use(profs["vp19.profdata"], "clang-16", d), 65, "cannot read")
    assert _use(profs["vp19.profdata"], "clang-19", d).returncode == 0 and (d / "use.o").is_file()


def test_pgo_use_warns_about_another_clang_generation(profs: dict[str, Path]) -> None:
    if "vp14.profdata" not in profs:
        pytest.skip("clang-14 is not installed")
    p = _use(profs["vp14.profdata"], "clang-19", profs["dir"])
    assert p.returncode == 0, p.stderr
    ours = [ln for ln in p.stderr.splitlines() if ln.startswith("kcov-build:")]
    assert len(ours) == 1 and "warning" in ours[0] and "clang 14-17" in ours[0], p.stderr
    # Its own generation's profile: no warning.
    assert "kcov-build" not in _use(profs["vp19.profdata"], "clang-19", profs["dir"]).stderr


def test_pgo_options(profs: dict[str, Path], tmp_path: Path) -> None:
    d = profs["dir"]
    dry = kcov_build("--pgo-generate", "--dry-run", "clang-19", "-O2", "vpfix.c", "-o", "x", cwd=d).stdout
    assert "-fprofile-generate" in dry and "kcovprof-module-v10.o" in dry and "-lkcovrt" in dry
    assert "-fsanitize-coverage" not in dry and "-fprofile-instr-generate" not in dry
    dry = kcov_build("--pgo-use", profs["vp19.profdata"], "--dry-run", "clang-19", "-O2", "vpfix.c", "-o", "x",
                     cwd=d).stdout
    assert f"-fprofile-instr-use={profs['vp19.profdata']}" in dry
    assert "kcovrt" not in dry and "kcovprof-module" not in dry and "-fsanitize-coverage" not in dry
    # Relative profile paths are made absolute: a build's compiles run in other directories.
    rel = kcov_build("--pgo-use", profs["vp19.profdata"].name, "--dry-run", "clang-19", "-c", "vpfix.c", cwd=d).stdout
    assert f"-fprofile-instr-use={profs['vp19.profdata']}" in rel
    _one_line(kcov_build("--pgo-generate", "--sbcc", "clang-19", "-c", "vpfix.c", check=False, cwd=d), 64,
              "cannot be combined")
    _one_line(kcov_build("--pgo-use", profs["vp19.profdata"], "--pgo-generate", "clang-19", "-c", "vpfix.c",
                         check=False, cwd=d), 64, "--pgo-use")
    if shutil.which("gcc-12"):
        _one_line(kcov_build("--pgo-generate", "gcc-12", "-c", "vpfix.c", check=False, cwd=d), 64, "needs clang")


@pytest.mark.slow
def test_bench_pgo_quick_mode() -> None:
    """The benchmark runs end to end (a tiny corpus; the figure itself is
    not checked: speed targets live in benchmarks/, not in tests)."""
    need_clang("clang-19")
    need("make")
    lz4_tarball()  # fetched into .cache/src, where the benchmark looks
    p = subprocess.run([sys.executable, ROOT / "benchmarks" / "bench_pgo.py", "--quick"], capture_output=True,
                       text=True, timeout=900, env=env_with(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"))
    assert p.returncode == 0, p.stderr
    m = re.search(r"speed-up of PGO over plain -O2: (\d+\.\d+)x", p.stdout)
    assert m and 0.2 < float(m.group(1)) < 5, p.stdout
    assert re.search(r"^compress -1\s+\d", p.stdout, re.M) and re.search(r"^decompress\s+\d", p.stdout, re.M)
