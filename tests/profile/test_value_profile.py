"""Value profiling (IR PGO) against compiler-rt's, on the same program and inputs.

data/vpfix.c makes indirect calls (a site with a dominant target, a site
with more targets than the 24 a site keeps, 64 sites with more values than
the pool of value nodes holds) and memcpy/memset/memmove of sizes in every
memop bucket.  For clang-14, -16 and -19 it is built with `kcov-build
--pgo-generate` (our runtime) and with plain `-fprofile-generate`
(compiler-rt's), and each runtime runs the same inputs.  Then:

* `llvm-profdata show --all-functions --counts --ic-targets --memop-sizes`
  prints the same text, per run and merged;
* the raw files agree field by field, the value data decoded, with the
  indirect-call targets (addresses) named as llvm-profdata names them;
* -fprofile-instr-use of either merged profile promotes the same indirect
  call and specialises the same memcpy/memset, into byte-identical objects;
* %m's online merging (the merge of a run into the file, values included)
  names and fills the files as compiler-rt does;
* snapshots taken while threads record values are well-formed, and the
  buffer and streaming writers agree once they stop.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from profhelp import CLANGS, DATA, OUR_IMAGE_SYMBOLS, env_with, kcov_build, need, need_clang, normalized, run

from kcov.profile import raw

SHOW = ("show", "--all-functions", "--counts", "--ic-targets", "--memop-sizes")
#: (mode, iterations, seed) of each run
RUNS = [("ic", 20000, 1), ("mem", 20000, 2), ("ic", 3000, 3), ("many", 20000, 4), ("reset", 4000, 5)]
REMARKS = "-Rpass=pgo-icall-prom|pgo-memop-opt"


@dataclass(frozen=True)
class Built:
    cc: str
    llvm: int
    src: Path  # the directory both were built in (IR PGO names static functions by file)
    exe: dict[str, Path]  # "ours" / "ref"


def _build(cc: str, tmp: Path) -> Built:
    llvm = need_clang(cc)
    need("nm")
    src = tmp / "src"
    src.mkdir()
    shutil.copy(DATA / "vpfix.c", src)
    exe = {"ours": tmp / "vp-ours", "ref": tmp / "vp-ref"}
    kcov_build("--pgo-generate", cc, "-O2", "vpfix.c", "-o", exe["ours"], cwd=src)
    run([cc, "-O2", "-fprofile-generate", "vpfix.c", "-o", exe["ref"]], cwd=src)
    ours = run(["nm", "--defined-only", exe["ours"]]).stdout
    assert "lprof" not in ours and "__llvm_profile_instrument_target" in ours
    # The compiler defines the version and the file name; the rest is ours.
    assert not (set(re.findall(r"\b__llvm_profile_\w+", ours)) - OUR_IMAGE_SYMBOLS
                - {"__llvm_profile_raw_version", "__llvm_profile_filename"})
    assert "lprofValueProfNodes" in run(["nm", "--defined-only", exe["ref"]]).stdout
    return Built(cc, llvm, src, exe)


@pytest.fixture(scope="module", params=list(CLANGS))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(request.param, tmp_path_factory.mktemp(f"vp-{request.param}"))


def _show(llvm: int, path: Path) -> str:
    return run([f"llvm-profdata-{llvm}", *SHOW, path]).stdout


def test_each_run_matches_compiler_rt(built: Built, tmp_path: Path) -> None:
    stderr: dict[str, list[str]] = {"ours": [], "ref": []}
    for i, (mode, n, seed) in enumerate(RUNS):
        files = {}
        for rt, exe in built.exe.items():
            files[rt] = tmp_path / f"{rt}-{i}.profraw"
            p = run([exe, mode, n, seed], env=env_with(LLVM_PROFILE_FILE=str(files[rt])), cwd=built.src)
            stderr[rt].append(p.stderr)
        ours, ref = _show(built.llvm, files["ours"]), _show(built.llvm, files["ref"])
        assert ours == ref, f"{built.cc}: llvm-profdata show differs for run {i} ({mode})"
        assert normalized(files["ours"].read_bytes()) == normalized(files["ref"].read_bytes()), (built.cc, mode)
        if mode == "ic" and n == 20000:
            # The dominant target of the hot site, named (its address was mapped).
            assert re.search(r"\[\s*\d+, vpfix.c[:;]f3,\s+1[45]\d{3} \]", ours), ours
            # The spread site keeps 24 of its 40 targets.
            sites: dict[str, int] = {}
            for site in re.findall(r"^\t\[\s*(\d+), vpfix.c[:;]f\d+,", ours, re.M):
                sites[site] = sites.get(site, 0) + 1
            assert sorted(sites.values())[-1] == 24, sites
        if mode == "mem":
            sizes = set(re.findall(r"^\t\[\s*\d+,\s+(\d+),", ours, re.M))
            assert {"0", "7", "8", "9", "16", "256", "257", "513"} <= sizes, sorted(sizes)
    many = RUNS.index(("many", 20000, 4))
    assert "values were not recorded" in stderr["ours"][many], stderr["ours"][many]
    assert "Running out of static counters" in stderr["ref"][many]
    assert "not recorded" not in "".join(stderr["ours"][:many])


def test_merged_profiles_give_identical_pgo_objects(built: Built, tmp_path: Path) -> None:
    """The point of value profiles: clang promotes the hot indirect call and
    specialises memcpy/memset from them, identically from either runtime."""
    merged = {}
    for rt, exe in built.exe.items():
        files = []
        for i, (mode, n, seed) in enumerate(RUNS[:2]):
            f = tmp_path / f"{rt}-{i}.profraw"
            run([exe, mode, n, seed], env=env_with(LLVM_PROFILE_FILE=str(f)), cwd=built.src)
            files.append(f)
        merged[rt] = tmp_path / f"{rt}.profdata"
        run([f"llvm-profdata-{built.llvm}", "merge", "-o", merged[rt], *files])
    assert _show(built.llvm, merged["ours"]) == _show(built.llvm, merged["ref"])
    objs, remarks = {}, {}
    for rt, prof in merged.items():
        objs[rt] = tmp_path / f"use-{rt}.o"
        p = run([built.cc, "-O2", f"-fprofile-instr-use={prof}", REMARKS, "-c", "vpfix.c", "-o", objs[rt]],
                cwd=built.src)
        remarks[rt] = sorted(line for line in p.stderr.splitlines() if "remark:" in line)
    assert remarks["ours"] == remarks["ref"]
    text = "\n".join(remarks["ours"])
    assert "Promote indirect call to f3" in text and "optimized memcpy" in text, text
    assert objs["ours"].read_bytes() == objs["ref"].read_bytes(), f"{built.cc}: PGO objects differ"
    plain = tmp_path / "plain.o"
    run([built.cc, "-O2", "-c", "vpfix.c", "-o", plain], cwd=built.src)
    assert plain.read_bytes() != objs["ours"].read_bytes()  # the profile changed the code


@pytest.mark.parametrize("cc", ["clang-14", "clang-19"])
def test_online_merging_matches_compiler_rt(cc: str, tmp_path: Path) -> None:
    """LLVM_PROFILE_FILE=...%m: each run's values are recorded into the
    file's, within the pool's free nodes, as compiler-rt does it."""
    b = _build(cc, tmp_path)
    shown: dict[str, list[tuple[str, str]]] = {}
    for rt, exe in b.exe.items():
        d = tmp_path / f"m-{rt}"
        d.mkdir()
        shown[rt] = []
        # Small runs first (full sites meeting equal counts), then big ones; the
        # last merge needs more nodes than the pool has left.
        for mode, n, seed in [("ic", 200, 1), ("ic", 200, 2), ("ic", 5000, 7), ("mem", 3000, 2),
                              ("ic", 2000, 9), ("many", 5000, 4), ("many", 300, 11)]:
            run([exe, mode, n, seed], env=env_with(LLVM_PROFILE_FILE=f"{d}/vp-%m.profraw"), cwd=b.src)
            (f,) = d.iterdir()  # after every run: the pool running out hides differences
            shown[rt].append((f.name, _show(b.llvm, f)))
    for i, (ours, ref) in enumerate(zip(shown["ours"], shown["ref"])):
        assert ours[0] == ref[0], "the %m file names differ from compiler-rt's"
        assert ours[1] == ref[1], f"the merged value profiles differ from compiler-rt's after run {i}"
    assert re.search(r"vpfix.c[:;]f3", shown["ours"][-1][1])  # named in LLVM 14-16 with ":", 19 with ";"


def test_snapshots_while_threads_record_values(tmp_path: Path) -> None:
    need_clang("clang-19")
    import kcov

    exe = tmp_path / "vpthreads"
    kcov_build("--pgo-generate", "clang-19", "-O2", "-pthread", f"-I{kcov.get_include()}",
               DATA / "vpthreads.c", "-o", exe)
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    run([exe, snaps, 150], env=env_with(LLVM_PROFILE_FILE=str(tmp_path / "exit.profraw")))
    files = sorted(snaps.iterdir())
    assert len(files) == 2 * 150 + 1
    values = 0
    for f in files:
        (p,) = normalized(f.read_bytes())  # parses the value data, checks every TotalSize
        values += sum(len(pairs) for _, kinds in p["values"] for _, _, sites in kinds for pairs in sites)
    assert values > 1000 * len(files)  # the pool's worth of values, in every snapshot
    # llvm-profdata reads every one of them.
    run(["llvm-profdata-19", "merge", "-o", tmp_path / "all.profdata", *files, tmp_path / "exit.profraw"])
    assert raw.read(tmp_path / "exit.profraw")[0].num_data > 0
