"""libclang source analysis: inventory, opt-out detection, ignorelist, check.

Every claim is checked against an independent source of truth:

* the inventory of real third-party C (LZ4) against the DWARF and symbol
  table of the same sources compiled with -g;
* attribute detection against a fixture whose function names say what is
  expected;
* the generated ignorelist by compiling with it and disassembling
  (kcov_build.objcheck): opted-out functions lose every callback call, the
  others keep theirs, and without the list they all had them;
* `kcov-build check` against runtime-like objects built here, whose
  callbacks call a project function.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from buildhelp import DATA, kcov_build, need_tool, run

import kcov_build.analysis as analysis  # ours: an import error is a failure
from tests.support.lz4 import lz4libs
pytest.importorskip("clang.cindex", reason="PyPI libclang is not installed")

ADATA = DATA / "analysis"


def entry(src: Path, *args: str, cc: str = "clang-19") -> analysis.CompileEntry:
    return analysis.CompileEntry(str(src.parent), src.name, [cc, *args, "-c", src.name, "-o", "/dev/null"])


def by_name(fns: list[analysis.Function]) -> dict[str, analysis.Function]:
    return {f.name: f for f in fns}


def source_lines(path: Path, name: str) -> tuple[int, int]:
    """(first, last) line of a function definition, read from the text itself."""
    lines = path.read_text().splitlines()
    name_line = next(i for i, line in enumerate(lines, 1) if re.search(rf"\b{name}\(", line)
                     and not line.rstrip().endswith(";"))
    start = name_line - 1 if lines[name_line - 2].strip() in ("static int", "int") else name_line
    depth, seen = 0, False
    for i in range(name_line - 1, len(lines)):
        depth += lines[i].count("{") - lines[i].count("}")
        seen = seen or "{" in lines[i]
        if seen and depth == 0:
            return start, i + 1
    raise AssertionError(f"no body for {name}")


# --------------------------------------------------------------------------
# Attributes

EXPECTED_REASONS = {
    "plain_first": None,
    "nocov_clang_spelling": 'no_sanitize("coverage")',
    "nocov_list_spelling": 'no_sanitize("coverage")',
    "nocov_gcc_spelling": "no_sanitize_coverage",
    "nocov_disable": "disable_sanitizer_instrumentation",
    "nocov_annotate": 'annotate("kcov_no_coverage")',
    "nocov_macro": 'no_sanitize("coverage")',
    "nocov_macro_chain": 'no_sanitize("coverage")',
    "nocov_project": "KCOV_NO_COVERAGE",
    "nocov_custom": None,  # only with --annotation MY_PROJECT_NOCOV
    "plain_other_sanitizer": None,
    "plain_multiline": None,
    "plain_last": None,
    "header_inline": None,
}

# A kbuild-style gcc command: flags clang does not know must not matter.
GCC_FLAGS = ("-O2", "-fconserve-stack", "-fno-allow-store-data-races", "-mrecord-mcount",
             "-fsanitize-coverage=trace-pc", "-Wno-maybe-uninitialized", "-Wno-frobnicate",
             "-mindirect-branch=thunk-extern", "--param=allow-store-data-races=0", "-MD", "-MF", "x.d")


@pytest.fixture(scope="module", params=["clang", "gcc"])
def attrs_fns(request: pytest.FixtureRequest) -> dict[str, analysis.Function]:
    if request.param == "clang":
        e = entry(ADATA / "attrs.c", "-O2", "-fsanitize-coverage=trace-pc")
    else:
        e = entry(ADATA / "attrs.c", *GCC_FLAGS, cc="gcc-12")
    return by_name(analysis.functions_in_tu(e))


@pytest.mark.parametrize("name", sorted(EXPECTED_REASONS))
def test_attribute_detected(attrs_fns: dict[str, analysis.Function], name: str) -> None:
    f = attrs_fns[name]
    want = EXPECTED_REASONS[name]
    assert (f.no_coverage, f.reason) == (want is not None, want)


def test_inventory_has_exactly_the_definitions(attrs_fns: dict[str, analysis.Function]) -> None:
    assert set(attrs_fns) == set(EXPECTED_REASONS)


def test_project_annotation_by_name() -> None:
    fns = by_name(analysis.functions_in_tu(entry(ADATA / "attrs.c"), annotations=["MY_PROJECT_NOCOV"]))
    assert fns["nocov_custom"].no_coverage and fns["nocov_custom"].reason == "MY_PROJECT_NOCOV"
    assert not fns["plain_first"].no_coverage


def test_files_and_line_ranges(attrs_fns: dict[str, analysis.Function]) -> None:
    c, h = str(ADATA / "attrs.c"), str(ADATA / "attrs.h")
    assert attrs_fns["header_inline"].file == h
    assert attrs_fns["header_inline"].external is False
    for name in ("plain_multiline", "plain_last", "plain_first", "nocov_macro"):
        f = attrs_fns[name]
        assert f.file == c
        assert (f.start_line, f.end_line) == source_lines(ADATA / "attrs.c", name), name
    assert source_lines(ADATA / "attrs.h", "header_inline") == (
        attrs_fns["header_inline"].start_line, attrs_fns["header_inline"].end_line)


# --------------------------------------------------------------------------
# Generated ignorelist, checked by disassembly

SKIPPED = {"skip_project", "skip_gcc_spelling", "skip_annotate", "skip_custom", "user_skip_pattern"}
KEPT = {"keep_a", "keep_b", "keep_static"}


@pytest.mark.parametrize("clang", ["clang-19", "clang-14"])
def test_ignorelist_removes_exactly_the_opted_out(clang: str, tmp_path: Path) -> None:
    cc = need_tool(clang)
    from kcov_build.objcheck import callback_calls

    srcs = [ADATA / "ignore_main.c", ADATA / "ignore_other.c"]
    fns = [f for s in srcs for f in analysis.functions_in_tu(entry(s), annotations=["MY_NOCOV"])]
    text = analysis.ignorelist_text(fns, fun_patterns=["user_skip_*"], src_globs=["*/ignore_other.c"])
    ign = tmp_path / "ignore.txt"
    ign.write_text(text)
    # Every entry says why it is there.
    for line in text.splitlines():
        if line.startswith("fun:skip_"):
            prev = text.splitlines()[text.splitlines().index(line) - 1]
            assert prev.startswith("# ") and "ignore_main.c" in prev, (line, prev)

    def calls(extra: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in srcs:
            obj = tmp_path / f"{s.stem}-{len(extra)}.o"
            run([cc, "-O0", "-fsanitize-coverage=trace-pc", "-Wno-unknown-attributes", *extra,
                 "-c", s, "-o", obj])
            out.update(callback_calls(obj))
        return out

    before = calls([])
    after = calls([f"-fsanitize-coverage-ignorelist={ign}"])
    every = SKIPPED | KEPT | {"skip_by_file"}
    assert every <= set(before) and every <= set(after)
    for name in every:
        assert before[name].get("__sanitizer_cov_trace_pc", 0) > 0, f"{name} not instrumented without the list"
    for name in SKIPPED | {"skip_by_file"}:
        assert after[name] == {}, f"{name} still calls {after[name]}"
    for name in KEPT:
        assert after[name].get("__sanitizer_cov_trace_pc", 0) > 0, f"{name} lost its instrumentation"


def test_ignorelist_text_format() -> None:
    f = analysis.Function("f", "_Z1fv", "/src/a.cc", 3, 5, True, 'no_sanitize("coverage")')
    g = analysis.Function("g", "g", "/src/b.c", 1, 2, False, None)
    text = analysis.ignorelist_text([f, g], fun_patterns=["x_*"], src_globs=["*/gen/*"])
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert entries == ["fun:_Z1fv", "fun:x_*", "src:*/gen/*"]
    assert '# /src/a.cc:3: f: no_sanitize("coverage")' in text.splitlines()


# --------------------------------------------------------------------------
# Real third-party code: LZ4, checked against DWARF


@pytest.fixture(scope="module")
def lz4_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lz4libs(tmp_path_factory.mktemp("lz4-analysis"))


def dwarf_functions(obj: Path) -> list[tuple[str, str, int, bool]]:
    """(name, decl file, decl line, is global) of every emitted function in obj."""
    elffile = pytest.importorskip("elftools.elf.elffile")
    out = []
    with open(obj, "rb") as f:
        elf = elffile.ELFFile(f)
        globals_ = {s.name for s in elf.get_section_by_name(".symtab").iter_symbols()
                    if s["st_info"]["type"] == "STT_FUNC" and s["st_info"]["bind"] == "STB_GLOBAL"
                    and s["st_shndx"] != "SHN_UNDEF"}
        dwarf = elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            comp_dir = top.attributes["DW_AT_comp_dir"].value.decode()
            lp = dwarf.line_program_for_CU(cu)
            files = lp["file_entry"]
            dirs = lp["include_directory"]
            for die in cu.iter_DIEs():
                a = die.attributes
                if die.tag != "DW_TAG_subprogram" or "DW_AT_low_pc" not in a or "DW_AT_name" not in a:
                    continue
                fe = files[a["DW_AT_decl_file"].value - 1]  # DWARF 4: 1-based
                d = comp_dir if fe.dir_index == 0 else dirs[fe.dir_index - 1].decode()
                path = os.path.normpath(os.path.join(comp_dir, d, fe.name.decode()))
                name = a["DW_AT_name"].value.decode()
                out.append((name, path, a["DW_AT_decl_line"].value, name in globals_))
    return out


def lz4_commands(src: Path, cc: str, flags: tuple[str, ...], *, command_string: bool) -> list[dict[str, object]]:
    cmds: list[dict[str, object]] = []
    for c in sorted(src.glob("*.c")):
        argv = [cc, *flags, "-c", c.name, "-o", f"{c.stem}.o"]
        item: dict[str, object] = {"directory": str(src), "file": c.name}
        if command_string:
            item["command"] = " ".join(argv)
        else:
            item["arguments"] = argv
        cmds.append(item)
    return cmds


def test_lz4_inventory_matches_dwarf(lz4_src: Path, tmp_path: Path) -> None:
    cc = need_tool("clang-19")
    ccjson = tmp_path / "compile_commands.json"
    ccjson.write_text(json.dumps(lz4_commands(lz4_src, "clang-19", ("-O2",), command_string=False)))
    t0 = time.monotonic()
    out = tmp_path / "inv.json"
    p = kcov_build("inventory", "-p", ccjson, "-o", out)
    elapsed = time.monotonic() - t0
    fns = analysis.read_inventory(out)
    assert "[4/4]" in p.stderr  # progress for a multi-file build
    index: dict[tuple[str, str], list[analysis.Function]] = {}
    for f in fns:
        index.setdefault((f.name, f.file), []).append(f)

    checked_global = 0
    for c in sorted(lz4_src.glob("*.c")):
        obj = tmp_path / f"{c.stem}.o"
        run([cc, "-O0", "-gdwarf-4", "-c", c, "-o", obj], cwd=lz4_src)
        emitted = dwarf_functions(obj)
        assert emitted, f"no DWARF functions in {obj}"
        for name, path, line, is_global in emitted:
            cands = index.get((name, path))
            assert cands, f"{name} ({path}:{line}) from {c.name} is not in the inventory"
            assert any(f.start_line <= line <= f.end_line for f in cands), (
                f"{name}: DW_AT_decl_line {line} outside {[(f.start_line, f.end_line) for f in cands]}")
            if is_global:
                checked_global += 1
                assert path.startswith(str(lz4_src)) and all(f.external for f in cands)
    assert checked_global >= 50  # LZ4 exports well over 50 functions
    assert len(fns) > 200
    print(f"lz4 inventory: {len(fns)} functions in {elapsed:.2f} s")


def test_lz4_gcc_command_gives_the_same_inventory(lz4_src: Path, tmp_path: Path) -> None:
    """A gcc build's compile_commands ('command' strings, gcc-only flags)."""
    clang_json = tmp_path / "clang.json"
    gcc_json = tmp_path / "gcc.json"
    clang_json.write_text(json.dumps(lz4_commands(lz4_src, "clang-19", ("-O2",), command_string=False)))
    gcc_json.write_text(json.dumps(lz4_commands(lz4_src, "gcc-12", GCC_FLAGS, command_string=True)))
    a = analysis.inventory(analysis.load_compile_commands(clang_json))
    b = analysis.inventory(analysis.load_compile_commands(gcc_json), jobs=2)
    assert a == b and len(a) > 200


# --------------------------------------------------------------------------
# CLI: inventory and bad input


def test_cli_inventory_of_a_command(tmp_path: Path) -> None:
    p = kcov_build("inventory", "--annotation", "MY_PROJECT_NOCOV", "--",
                   "gcc-12", *GCC_FLAGS, "-c", ADATA / "attrs.c", "-o", tmp_path / "a.o")
    rows = dict(line.split("\t", 1) for line in p.stdout.splitlines())
    names = {v.split()[0]: v for v in rows.values()}
    assert set(names) == set(EXPECTED_REASONS)
    assert "[no coverage: MY_PROJECT_NOCOV]" in names["nocov_custom"]
    assert "no coverage" not in names["plain_last"]
    assert not (tmp_path / "a.o").exists()  # the compiler is not run


def test_cli_writes_json_atomically(tmp_path: Path) -> None:
    ccjson = tmp_path / "compile_commands.json"
    ccjson.write_text(json.dumps([{"directory": str(ADATA), "file": "attrs.c",
                                   "command": "cc -O2 -c attrs.c -o attrs.o"}]))
    out = tmp_path / "sub" / "inv.json"
    kcov_build("inventory", "-p", tmp_path, "-o", out)
    doc = json.loads(out.read_text())
    assert doc["version"] == 1 and doc["producer"].startswith("kcov-build ")
    assert [p.name for p in out.parent.iterdir()] == ["inv.json"]
    fns = analysis.read_inventory(out)
    assert by_name(fns)["nocov_macro"].reason == 'no_sanitize("coverage")'
    assert fns == sorted(fns, key=lambda f: (f.file, f.start_line, f.name))


def one_line_error(p: object, status: int) -> str:
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)  # type: ignore[attr-defined]
    err = p.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(err) == 1 and err[0].startswith("kcov-build: "), err
    assert "Traceback" not in p.stderr  # type: ignore[attr-defined]
    return err[0]


def test_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(analysis.AnalysisError, match="no such file"):
        analysis.load_compile_commands(missing)
    assert "no such file" in one_line_error(kcov_build("inventory", "-p", missing, check=False), 66)

    bad = tmp_path / "bad.json"
    bad.write_text('[{"directory": "/", "file": "a.c", ')
    with pytest.raises(analysis.AnalysisError, match="malformed JSON"):
        analysis.load_compile_commands(bad)
    assert "malformed JSON" in one_line_error(kcov_build("inventory", "-p", bad, check=False), 65)

    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"directory": "/", "file": "a.c"}]')
    assert "'arguments' or 'command'" in one_line_error(kcov_build("inventory", "-p", wrong, check=False), 65)

    ghost = tmp_path / "ghost.json"
    ghost.write_text(json.dumps([{"directory": str(tmp_path), "file": "ghost.c",
                                  "arguments": ["cc", "-c", "ghost.c"]}]))
    with pytest.raises(analysis.AnalysisError, match="does not exist"):
        analysis.inventory(analysis.load_compile_commands(ghost))
    assert "ghost.c" in one_line_error(kcov_build("inventory", "-p", ghost, check=False), 66)

    inv = tmp_path / "inv.json"
    inv.write_text('{"version": 7, "functions": []}')
    with pytest.raises(analysis.AnalysisError, match="version 7"):
        analysis.read_inventory(inv)

    one_line_error(kcov_build("inventory", check=False), 64)
    one_line_error(kcov_build("inventory", "--bogus", check=False), 64)


def test_source_with_errors_still_inventoried(tmp_path: Path) -> None:
    src = tmp_path / "broken.c"
    src.write_text("int good(void) { return 1; }\nint bad(void) { return undeclared; }\n"
                   "#include \"missing.h\"\n")
    errs: list[str] = []
    fns = analysis.functions_in_tu(entry(src), errors=errs)
    assert {"good", "bad"} <= set(by_name(fns))
    assert any("missing.h" in e for e in errs) and any("undeclared" in e for e in errs)


# --------------------------------------------------------------------------
# kcov-build check


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """rt.c as each kind of runtime file: object, archive, DSO, stripped gcc DSO."""
    cc = need_tool("clang-19")
    out = tmp_path_factory.mktemp("rt")
    rt = ADATA / "rt.c"
    run([cc, "-O2", "-c", rt, "-o", out / "rt.o"])
    run([cc, "-O2", "-ffunction-sections", "-c", rt, "-o", out / "rt-fs.o"])
    run([need_tool("ar"), "rcs", out / "librt.a", out / "rt.o"])
    run([cc, "-O2", "-fPIC", "-shared", rt, "-o", out / "librt.so"])
    gcc = shutil.which("gcc-12")
    res = {p.name: p for p in (out / "rt.o", out / "rt-fs.o", out / "librt.a", out / "librt.so")}
    if gcc is not None:
        run([gcc, "-O2", "-fPIC", "-shared", "-s", rt, "-o", out / "librt-gcc-stripped.so"])
        res["librt-gcc-stripped.so"] = out / "librt-gcc-stripped.so"
    return res


def project(tmp_path: Path, src: str) -> Path:
    ccjson = tmp_path / f"{src}.json"
    ccjson.write_text(json.dumps([{"directory": str(ADATA), "file": src,
                                   "arguments": ["clang-19", "-O2", "-c", src, "-o", "/dev/null"]}]))
    return ccjson


@pytest.mark.parametrize("kind", ["rt.o", "rt-fs.o", "librt.a", "librt.so", "librt-gcc-stripped.so"])
def test_check_reports_runtime_callees(runtimes: dict[str, Path], kind: str, tmp_path: Path) -> None:
    if kind not in runtimes:
        pytest.skip("gcc-12 is not installed")
    rt = runtimes[kind]
    callees = analysis.runtime_callees(rt)
    assert {"helper", "other_entry"} <= set(callees)
    assert "not_a_callback" not in callees  # only reachable from kcovrt_setup
    assert callees["helper"][0] == "__sanitizer_cov_trace_pc" and len(callees["helper"][1]) == 2

    p = kcov_build("check", "-p", project(tmp_path, "proj_helper.c"), "--runtime", rt, check=False)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    helper_line = 4  # of proj_helper.c
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{ADATA / 'proj_helper.c'}:{helper_line}: function helper is instrumented "
                               "but the runtime calls it from __sanitizer_cov_trace_pc "
                               "(via __sanitizer_cov_trace_pc -> ")
    assert lines[0].endswith(" -> helper); exclude it")
    assert "function other_entry" in lines[1] and "__sanitizer_cov_trace_cmp4" in lines[1]

    p = kcov_build("check", "-p", project(tmp_path, "proj_helper_annotated.c"), "--runtime", rt, check=False)
    assert p.returncode == 0 and p.stdout == "", (p.stdout, p.stderr)


def test_check_installed_runtime_on_a_clean_project(tmp_path: Path) -> None:
    import kcov

    lib = Path(kcov.get_lib_dir()) / "libkcovrt.so"
    assert lib.is_file()
    analysis.runtime_callees(lib)  # parses, finds the callbacks
    for src in ("attrs.c", "proj_helper.c"):
        p = kcov_build("check", "-p", project(tmp_path, src), check=False)
        assert p.returncode == 0 and p.stdout == "", (src, p.stdout, p.stderr)


def test_check_bad_input(tmp_path: Path, runtimes: dict[str, Path]) -> None:
    ccjson = project(tmp_path, "proj_helper.c")
    one_line_error(kcov_build("check", "-p", ccjson, "--runtime", tmp_path / "none.so", check=False), 66)
    plain = tmp_path / "plain.o"
    run([need_tool("clang-19"), "-c", ADATA / "proj_helper.c", "-o", plain])
    assert "__sanitizer_cov" in one_line_error(
        kcov_build("check", "-p", ccjson, "--runtime", plain, check=False), 65)
    junk = tmp_path / "junk.so"
    junk.write_text("not an ELF file\n")
    one_line_error(kcov_build("check", "-p", ccjson, "--runtime", junk, check=False), 65)
    one_line_error(kcov_build("check", "-p", tmp_path / "missing.json", "--runtime", runtimes["rt.o"],
                              check=False), 66)
    one_line_error(kcov_build("check", check=False), 64)


@pytest.mark.parametrize("flags", [(), ("-fsanitize-coverage=trace-pc",)], ids=["uninstrumented", "kcov"])
def test_kernel_style_noinstr(flags: tuple[str, ...]) -> None:
    """noinstr and DEFINE_IDTENTRY, whatever the TU's own coverage flags."""
    fns = by_name(analysis.functions_in_tu(entry(ADATA / "kernelish.c", "-O2", *flags, cc="gcc-12")))
    assert fns["irqentry_like"].reason == 'no_sanitize("coverage")'
    assert fns["exc_like"].reason == 'no_sanitize("coverage")'
    lines = (ADATA / "kernelish.c").read_text().splitlines()
    first = lines.index("DEFINE_IDTENTRY(exc_like)") + 1
    last = lines.index("}", first) + 1
    assert (fns["exc_like"].start_line, fns["exc_like"].end_line) == (first, last)
    assert not fns["instrumented_like"].no_coverage
