"""collect(): real runs of the fixture (a PIE and a shared library, four
toolchains) and of fs/minix in a VM, from kcov-pcs dumps to CoverageData;
and every bad input, each with its one-line message and exit status."""
from __future__ import annotations

import ctypes
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.support.kernels import BuiltKernel
from reportfix import INPUTS, KernelModules, Run, _fixture, fixture_runs
from reporthelp import (REPO, VENV_BIN, Fixture, build_fixture, function_lines, markers, need,
                        run)

import kcov
from kcov.report import (BuildIdMismatchError, CoverageData, FormatError, MissingFileError,
                         ModuleMap, NoDebugInfoError, NotElfError, PcDump, PointMismatchError,
                         UnmappedPcsError, collect, coverage_points, read_pcs, snapshot_modules,
                         write_pcs)
from kcov.report.elf import read_elf

from tests.support.kernel import stock
from tests.support.vm import Vm, dmesg_problems, find_vng


def lines_reached(data: CoverageData, file: Path) -> dict[int, set[str]]:
    return {ln: ls.tests for ln, ls in data.files()[str(file)].lines.items() if ls.hit}


def test_two_inputs_reach_different_code(fx: Fixture, runs: dict[str, Run]) -> None:
    msgs: list[str] = []
    data = collect([r.dump for r in runs.values()], progress=msgs.append)
    assert data.tests == set(INPUTS)
    # The modules: the PIE and the library, universe computed from the binaries.
    mods = {m.name: m for m in data.modules.values()}
    assert set(mods) == {"fixprog", "libfix.so"}
    assert (mods["fixprog"].kind, mods["libfix.so"].kind) == ("exe", "dso")
    for m in mods.values():
        assert m.universe and m.key == f"build-id:{m.build_id}" and m.build_id
        pts = coverage_points(m.path)
        assert sorted(off for key, off in data.points if key == m.key) == pts.tolist()
    assert data.unmatched() == []
    # Functions: each input reaches its own, both reach the library.
    assert data.tests_reaching("prog_digits") == {"digits"}
    assert data.tests_reaching("clamp_digit") == {"digits"}
    assert data.tests_reaching("lib_note_overflow") == {"digits"}
    assert data.tests_reaching("prog_letters") == {"letters"}
    assert data.tests_reaching("lib_checksum") == {"digits", "letters"}
    assert data.tests_reaching("prog_unreached") == set()
    assert data.tests_reaching("lib_unreached") == set()
    files = data.files()
    prog = files[str(fx.prog_src)]
    assert prog.functions["prog_unreached"].status == "uncovered"
    assert prog.functions["prog_unreached"].points > 0
    assert prog.functions["prog_digits"].tests == {"digits"}
    # Lines, by the MARK comments of the source.
    mark = markers(fx.prog_src)
    reached = lines_reached(data, fx.prog_src)
    assert reached[mark["clamp_big"]] == {"digits"}
    assert reached[mark["digits_call"]] == {"digits"}
    assert reached[mark["letters_lower"]] == {"letters"}
    assert mark["unreached_body"] in prog.lines and mark["unreached_body"] not in reached
    libmark = markers(fx.lib_src)
    libreached = lines_reached(data, fx.lib_src)
    # '1' (0x31) and ':' (0x3a) and 'a' (0x61), 'c' odd; '2' (0x32), 'b' even.
    assert libreached[libmark["lib_odd"]] == {"digits", "letters"}
    assert libreached[libmark["lib_even"]] == {"digits", "letters"}
    assert libmark["lib_unreached_body"] in files[str(fx.lib_src)].lines
    assert libmark["lib_unreached_body"] not in libreached
    # store_big (with gcc, reached only through its tail call).
    assert data.tests_reaching("store_big") == {"digits", "letters"}
    # The inlined helper: its point carries the caller's frame.
    inl = [fr for fr in data.points.values() if fr and fr[0].function == "clamp_digit"
           and fr[0].line == mark["clamp_big"]]
    assert inl and all(c[1].function == "prog_digits" for c in inl)
    lo, hi = function_lines(fx.prog_src, "prog_digits")
    assert all(lo <= c[1].line <= hi for c in inl)
    # Totals count each point once.
    t = data.totals()
    assert t.points == len(data.points) and 0 < t.hit < t.points
    assert any(m.startswith("symbolising") for m in msgs), msgs


def test_in_process_library(fx_clang: Fixture, tmp_path: Path) -> None:
    """Hosted, in this process: ctypes, kcov.open("hosted"), the process
    map, a dump, collect."""
    lib = ctypes.CDLL(str(fx_clang.lib))
    dumps = []
    for test, arg in (("odd", b"aaa"), ("even", b"bbb")):
        with kcov.open(provider="hosted") as k:
            with k.trace(kcov.Mode.PC):
                lib.lib_checksum(arg)
            pcs = k.snapshot().pcs
        dumps.append(tmp_path / f"{test}.pcs")
        write_pcs(dumps[-1], {test: pcs}, snapshot_modules())
    data = collect(dumps, binaries=[fx_clang.lib])
    assert [m.name for m in data.modules.values()] == ["libfix.so"]
    mark = markers(fx_clang.lib_src)
    reached = lines_reached(data, fx_clang.lib_src)
    assert reached[mark["lib_odd"]] == {"odd"}
    assert reached[mark["lib_even"]] == {"even"}
    assert data.tests_reaching("lib_checksum") == {"odd", "even"}


def test_inventory_lists_unreached_and_uninstrumented(fx: Fixture, runs: dict[str, Run],
                                                      tmp_path: Path) -> None:
    """The libclang inventory adds the function that has no point at all
    (KCOV_NO_COVERAGE) as not instrumented; the others match the
    symbolised functions by their lines, so nothing is listed twice."""
    need(shutil.which("clang-19") is not None, "clang-19 is not installed")
    inv = tmp_path / "inventory.json"
    exe = VENV_BIN / "kcov-build"
    run([exe if exe.is_file() else "kcov-build", "inventory", "--quiet", "-o", inv, "--",
         "clang-19", "-I", kcov.get_include(), "-I", fx.dir, "-c", fx.prog_src, fx.lib_src])
    assert json.loads(inv.read_text())["version"] == 1
    msgs: list[str] = []
    data = collect([r.dump for r in runs.values()], inventory=inv, progress=msgs.append)
    funcs = data.files()[str(fx.prog_src)].functions
    assert funcs["prog_uninstrumented"].status == "not-instrumented"
    name_line = function_lines(fx.prog_src, "prog_uninstrumented")[0]
    assert name_line - 1 <= funcs["prog_uninstrumented"].line <= name_line  # the return type's line
    assert funcs["prog_unreached"].status == "uncovered"
    assert funcs["prog_digits"].status in ("covered", "partial")
    assert [f.name for f in funcs.values() if not f.instrumented] == ["prog_uninstrumented"]
    libfuncs = data.files()[str(fx.lib_src)].functions
    assert all(f.instrumented for f in libfuncs.values())
    assert libfuncs["lib_unreached"].status == "uncovered"
    assert any("1 without any point" in m for m in msgs), msgs
    t = data.totals()
    assert t.functions_hit < t.functions


def test_without_universe_only_reached_points(runs_clang: dict[str, Run]) -> None:
    data = collect(runs_clang["letters"].dump, universe=False)
    assert not any(m.universe for m in data.modules.values())
    assert set(data.points) == set(data.hits)
    assert data.tests_reaching("prog_letters") == {"letters"}
    assert "prog_unreached" not in {fr.function for c in data.points.values() for fr in c}


def test_binary_found_by_build_id(fx_clang: Fixture, runs_clang: dict[str, Run], tmp_path: Path) -> None:
    """The binaries moved after the run: the dump's paths are gone; given
    under other names, they are matched by build id."""
    moved = tmp_path / "moved"
    moved.mkdir()
    dump = tmp_path / "d.pcs"
    r = runs_clang["digits"]
    gone = {str(fx_clang.prog): "/nonexistent/fixprog", str(fx_clang.lib): "/nonexistent/libfix.so"}
    mods = [ModuleMap(m.start, m.end, m.file_offset, m.kind, m.build_id, gone.get(m.path, m.path))
            for m in r.modules]
    write_pcs(dump, {"digits": r.pcs}, mods)
    with pytest.raises(MissingFileError, match=r"/nonexistent/\S+: no such file \(\d+ PCs were "
                                               r"recorded in it; give its binary\)") as ei:
        collect(dump)
    assert ei.value.exit_status == 66
    shutil.copy2(fx_clang.prog, moved / "a.out")
    shutil.copy2(fx_clang.lib, moved / "b.so")
    data = collect(dump, binaries=[moved / "a.out", moved / "b.so"])
    assert data.tests_reaching("prog_digits") == {"digits"}
    assert {m.path for m in data.modules.values()} == {str(moved / "a.out"), str(moved / "b.so")}


def test_given_binaries_without_pcs_are_reported(fx_clang: Fixture, runs_clang: dict[str, Run],
                                                 fixture_builds: dict[str, Fixture],
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    other = _fixture(fixture_builds, "gcc-12", tmp_path_factory)
    lib = tmp_path_factory.mktemp("other") / "libother.so"
    shutil.copy2(other.lib, lib)
    data = collect(runs_clang["letters"].dump, binaries=[lib])
    unreached = [m for m in data.modules.values() if m.path == str(lib)]
    assert unreached and unreached[0].universe
    pts = [p for p in data.points if p[0] == unreached[0].key]
    assert len(pts) == len(coverage_points(lib)) and not any(p in data.hits for p in pts)


def check_error(exc: pytest.ExceptionInfo[Exception], status: int) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and msg, msg
    assert exc.value.exit_status == status


def test_stripped_dwarf(tmp_path: Path) -> None:
    fx = build_fixture("clang-19", tmp_path / "nodebug", debug=False)
    r = fixture_runs(fx, tmp_path)["digits"]
    with pytest.raises(NoDebugInfoError, match=r"no DWARF line info in \S+/fixprog: rebuild with -g") as ei:
        collect(r.dump)
    check_error(ei, 65)
    # strip --strip-debug on a -g build says the same.
    fx2 = build_fixture("gcc-12", tmp_path / "stripped")
    r2 = fixture_runs(fx2, tmp_path)["letters"]
    run(["strip", "--strip-debug", fx2.lib])
    with pytest.raises(NoDebugInfoError, match=r"libfix\.so: rebuild with -g"):
        collect(r2.dump)


def test_wrong_file_types(fx_clang: Fixture, runs_clang: dict[str, Run], tmp_path: Path) -> None:
    dump = runs_clang["digits"].dump
    js = tmp_path / "cov.json"
    js.write_text('{"format": "kcov-coverage", "version": 1}\n')
    with pytest.raises(FormatError, match="not a kcov-pcs dump") as ei:
        collect(js)
    check_error(ei, 65)
    with pytest.raises(FormatError, match="is an ELF file, not a PC dump") as ei:
        collect(fx_clang.prog)
    check_error(ei, 65)
    # The binary of a module is not ELF.
    text = tmp_path / "fixprog"
    text.write_text("#!/bin/sh\n")
    d = read_pcs(dump)
    mods = [ModuleMap(m.start, m.end, m.file_offset, m.kind, "", str(text))
            if m.path == str(fx_clang.prog) else m for m in d.modules]
    with pytest.raises(NotElfError, match="fixprog: not an ELF file") as ei:
        collect(PcDump(mods, d.tests))
    check_error(ei, 65)
    with pytest.raises(NotElfError):
        collect(dump, binaries=[text])


def test_wrong_binary(fx_clang: Fixture, runs_clang: dict[str, Run],
                      fixture_builds: dict[str, Fixture],
                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """Another build of the library given under the same name."""
    other = _fixture(fixture_builds, "gcc-12", tmp_path_factory)
    with pytest.raises(BuildIdMismatchError, match=r"libfix\.so: build id [0-9a-f]+, but the run's "
                                                   r"libfix\.so had [0-9a-f]+: not the binary") as ei:
        collect(runs_clang["digits"].dump, binaries=[other.lib])
    check_error(ei, 65)


def test_pcs_in_no_module(runs_clang: dict[str, Run]) -> None:
    d = read_pcs(runs_clang["digits"].dump)
    only_libc = [m for m in d.modules if "libc" in m.path]
    with pytest.raises(UnmappedPcsError, match=r"\d+ of \d+ PCs lie in no module of the dump") as ei:
        collect(PcDump(only_libc, d.tests, "d.pcs"))
    check_error(ei, 65)
    with pytest.raises(UnmappedPcsError):
        collect(PcDump([], d.tests))
    # One stray PC among many is dropped with a warning.
    tests = {"digits": np.append(d.tests["digits"], np.uint64(0x1000))}
    msgs: list[str] = []
    data = collect(PcDump(d.modules, tests, "d.pcs"), progress=msgs.append)
    assert data.tests_reaching("prog_digits") == {"digits"}
    assert any(m.startswith("warning: d.pcs: 1 of") for m in msgs), msgs


def test_wrong_base(runs_clang: dict[str, Run]) -> None:
    """A module placed 0x40 bytes off: no PC names a call site."""
    d = read_pcs(runs_clang["digits"].dump)
    shifted = [ModuleMap(m.start - 0x40, m.end - 0x40, m.file_offset, m.kind, m.build_id, m.path)
               if m.path.endswith("fixprog") else m for m in d.modules]
    with pytest.raises(PointMismatchError, match=r"^(\d+) of \1 PCs do not match coverage callbacks "
                                                 r"in fixprog: wrong binary or base\?$") as ei:
        collect(PcDump(shifted, d.tests))
    check_error(ei, 65)
    # force=True keeps them, as hits on offsets that are no point.
    data = collect(PcDump(shifted, d.tests), force=True)
    assert data.unmatched() and all(data.points[p] == () for p in data.unmatched())


def test_bare_pcs_with_module_option(fx_clang: Fixture, runs_clang: dict[str, Run],
                                     tmp_path: Path) -> None:
    """rawcover-style input: bare PCs of the PIE, placed with the base
    the caller gives (here: from the run's map)."""
    from kcov.report import module_maps

    r = runs_clang["letters"]
    exe = [m for m in r.modules if m.path == str(fx_clang.prog)]
    (text,) = [m for m in exe if m.file_offset and any(m.start <= pc - 5 < m.end for pc in r.pcs.tolist())] \
        or exe[:1]
    off, ok = read_elf(fx_clang.prog).offsets_from_file([text.file_offset])
    assert ok[0]
    base = text.start - int(off[0])  # the load bias
    raw = tmp_path / "rawcover"
    pcs = [pc for pc in r.pcs.tolist() if any(m.start <= pc - 5 < m.end for m in exe)]
    raw.write_text("".join(f"0x{pc:x}\n" for pc in pcs))
    data = collect(raw, modules=module_maps(fx_clang.prog, base=base))
    assert data.tests == {""} and data.tests_reaching("prog_letters") == {""}
    assert not data.unmatched()


# -- a kernel module in a VM ------------------------------------------------------

GUEST = Path(__file__).resolve().parent / "data" / "guest_kmod_pcs.py"


@pytest.mark.slow
@pytest.mark.kernel  # boots the stock kernel
def test_kernel_module_in_vm(kernel_modules: KernelModules, tmp_path: Path) -> None:
    """fs/minix as an instrumented minix.ko on the stock kernel: the guest
    traces file operations, reads the section bases from /sys/module and
    writes a kcov-pcs dump; here collect() maps the PCs to minix's source
    lines."""

    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    out = tmp_path / "guest"
    out.mkdir()
    dump = out / "minix.pcs"
    py = VENV_BIN / "python"
    res = Vm(kernel=stock().image, memory="1G", cpus=2, timeout=600,
             extra_args=(f"--rwdir={out}",)).run(
        f"{py} {GUEST} --kcov-ko {kernel_modules.kcov_ko} --ko {kernel_modules.minix_ko} "
        f"--out {dump}", cwd=REPO)
    assert res.returncode == 0 and dump.is_file(), res.describe()
    assert not dmesg_problems(res.dmesg), res.describe()

    text = dump.read_text()
    assert "module 0xffffffff" in text and " kmod " in text
    msgs: list[str] = []
    data = collect(dump, progress=msgs.append)
    (mod,) = data.modules.values()
    assert (mod.name, mod.kind, mod.universe) == ("minix.ko", "kmod", True)
    assert mod.build_id == read_elf(kernel_modules.minix_ko).build_id
    assert {"mkdir", "readdir", "create", "unlink"} <= data.tests
    assert "mkdir" in data.tests_reaching("minix_mkdir")
    assert data.tests_reaching("minix_readdir") == {"readdir"}
    assert "unlink" in data.tests_reaching("minix_unlink")
    # Lines: minix_mkdir's reached lines lie in its definition in namei.c.
    namei = kernel_modules.minix_src / "namei.c"
    lo, hi = function_lines_c(namei, "minix_mkdir")
    fs = data.files()[str(namei)]
    mk = fs.functions["minix_mkdir"]
    assert mk.hit > 0 and lo <= mk.line <= hi
    reached = {ln for ln, ls in fs.lines.items() if "mkdir" in ls.tests}
    mkdir_lines = {ln for ln in reached if lo <= ln <= hi}
    assert mkdir_lines, (lo, hi, sorted(reached))
    # Almost every PC is a call site (a tail call's return lands elsewhere).
    hits = len(data.hits)
    assert len(data.unmatched()) <= max(3, hits // 20), (data.unmatched(), msgs)
    t = data.totals()
    n = len(coverage_points(kernel_modules.minix_ko))
    assert t.points in (n, n + len(data.unmatched()))
    assert 0 < t.hit < t.points


def function_lines_c(path: Path, name: str) -> tuple[int, int]:
    """Kernel style: `static int minix_mkdir(...)` on one line, body to a
    closing brace at column 0."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines, 1) if f" {name}(" in ln and not ln.endswith(";"))
    end = next(i for i, ln in enumerate(lines, 1) if i > start and ln == "}")
    return start, end



# -- vmlinux in a VM ---------------------------------------------------------------

GUEST_KERNEL = Path(__file__).resolve().parent / "data" / "guest_kernel_pcs.py"


@pytest.mark.slow
def test_vmlinux_in_vm(dwarf_kernel: BuiltKernel, tmp_path: Path) -> None:
    """The kcov VM kernel (tests/support/kernels.py's configuration, with DWARF):
    the guest traces getppid and pread and writes a dump with vmlinux placed
    by /proc/kallsyms; here the PCs map to kernel/sys.c and fs/read_write.c."""

    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    out = tmp_path / "guest"
    out.mkdir()
    dump = out / "kernel.pcs"
    res = Vm(dwarf_kernel.image, memory="512M", cpus=1, timeout=300,
             extra_args=(f"--rwdir={out}",)).run(
        f"{VENV_BIN / 'python'} {GUEST_KERNEL} --vmlinux {dwarf_kernel.vmlinux} --out {dump}", cwd=REPO)
    assert res.returncode == 0 and dump.is_file(), res.describe()
    assert not dmesg_problems(res.dmesg), res.describe()

    d = read_pcs(dump)
    bid = read_elf(dwarf_kernel.vmlinux).build_id
    assert d.modules and all(m.kind == "vmlinux" and m.build_id == bid for m in d.modules)
    data = collect(dump)
    (mod,) = data.modules.values()
    assert (mod.kind, mod.universe) == ("vmlinux", True)
    getppid = {f.function for pid, t in data.hits.items() if "getppid" in t for f in data.points[pid]}
    pread = {f.function for pid, t in data.hits.items() if "pread" in t for f in data.points[pid]}
    assert any("getppid" in f for f in getppid), sorted(getppid)
    assert not any("getppid" in f for f in pread), sorted(pread)
    assert {"vfs_read", "ksys_pread64"} & pread, sorted(pread)
    sys_c = [f for f in data.files() if f.endswith("/kernel/sys.c")]
    assert len(sys_c) == 1
    fs = data.files()[sys_c[0]]
    reached = {ln for ln, ls in fs.lines.items() if "getppid" in ls.tests}
    # The reached lines of kernel/sys.c are in SYSCALL_DEFINE0(getppid)'s
    # body (its callees are inlined from headers; the sys.c frame is the
    # call in getppid).
    src = Path(sys_c[0]).read_text().splitlines()
    lo = next(i for i, ln in enumerate(src, 1) if ln.startswith("SYSCALL_DEFINE0(getppid)"))
    hi = next(i for i, ln in enumerate(src, 1) if i > lo and ln == "}")
    assert reached and all(lo < ln < hi for ln in reached), [src[ln - 1] for ln in sorted(reached)]
    assert len(data.unmatched()) <= max(3, len(data.hits) // 20), data.unmatched()


@pytest.mark.slow
def test_vmlinux_without_dwarf(dwarf_kernel: BuiltKernel, tmp_path: Path) -> None:
    """The same vmlinux with its DWARF stripped: one line, exit 65."""
    stripped = tmp_path / "vmlinux"
    run(["objcopy", "--strip-debug", dwarf_kernel.vmlinux, stripped])
    pts = coverage_points(stripped)
    dump = tmp_path / "k.pcs"
    from kcov.report import module_maps

    write_pcs(dump, pts[:50] + 5, module_maps(stripped))
    with pytest.raises(NoDebugInfoError, match=r"^no DWARF line info in \S+/vmlinux: rebuild with -g$") as ei:
        collect(dump)
    check_error(ei, 65)


def test_a_test_that_reached_nothing_is_listed(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    d = read_pcs(runs_clang["digits"].dump)
    dump = tmp_path / "two.pcs"
    write_pcs(dump, {"digits": d.tests["digits"], "idle": []}, d.modules)
    data = collect(dump)
    assert data.tests == {"digits", "idle"}
    assert not any("idle" in t for t in data.hits.values())


def test_binary_changed_since_the_run(fx_clang: Fixture, runs_clang: dict[str, Run], tmp_path: Path,
                                      fixture_builds: dict[str, Fixture],
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """The dump's path now holds another build (a rebuild after the run)."""
    other = _fixture(fixture_builds, "gcc-12", tmp_path_factory)
    d = read_pcs(runs_clang["digits"].dump)
    lib = tmp_path / "libfix.so"
    shutil.copy2(other.lib, lib)
    mods = [ModuleMap(m.start, m.end, m.file_offset, m.kind, m.build_id, str(lib))
            if m.path == str(fx_clang.lib) else m for m in d.modules]
    with pytest.raises(BuildIdMismatchError, match=r"libfix\.so: build id [0-9a-f]+, but the one that "
                                                   r"ran had [0-9a-f]+: the file changed") as ei:
        collect(PcDump(mods, d.tests))
    check_error(ei, 65)
